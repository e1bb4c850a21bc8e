"""Telling people: new Issues from email, high-priority email, emails needing review, sync errors.

Who hears about what is the table in Email Sync Settings, a channel per row:
- In-app (a role or a user): Frappe's Notification Log, which also reaches the user by email when their own
  notification settings say so; Email: a message through the outgoing Email Account;
- SMS (a role or a user): to the mobile number on each user's profile, through Frappe's SMS Settings
  (meant for high-priority email); Slack or Teams webhook: one message to the chat of a Slack Webhook URL
  record. Both are sent by a background job once the transaction that raised them commits (channels.py).
Notifying never fails what it reports on: a failure leaves an Error Log, and the sync goes on.
"""

from __future__ import annotations

import frappe
from frappe.desk.doctype.notification_log.notification_log import enqueue_create_notification

from email_sync.sync.tasks import enqueue_notice

NEW_ISSUE = "New Issue from Email"
HIGH_PRIORITY = "High-Priority Email"
NEEDS_REVIEW = "Emails Need Review"
SYNC_ERROR = "Sync Error"

IN_APP, EMAIL, SMS, WEBHOOK = "In-app", "Email", "SMS", "Slack or Teams webhook"


def notify(event: str, subject: str, doctype: str, name: str, message: str = "") -> None:
	"""Tell the people (and chats) the settings name for `event`. Never raises."""
	try:
		_notify(event, subject, doctype, name, message)
	except Exception:
		frappe.log_error(title=f"Email Sync could not notify: {event}")


def _notify(event: str, subject: str, doctype: str, name: str, message: str) -> None:
	rows = [r for r in frappe.get_cached_doc("Email Sync Settings").notifications if r.event == event]
	if not rows:
		return
	in_app = _users([r for r in rows if (r.channel or IN_APP) == IN_APP])
	by_email = _users([r for r in rows if r.channel == EMAIL])
	by_sms = _users([r for r in rows if r.channel == SMS])
	webhooks = sorted({r.webhook for r in rows if r.channel == WEBHOOK and r.webhook})
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
	if by_sms or webhooks:
		enqueue_notice(
			{
				"about": event,
				"subject": frappe.utils.strip_html(subject),
				"message": frappe.utils.strip_html(message),
				"link": frappe.utils.get_url_to_form(doctype, name),
				"sms_users": sorted(by_sms),
				"webhooks": webhooks,
			}
		)


def _users(rows) -> set[str]:
	if not rows:
		return set()
	users = {r.user for r in rows if r.user}
	roles = [r.role for r in rows if r.role]
	if roles:
		users |= set(
			frappe.get_all(
				"Has Role",
				filters={
					"role": ("in", roles),
					"parenttype": "User",
					"parent": ("not in", ["Administrator", "Guest"]),
				},
				pluck="parent",
			)
		)
	return set(
		frappe.get_all("User", filters={"name": ("in", list(users) or ["-"]), "enabled": 1}, pluck="name")
	)
