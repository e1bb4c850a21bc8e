"""An IMAP mailbox synced onto a real site: timelines, decisions, idempotence, crashes, health."""

import json
import os
import signal
import subprocess
import sys
import time

import frappe
import pytest
from factories import deliver, mail, make_account, new_mailbox, make_contact, make_customer, synced, unique
from frappe.desk.form.load import get_communications

from email_sync.sync.runner import sync_account


def communication_links(name: str) -> set[tuple[str, str]]:
	return {
		(r.link_doctype, r.link_name)
		for r in frappe.get_all(
			"Communication Link", filters={"parent": name}, fields=["link_doctype", "link_name"]
		)
	}


def communications_with_message_id(message_id: str) -> list[str]:
	return frappe.get_all("Communication", filters={"message_id": message_id}, pluck="name")


@pytest.fixture
def party():
	"""A Customer with a Contact who has two addresses, at a domain unique to the test."""
	domain = f"{unique('acme')}.test"
	customer = make_customer(f"Acme {domain}")
	contact = make_contact("Ana", [f"ana@{domain}", f"ana.private@{domain}"], customer)
	return frappe._dict(domain=domain, customer=customer, contact=contact)


def test_app_is_installed_with_its_doctypes_and_scheduler_hook():
	for doctype in (
		"Email Sync Account",
		"Synced Email",
		"Email Sync Filter",
		"Email Sync Blacklist",
		"Email Sync Settings",
		"Email Sync Log",
	):
		assert frappe.db.get_value("DocType", doctype, "module") == "Email Sync"
	cron = frappe.get_hooks("scheduler_events")["cron"]["* * * * *"]
	assert "email_sync.sync.dispatcher.dispatch" in cron


def test_mailbox_is_filed_on_customer_and_contact_with_reasons(dovecot, party):
	user = new_mailbox(dovecot)
	known = mail(f"ANA.Private@{party.domain}", user.name, subject="Order 7 is late", message_id=f"<o7@{party.domain}>")
	deliver(
		dovecot,
		user,
		[
			known,
			mail("stranger@unknown.test", user.name, subject="Who am I"),
			mail(f"news@{party.domain}", user.name, subject="Newsletter", headers={"List-Unsubscribe": "<mailto:u@x>"}),
			mail("boss@ourco.example", user.name, subject="Internal memo"),
			b"Subject: no sender at all\r\nTo: someone@else.test\r\n\r\nbody",
		],
	)
	deliver(dovecot, user, [mail(user.name, f"ana@{party.domain}", subject="Re: Order 7", message_id=f"<r7@{party.domain}>")], "Sent")
	account = make_account(dovecot, user, direction="Bidirectional")

	counts = sync_account(account, "Manual")

	assert counts["fetched"] == 6 and counts["Filed"] == 2 and counts["Skipped"] == 2 and counts["Needs Review"] == 2
	rows = {r.subject: r for r in synced(account)}
	assert rows["Order 7 is late"].status == "Filed" and "ana.private@" in rows["Order 7 is late"].reason
	assert rows["Re: Order 7"].status == "Filed" and rows["Re: Order 7"].direction == "Outbound"
	assert rows["Newsletter"].decision_rule == "auto-submitted"
	assert rows["Internal memo"].decision_rule == "internal"
	assert rows["Who am I"].status == "Needs Review" and "stranger@unknown.test" in rows["Who am I"].reason
	assert rows["no sender at all"].status == "Needs Review"

	[comm] = communications_with_message_id(f"o7@{party.domain}")
	assert communication_links(comm) == {("Contact", party.contact), ("Customer", party.customer)}
	doc = frappe.get_doc("Communication", comm)
	assert (doc.communication_medium, doc.sent_or_received, doc.subject) == ("Email", "Received", "Order 7 is late")
	assert frappe.get_doc("Communication", rows["Re: Order 7"].communication).sent_or_received == "Sent"
	# What the desk shows on each form's timeline
	assert {c.name for c in get_communications("Customer", party.customer)} >= {comm, rows["Re: Order 7"].communication}
	assert comm in {c.name for c in get_communications("Contact", party.contact)}

	health = frappe.get_doc("Email Sync Account", account)
	assert health.emails_synced == 2 and health.last_success and health.consecutive_failures == 0
	assert json.loads(health.sync_cursor)["folders"]["INBOX"]["last_uid"] == 5
	log = frappe.get_last_doc("Email Sync Log", filters={"account": account})
	assert (log.status, log.fetched, log.filed, log.skipped, log.needs_review, log.triggered_by) == (
		"Success", 6, 2, 2, 2, "Manual"
	)


def test_rerun_and_cursor_reset_file_nothing_twice(dovecot, party):
	user = new_mailbox(dovecot)
	deliver(dovecot, user, [mail(f"ana@{party.domain}", user.name, subject=f"m{i}") for i in range(5)])
	deliver(dovecot, user, [mail(f"ana@{party.domain}", user.name, subject="no id", message_id=None)])
	account = make_account(dovecot, user)
	assert sync_account(account)["Filed"] == 6

	assert sync_account(account).get("fetched", 0) == 0  # nothing new
	frappe.db.set_value("Email Sync Account", account, "sync_cursor", "{}")  # as after a UIDVALIDITY reset
	frappe.db.commit()
	again = sync_account(account)
	assert again["fetched"] == 6 and again["already_synced"] == 6 and again.get("Filed", 0) == 0
	assert len(synced(account)) == 6
	assert len(get_communications("Contact", party.contact, limit=100)) == 6


def test_same_email_in_two_mailboxes_is_filed_once(dovecot, party):
	first, second = new_mailbox(dovecot), new_mailbox(dovecot)
	shared = mail(f"ana@{party.domain}", f"{first.name}, {second.name}", subject="To both", message_id=f"<both@{party.domain}>")
	deliver(dovecot, first, [shared])
	deliver(dovecot, second, [shared])
	a1, a2 = make_account(dovecot, first), make_account(dovecot, second)
	sync_account(a1)
	sync_account(a2)
	[comm] = communications_with_message_id(f"both@{party.domain}")
	assert synced(a1)[0].communication == comm == synced(a2)[0].communication
	assert communication_links(comm) == {("Contact", party.contact), ("Customer", party.customer)}


def test_a_broken_message_is_an_error_row_and_its_batch_is_filed(dovecot, party):
	user = new_mailbox(dovecot)
	deliver(
		dovecot,
		user,
		[
			mail(f"ana@{party.domain}", user.name, subject="before"),
			b"\r\n\r\nnot a message: no headers at all",
			mail(f"ana@{party.domain}", user.name, subject="after"),
		],
	)
	account = make_account(dovecot, user, batch_size=10)
	counts = sync_account(account)
	assert counts["Filed"] == 2 and counts["Error"] == 1
	[error] = synced(account, status="Error")
	assert "no headers" in error.reason
	log = frappe.get_last_doc("Email Sync Log", filters={"account": account})
	assert (log.status, log.failed) == ("Partial", 1)


def test_worker_killed_mid_sync_then_rerun_leaves_one_communication_per_message(dovecot, party):
	user = new_mailbox(dovecot)
	total = 300
	deliver(dovecot, user, [mail(f"ana@{party.domain}", user.name, subject=f"bulk {i:03}") for i in range(total)])
	account = make_account(dovecot, user, batch_size=10)

	worker = subprocess.Popen(
		[sys.executable, "-c", RUN_SYNC, frappe.local.site, account],
		cwd=os.getcwd(),
		stdout=subprocess.DEVNULL,
		stderr=subprocess.PIPE,
	)
	deadline = time.time() + 60
	while time.time() < deadline and count_synced(account) < 30:
		time.sleep(0.05)
	worker.send_signal(signal.SIGKILL)
	worker.wait()
	done_before_kill = count_synced(account)
	assert 30 <= done_before_kill < total, "the worker should have been killed mid-sync"

	sync_account(account)
	assert count_synced(account) == total
	subjects = frappe.get_all(
		"Communication",
		filters={"name": ("in", [r.communication for r in synced(account)])},
		pluck="subject",
	)
	assert sorted(subjects) == [f"bulk {i:03}" for i in range(total)]  # each once, none missing


RUN_SYNC = """
import sys, frappe
frappe.init(site=sys.argv[1], sites_path=".")
frappe.connect()
frappe.set_user("Administrator")
from email_sync.sync.runner import sync_account
sync_account(sys.argv[2])
"""


def count_synced(account: str) -> int:
	frappe.db.rollback()  # see what other connections committed
	return frappe.db.count("Synced Email", {"account": account})


def test_failures_cool_off_then_stop_with_the_reason(dovecot):
	user = new_mailbox(dovecot)
	account = make_account(dovecot, user, password="wrong", max_tries=2, cool_off_minutes=7)
	sync_account(account)
	doc = frappe.get_doc("Email Sync Account", account)
	assert (doc.status, doc.consecutive_failures, doc.last_error_code) == ("Active", 1, "auth_failed")
	assert "password" in doc.last_error_fix.lower() and doc.next_sync_after
	log = frappe.get_last_doc("Email Sync Log", filters={"account": account})
	assert (log.status, log.error_code) == ("Failed", "auth_failed") and log.fix

	sync_account(account)
	doc.reload()
	assert doc.status == "Error" and doc.consecutive_failures == 2 and "Sync Now" in doc.last_error_fix

	doc.password = user.password
	doc.save()
	frappe.db.commit()
	sync_account(account)  # Sync Now after the fix
	doc.reload()
	assert doc.status == "Active" and doc.consecutive_failures == 0 and doc.next_sync_after is None


def test_unreachable_server_is_reported_in_plain_words(dovecot):
	user = new_mailbox(dovecot)
	account = make_account(dovecot, user, imap_port=1)  # nothing listens there
	from email_sync.api import test_connection

	result = test_connection(account)
	assert not result["ok"] and "127.0.0.1" in result["message"] and "port" in result["message"].lower()
	ok = test_connection(make_account(dovecot, new_mailbox(dovecot)))
	assert ok["ok"] and {"INBOX", "Sent"} <= {f["name"] for f in ok["folders"]}


def test_mail_already_on_the_site_is_filed_onto_not_duplicated(dovecot, party):
	"""A site that used Frappe's own Email Account pull (or sent the mail from ERPNext) keeps one Communication."""
	message_id = f"old-pull@{party.domain}"
	earlier = frappe.get_doc({"doctype": "Communication", "communication_type": "Communication",
		"communication_medium": "Email", "sent_or_received": "Received", "subject": "Pulled before",
		"sender": f"ana@{party.domain}", "message_id": message_id}).insert(ignore_permissions=True)
	frappe.db.commit()
	user = new_mailbox(dovecot)
	deliver(dovecot, user, [mail(f"ana@{party.domain}", user.name, subject="Pulled before", message_id=f"<{message_id}>")])
	account = make_account(dovecot, user)
	assert sync_account(account)["Filed"] == 1
	assert communications_with_message_id(message_id) == [earlier.name]
	assert synced(account)[0].communication == earlier.name
	assert ("Customer", party.customer) in communication_links(earlier.name)
