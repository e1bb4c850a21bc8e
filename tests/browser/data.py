"""Records and messages the browser tests arrange on the site (uniquely named: the site is shared, tests commit)."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import frappe
from factories import make_contact, make_customer, unique

def days_ago(days: float) -> datetime:
	"""A UTC datetime `days` before now, for Date headers that sort the way the test expects."""
	return datetime.now(timezone.utc).replace(microsecond=0) - timedelta(days=days)


def message(
	sender: str,
	to: str,
	subject: str,
	text: str = "",
	html: str | None = None,
	date: datetime | None = None,
	attachments: list[tuple[str, bytes, str]] = (),
) -> bytes:
	"""RFC 822 bytes: text and/or HTML body, attachments as (filename, bytes, mime type)."""
	msg = EmailMessage()
	msg["From"] = sender
	msg["To"] = to
	msg["Subject"] = subject
	msg["Date"] = format_datetime(date or days_ago(1))
	msg["Message-ID"] = make_msgid(domain="browser.test")
	msg.set_content(text or "See the HTML version of this message.")
	if html is not None:
		msg.add_alternative(html, subtype="html")
	for filename, content, mime in attachments:
		maintype, subtype = mime.split("/", 1)
		msg.add_attachment(content, maintype=maintype, subtype=subtype, filename=filename)
	return msg.as_bytes()


def party(prefix: str = "Acme", first_name: str = "Lee"):
	"""A Customer with one Contact at its own unique domain."""
	domain = f"{unique(prefix.lower())}.test"
	customer = make_customer(f"{prefix} {domain}")
	address = f"{first_name.lower()}@{domain}"
	contact = make_contact(first_name, [address], customer)
	frappe.db.commit()
	return frappe._dict(domain=domain, customer=customer, contact=contact, address=address, name=first_name)


def erpnext_email(customer: str, recipient: str, subject: str, content: str, date: datetime) -> str:
	"""A mail ERPNext sent itself (no Synced Email behind it), on the Customer's timeline."""
	doc = frappe.get_doc(
		{
			"doctype": "Communication",
			"communication_type": "Communication",
			"communication_medium": "Email",
			"sent_or_received": "Sent",
			"subject": subject,
			"content": content,
			"sender": "Administrator <admin@ourco.example>",
			"recipients": recipient,
			"communication_date": site_time(date),
			"reference_doctype": "Customer",
			"reference_name": customer,
			"timeline_links": [{"link_doctype": "Customer", "link_name": customer}],
		}
	).insert(ignore_permissions=True)
	frappe.db.commit()
	return doc.name


def site_time(date: datetime) -> datetime:
	"""An aware datetime as the site's naive local time (how Frappe stores datetimes)."""
	from frappe.utils.data import convert_utc_to_system_timezone

	return convert_utc_to_system_timezone(date.astimezone(timezone.utc)).replace(tzinfo=None)


def make_user(key: str, roles: list[str], first_name: str, last_name: str) -> frappe._dict:
	"""A desk user with exactly `roles` and the desk a new user gets, kept from run to run (Frappe throttles
	creating users: 60 an hour), with a fresh password the browser logs in with."""
	from frappe.core.doctype.user.user import desk_properties

	email = f"email-sync-test-browser-{key}@ourco.example"
	password = f"Br0wser!{uuid.uuid4().hex[:12]}"
	if frappe.db.exists("User", email):
		user = frappe.get_doc("User", email)
		user.set("roles", [])
	else:
		user = frappe.new_doc("User")  # with the field defaults, which an insert under in_import would skip
		user.update({"email": email, "send_welcome_email": 0})
	user.update({"first_name": first_name, "last_name": last_name, "enabled": 1, "new_password": password})
	for df in frappe.get_meta("User").fields:  # search bar, form sidebar, timeline...: as for any new user
		if df.fieldname in desk_properties:
			user.set(df.fieldname, int(df.default or 0))
	for role in roles:
		user.append("roles", {"role": role})
	frappe.flags.in_import = True  # skips the hourly creation quota other suites may have used up
	try:
		user.save(ignore_permissions=True)
	finally:
		frappe.flags.in_import = False
	frappe.db.commit()
	return frappe._dict(email=email, password=password, roles=roles, full_name=f"{first_name} {last_name}")


def latest_synced(account: str, subject: str):
	frappe.db.rollback()  # a fresh snapshot: the worker and the web app commit in other processes
	return frappe.db.get_value(
		"Synced Email", {"account": account, "subject": subject},
		["name", "status", "communication", "issue", "matched_customers"], as_dict=True,
	)
