# Copyright (c) 2026, Email Sync developers
# For license information, please see license.txt

import frappe
from frappe.model.document import Document


class SyncedEmail(Document):
	pass


@frappe.whitelist(methods=["POST"])
def retry_download(names) -> list[dict]:
	"""Retry on Error Synced Emails whose download failed (form button, list action): each message is
	downloaded again and filed; see sync/fetch_errors.retry. Needs write permission on each."""
	from email_sync.sync.fetch_errors import retry

	if isinstance(names, str):
		names = frappe.parse_json(names) if names.startswith("[") else [names]
	return retry([str(name) for name in names or []])


def on_doctype_update():
	# The daily retention run asks for the oldest emails it has not handled yet: one index range, however
	# many it handled before (see sync/retention.py).
	frappe.db.add_index("Synced Email", ["retention_applied_on", "email_date"], index_name="retention_pending")
