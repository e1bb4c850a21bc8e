"""Records the site tests need, each named uniquely so tests never collide with each other or real data."""

import os
import subprocess
import sys
import uuid
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from datetime import datetime, timezone

import frappe
from frappe.core.doctype.user.user import desk_properties

from dovecot import fill_mailbox


def unique(prefix: str = "t") -> str:
	return f"{prefix}{uuid.uuid4().hex[:8]}"


def ensure_group(doctype: str, name: str, field: str) -> str:
	if not frappe.db.exists(doctype, name):
		frappe.get_doc({"doctype": doctype, field: name, "is_group": 1}).insert(ignore_permissions=True)
	return name


def make_customer(name: str, domains: str = "") -> str:
	doc = frappe.get_doc(
		{
			"doctype": "Customer",
			"customer_name": name,
			"customer_group": ensure_group("Customer Group", "All Customer Groups", "customer_group_name"),
			"territory": ensure_group("Territory", "All Territories", "territory_name"),
			"email_sync_domains": domains,
		}
	).insert(ignore_permissions=True)
	return doc.name


def set_domains(customer: str, domains: str) -> None:
	"""Through the form's save, which keeps the indexed domain rows matching uses (not db.set_value)."""
	doc = frappe.get_doc("Customer", customer)
	doc.email_sync_domains = domains
	doc.save(ignore_permissions=True)


def make_contact(first_name: str, emails: list[str], customer: str | None = None) -> str:
	doc = frappe.get_doc({"doctype": "Contact", "first_name": first_name})
	for i, email in enumerate(emails):
		doc.append("email_ids", {"email_id": email, "is_primary": 1 if i == 0 else 0})
	if customer:
		doc.append("links", {"link_doctype": "Customer", "link_name": customer})
	doc.insert(ignore_permissions=True)
	return doc.name


def make_party(prefix: str, first_name: str):
	"""A Customer at its own unique domain with one Contact, `first_name.lower()@domain`."""
	domain = f"{unique(prefix.lower())}.test"
	customer = make_customer(f"{prefix.title()} {domain}")
	contact = make_contact(first_name, [f"{first_name.lower()}@{domain}"], customer)
	return frappe._dict(domain=domain, customer=customer, contact=contact)


def new_mailbox(server):
	"""A Dovecot user whose address no earlier run has used (accounts are named by address)."""
	return server.add_user(name=f"{unique('box')}@mail.example")


def make_account(server, user, **values) -> str:
	doc = frappe.get_doc(
		{
			"doctype": "Email Sync Account",
			"provider": "IMAP",
			"email_address": user.name,
			"imap_host": server.host,
			"imap_port": server.port,
			"imap_security": "None",
			"username": user.name,
			"password": user.password,
			"status": "Active",
			"sync_start_date": "2000-01-01",
			# Active long before the test's mail (dated a few days back), which is therefore new mail, not history.
			"activated_on": "2000-01-01 00:00:00",
			"cool_off_minutes": 5,
			**values,
		}
	)
	doc.insert(ignore_permissions=True)
	frappe.db.commit()
	return doc.name


def mail(
	sender: str,
	to: str,
	subject: str = "Hello",
	body: str = "Hi there",
	cc: str = "",
	message_id: str | None = "auto",
	date: datetime | None = None,
	headers: dict | None = None,
) -> bytes:
	msg = EmailMessage()
	msg["From"] = sender
	msg["To"] = to
	if cc:
		msg["Cc"] = cc
	msg["Subject"] = subject
	msg["Date"] = format_datetime(date or datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc))
	if message_id == "auto":
		msg["Message-ID"] = make_msgid(domain="test.example")
	elif message_id:
		msg["Message-ID"] = message_id
	for name, value in (headers or {}).items():
		msg[name] = value
	msg.set_content(body)
	return msg.as_bytes()


def mail_with_files(
	sender: str, to: str, subject: str, files: list[tuple[str, bytes]], date: datetime | None = None
) -> bytes:
	"""A plain email with PDF attachments, (file name, content) each."""
	msg = EmailMessage()
	msg["From"], msg["To"], msg["Subject"] = sender, to, subject
	msg["Date"] = format_datetime(date or datetime(2026, 11, 20, 9, 30, tzinfo=timezone.utc))
	msg["Message-ID"] = make_msgid(domain="test.example")
	msg.set_content("Please see attached.")
	for name, content in files:
		msg.add_attachment(content, maintype="application", subtype="pdf", filename=name)
	return msg.as_bytes()


def pdf() -> bytes:
	"""A small PDF no other test has (so that its File is not shared)."""
	return b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" + uuid.uuid4().hex.encode()


def deliver(server, user, messages, folder: str = "INBOX") -> None:
	fill_mailbox(server.host, server.port, user.name, user.password, folder, messages)


def synced(account: str, **filters) -> list:
	return frappe.get_all(
		"Synced Email",
		filters={"account": account, **filters},
		fields=["name", "status", "subject", "reason", "decision_rule", "communication", "direction", "sender"],
		order_by="email_date asc, subject asc",
	)


def run_worker_burst(queue: str = "long") -> str:
	"""Run the jobs waiting in `queue` with a real RQ worker, as production would, then see its commits."""
	result = subprocess.run(
		[sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "worker", "--queue", queue, "--burst"],
		cwd=os.getcwd(),
		timeout=120,
		capture_output=True,
		text=True,
	)
	assert result.returncode == 0, result.stderr[-2000:]
	frappe.db.rollback()  # end this connection's snapshot, to see what the worker committed
	return result.stdout + result.stderr


def wait_for(predicate, seconds: float = 30.0, queue: str = "long"):
	"""Run queued jobs (with a burst worker; any other worker may take them too) until `predicate()` holds."""
	import time

	deadline = time.monotonic() + seconds
	while True:
		run_worker_burst(queue)
		value = predicate()
		if value or time.monotonic() > deadline:
			return value
		time.sleep(0.5)


def site_user(key: str, *roles: str, password: str | None = None) -> str:
	"""A user kept from run to run (Frappe throttles creating more than 60 users an hour), with these roles."""
	email = f"email-sync-test-{key}@ourco.example"
	if frappe.db.exists("User", email):
		user = frappe.get_doc("User", email)
		user.set("roles", [])
	else:
		user = frappe.new_doc("User")  # with the field defaults (search bar, sidebar, timeline) that in_import skips
		user.update({"email": email, "first_name": key.title(), "send_welcome_email": 0})
	user.enabled = 1
	for prop in desk_properties:  # users an earlier version of this helper made lacked them
		user.set(prop, 1)
	for role in roles:
		user.append("roles", {"role": role})
	if password:
		user.new_password = password
	frappe.flags.in_import = True  # made once per site, but other suites may have used up the hourly quota
	try:
		user.save(ignore_permissions=True)
	finally:
		frappe.flags.in_import = False
	frappe.db.commit()
	return user.name


INTERNAL_DOMAIN = "ourco.example"


def connect_site() -> str:
	"""This process on the site named by EMAIL_SYNC_SITE, as Administrator, with the settings the tests assume."""
	import pytest

	name = os.environ.get("EMAIL_SYNC_SITE")
	if not name:
		pytest.exit("Set EMAIL_SYNC_SITE (tests/run does) and run from the bench's sites folder.", returncode=2)
	frappe.init(site=name, sites_path=os.getcwd())
	frappe.connect()
	frappe.set_user("Administrator")
	if "email_sync" not in frappe.get_installed_apps():
		pytest.exit(f"email_sync is not installed on {name}.", returncode=2)
	settings = frappe.get_single("Email Sync Settings")
	settings.internal_domains = INTERNAL_DOMAIN
	settings.unmatched_action = "Needs Review"
	settings.skip_auto_submitted = 1
	settings.save()
	frappe.db.commit()
	return name
