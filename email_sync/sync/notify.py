"""Telling people: new Issues from email, high-priority email, emails needing review, sync errors.

Who hears about what is the table in Email Sync Settings (a role or a user per row, in-app or email).
In-app notifications are Frappe's Notification Log, so they also reach the user by email when their own
notification settings say so.
"""

from __future__ import annotations

import frappe
from frappe.desk.doctype.notification_log.notification_log import enqueue_create_notification

NEW_ISSUE = "New Issue from Email"
HIGH_PRIORITY = "High-Priority Email"
NEEDS_REVIEW = "Emails Need Review"
SYNC_ERROR = "Sync Error"


def notify(event: str, subject: str, doctype: str, name: str, message: str = "") -> None:
	rows = [r for r in frappe.get_cached_doc("Email Sync Settings").notifications if r.event == event]
	if not rows:
		return
	in_app = _users([r for r in rows if r.channel != "Email"])
	by_email = _users([r for r in rows if r.channel == "Email"])
	if in_app:
		enqueue_create_notification(
			list(in_app),
			{
				"type": "Alert",
				"document_type": doctype,
				"document_name": name,
				"subject": subject,
				"email_content": message or subject,
				"from_user": frappe.session.user if frappe.session.user != "Guest" else "Administrator",
			},
		)
	if by_email:
		frappe.sendmail(
			recipients=list(by_email),
			subject=frappe.utils.strip_html(subject),
			message=f"<p>{subject}</p><p>{message}</p><p>{frappe.utils.get_link_to_form(doctype, name)}</p>",
			reference_doctype=doctype,
			reference_name=name,
		)


def _users(rows) -> set[str]:
	users = {r.user for r in rows if r.user}
	roles = [r.role for r in rows if r.role]
	if roles:
		users |= set(
			frappe.get_all(
				"Has Role",
				filters={"role": ("in", roles), "parenttype": "User", "parent": ("not in", ["Administrator", "Guest"])},
				pluck="parent",
			)
		)
	enabled = set(frappe.get_all("User", filters={"name": ("in", list(users) or ["-"]), "enabled": 1}, pluck="name"))
	return enabled
