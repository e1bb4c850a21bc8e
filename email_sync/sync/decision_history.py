"""The Decision History of Synced Emails: one dated line per decision a person (or a job) took on an email,
appended to every copy that took it, and the copies of an email still waiting for review."""

from __future__ import annotations

import frappe
from frappe.utils import now_datetime

LINE_LIMIT = 2000  # characters; a line names Contacts and Customers, whose names are not ours to bound


def copies_waiting(row) -> list[str]:
	"""The other Synced Emails of the same email (other mailboxes) still in Needs Review."""
	if not row.email_key:
		return []
	filters = {"email_key": row.email_key, "status": "Needs Review", "name": ("!=", row.name)}
	return frappe.get_all("Synced Email", filters=filters, pluck="name")


def record(names: list[str], what: str) -> None:
	"""Append `what`, dated and signed by the current user, to the Decision History of `names`."""
	if not names:
		return
	line = f"{now_datetime():%Y-%m-%d %H:%M:%S} {frappe.session.user}: {what}"[:LINE_LIMIT] + "\n"
	frappe.db.sql(
		"""update `tabSynced Email` set decision_history = concat(ifnull(decision_history, ''), %(line)s)
		where name in %(names)s""",
		{"line": line, "names": names},
	)
