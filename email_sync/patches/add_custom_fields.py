from email_sync.install import add_custom_fields


def execute():
	add_custom_fields()
