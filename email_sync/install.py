"""Install and uninstall steps, each small and safe to run again (a patch may call them)."""

import frappe
from frappe.custom.doctype.custom_field.custom_field import create_custom_fields

from email_sync import indexes
from email_sync.engine.priority import DEFAULT_TABLE

DEFAULT_SETTINGS = {
	"unmatched_action": "Needs Review",
	"shared_address_action": "File on all",
	"namesake_action": "Ask in Needs Review",
	"skip_auto_submitted": 1,
	"snippet_length": 200,
	"run_time_budget": 120,
}

# A last tab listing every email with the party (drawn by public/js/emails_section.js).
EMAILS_TAB = [
	{"fieldname": "email_sync_emails_tab", "label": "Emails", "fieldtype": "Tab Break"},
	{"fieldname": "email_sync_emails", "label": "Emails", "fieldtype": "HTML", "insert_after": "email_sync_emails_tab"},
]

CUSTOM_FIELDS = {
	"Customer": [
		*EMAILS_TAB,
		{
			"fieldname": "email_sync_domains",
			"label": "Email Domains",
			"fieldtype": "Small Text",
			# On the first tab, open: after `website` it sat in a collapsed section nobody expands.
			"insert_after": "customer_group",
			"description": "One per line, e.g. acme.com. Mail from an unknown address at these domains creates "
			"a Contact of this Customer. Exact domains only; free-mail domains are ignored.",
		},
	],
	"Contact Email": [  # filled on every Contact save (see indexes.py): near variants are looked up by them
		{"fieldname": "email_sync_domain", "label": "Domain", "fieldtype": "Data", "insert_after": "email_id",
		 "hidden": 1, "read_only": 1, "search_index": 1},
		{"fieldname": "email_sync_canonical", "label": "Canonical Address", "fieldtype": "Data",
		 "insert_after": "email_sync_domain", "hidden": 1, "read_only": 1, "search_index": 1},
	],
	"Issue": [
		{
			"fieldname": "email_sync_source",
			"label": "Source",
			"fieldtype": "Select",
			"options": "\nEmail",
			"insert_after": "raised_by",
			"in_standard_filter": 1,
			"in_list_view": 1,
			"read_only": 1,
		},
		{
			"fieldname": "email_sync_account",
			"label": "Email Sync Account",
			"fieldtype": "Link",
			"options": "Email Sync Account",
			"insert_after": "email_sync_source",
			"read_only": 1,
		},
	],
	"Contact": [
		*EMAILS_TAB,
		{
			"fieldname": "email_sync_created",
			"label": "Created by Email Sync",
			"fieldtype": "Check",
			"read_only": 1,
			"insert_after": "unsubscribed",
		}
	],
}


def before_install():
	add_roles()  # before the DocTypes whose permissions name them


def after_install():
	add_roles()
	add_custom_fields()
	add_lookup_indexes()
	add_issue_priorities()
	set_default_settings()


def after_migrate():
	# Idempotent, so every migrate brings an upgraded site to what a fresh install has.
	add_roles()
	add_custom_fields()
	add_lookup_indexes()
	add_issue_priorities()
	set_default_settings()


def add_lookup_indexes():
	"""What lets a sync look up only the addresses and domains of its mail, filled for rows that lack it."""
	indexes.add_indexes()
	indexes.backfill_contact_emails()
	indexes.backfill_customer_domains()


def add_roles():
	"""Email Sync Reviewer: triages Needs Review (assign, create Customers and Issues) for shared accounts."""
	from email_sync.permissions import REVIEWER_ROLE

	if not frappe.db.exists("Role", REVIEWER_ROLE):
		frappe.get_doc({"doctype": "Role", "role_name": REVIEWER_ROLE, "desk_access": 1}).insert(
			ignore_permissions=True
		)


def add_issue_priorities():
	for name in ("High", "Medium", "Low"):
		if not frappe.db.exists("Issue Priority", name):
			frappe.new_doc("Issue Priority").insert(ignore_permissions=True, set_name=name)


def before_uninstall():
	remove_custom_fields()
	indexes.remove_indexes()


def add_custom_fields():
	fields = {doctype: [dict(f) for f in rows] for doctype, rows in CUSTOM_FIELDS.items()}
	for doctype, rows in fields.items():
		for field in rows:
			if field["fieldname"] == "email_sync_emails_tab":
				field["insert_after"] = _last_field(doctype)
	create_custom_fields(fields, ignore_validate=True)


def _last_field(doctype: str) -> str:
	standard = [f.fieldname for f in frappe.get_meta(doctype).fields if not f.fieldname.startswith("email_sync_")]
	return standard[-1]


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
	if not settings.priority_keywords:
		for keyword, priority in DEFAULT_TABLE:
			settings.append("priority_keywords", {"keyword": keyword, "priority": priority})
	if not settings.get_password("push_token", raise_exception=False):
		settings.push_token = frappe.generate_hash(length=40)  # the secret in push URLs
	settings.flags.ignore_permissions = True
	settings.save()
