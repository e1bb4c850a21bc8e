"""Install and uninstall steps, each small and safe to run again (a patch may call them)."""

import frappe
from frappe.custom.doctype.custom_field.custom_field import create_custom_fields

DEFAULT_SETTINGS = {"unmatched_action": "Needs Review", "skip_auto_submitted": 1, "snippet_length": 200}

CUSTOM_FIELDS = {
	"Customer": [
		{
			"fieldname": "email_sync_domains",
			"label": "Email Domains",
			"fieldtype": "Small Text",
			"insert_after": "website",
			"description": "One per line, e.g. acme.com. Mail from an unknown address at these domains creates "
			"a Contact of this Customer. Exact domains only; free-mail domains are ignored.",
		}
	],
	"Contact": [
		{
			"fieldname": "email_sync_created",
			"label": "Created by Email Sync",
			"fieldtype": "Check",
			"read_only": 1,
			"insert_after": "unsubscribed",
		}
	],
}


def after_install():
	add_custom_fields()
	set_default_settings()


def after_migrate():
	set_default_settings()


def before_uninstall():
	remove_custom_fields()


def add_custom_fields():
	create_custom_fields(CUSTOM_FIELDS, ignore_validate=True)


def remove_custom_fields():
	for doctype, fields in CUSTOM_FIELDS.items():
		for field in fields:
			name = frappe.db.get_value("Custom Field", {"dt": doctype, "fieldname": field["fieldname"]})
			if name:
				frappe.delete_doc("Custom Field", name, ignore_permissions=True)


def set_default_settings():
	settings = frappe.get_single("Email Sync Settings")
	for field, value in DEFAULT_SETTINGS.items():
		if settings.get(field) in (None, ""):
			settings.set(field, value)
	if not settings.get_password("push_token", raise_exception=False):
		settings.push_token = frappe.generate_hash(length=40)  # the secret in push URLs
	settings.flags.ignore_permissions = True
	settings.save()
