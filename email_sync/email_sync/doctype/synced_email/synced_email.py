# Copyright (c) 2026, Email Sync developers
# For license information, please see license.txt

import frappe
from frappe.model.document import Document


class SyncedEmail(Document):
	pass


def on_doctype_update():
	# The daily retention run asks for the oldest emails it has not handled yet: one index range, however
	# many it handled before (see sync/retention.py).
	frappe.db.add_index("Synced Email", ["retention_applied_on", "email_date"], index_name="retention_pending")
