"""On save, the folders an account lists are checked against its server's live list, briefly.

A folder that does not exist blocks the save (the sync would only fail later, far from the typo); a server
that cannot be reached does not: the admin may be saving precisely to fix its settings.
"""

import frappe
from frappe import _

from email_sync.providers import ProviderError
from email_sync.sync.company import is_shared
from email_sync.sync.context import account_config, provider_for

TIMEOUT = 8.0  # seconds: a save must not hang on a slow server


def folder_names(doc) -> list[str]:
	return [row.folder_name.strip() for row in doc.folders if (row.folder_name or "").strip()]


def can_connect(doc) -> bool:
	if doc.provider == "IMAP" and doc.auth_type != "OAuth":
		return bool(doc.imap_host and (doc.password or doc.get_password("password", raise_exception=False)))
	return bool(doc.connected_on) or (doc.provider != "IMAP" and is_shared(doc))


def should_check(doc) -> bool:
	if not folder_names(doc) or frappe.flags.in_install or frappe.flags.in_migrate or frappe.flags.in_import:
		return False
	before = doc.get_doc_before_save()
	changed = before is None or folder_names(before) != folder_names(doc)
	return (doc.status == "Active" or changed) and can_connect(doc)


def check_folders(doc) -> None:
	"""Throw when a listed folder is missing; only warn when the server could not say."""
	config = account_config(doc)
	config.timeout = min(config.timeout, TIMEOUT)
	try:
		result = provider_for(doc, config).test()
	except ProviderError as e:
		result = frappe._dict(ok=False, code=e.code, message=f"{e.message} {e.fix}")
	if result.ok:
		return
	if result.code == "folder_missing":
		frappe.throw(result.message, title=_("Folder not found on the server"))
	frappe.msgprint(
		_("Saved, but the folders could not be checked against the server: {0}").format(result.message),
		title=_("Folders not checked"),
		indicator="orange",
	)
