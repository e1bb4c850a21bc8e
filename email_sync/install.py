"""Install steps, each small and safe to run again (a patch may call them)."""

import frappe

DEFAULT_SETTINGS = {"unmatched_action": "Needs Review", "skip_auto_submitted": 1, "snippet_length": 200}


def after_install():
	set_default_settings()


def set_default_settings():
	settings = frappe.get_single("Email Sync Settings")
	for field, value in DEFAULT_SETTINGS.items():
		if settings.get(field) in (None, ""):
			settings.set(field, value)
	settings.flags.ignore_permissions = True
	settings.save()
