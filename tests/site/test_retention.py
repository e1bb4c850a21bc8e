"""Retention: mail past Keep Bodies and Attachments keeps its headers and snippet (Email Sync's own mail
only), Skipped rows past Keep Skipped Rows go; a run is bounded, the next goes on, a second run changes
nothing."""

import os
from datetime import date, datetime, timezone

import frappe
import pytest
from factories import (
	deliver, mail, mail_with_files, make_account, make_contact, make_customer, new_mailbox, pdf, synced,
	unique,
)  # fmt: skip
from frappe.utils import escape_html, nowdate

from email_sync.sync.retention import apply_retention, run
from email_sync.sync.runner import sync_account

OLD = datetime(2001, 6, 1, 9, 0, tzinfo=timezone.utc)
# Only mail from before 2002 is past these periods, so other tests' mail on the site is left alone.
DAYS = (date.today() - date(2002, 1, 1)).days
STORY = "Start of the story. " + "Then more happened. " * 30 + "THE END"


@pytest.fixture
def keep():
	settings = frappe.get_single("Email Sync Settings")
	before = settings.keep_bodies_days, settings.keep_skipped_days

	def set_days(bodies: int, skipped: int):
		settings.keep_bodies_days, settings.keep_skipped_days = bodies, skipped
		settings.save()
		frappe.db.commit()

	yield set_days
	set_days(*before)


def retention_logs() -> int:
	return frappe.db.count("Email Sync Erasure Log", {"kind": "Retention"})


def test_old_mail_keeps_headers_and_snippet_and_old_skipped_rows_go(dovecot, keep):
	domain = f"{unique('keep')}.test"
	sender = f"vera@{domain}"
	make_contact("Vera", [sender], make_customer(f"Keep {domain}"))
	pulled_id = f"pulled-{unique()}@{domain}"
	pulled = frappe.get_doc({"doctype": "Communication", "communication_type": "Communication",
		"communication_medium": "Email", "sent_or_received": "Received", "subject": "Old, pulled by ERPNext",
		"sender": sender, "content": STORY, "message_id": pulled_id})  # fmt: skip
	pulled.insert(ignore_permissions=True)
	frappe.db.commit()
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	bulk = {"List-Unsubscribe": "<mailto:leave@list.example>"}
	deliver(dovecot, box, [
		mail_with_files(sender, box.name, "Old with a file", [(f"old-{unique()}.pdf", pdf())], date=OLD),
		mail(sender, box.name, subject="Old story", body=STORY, date=OLD),
		mail(sender, box.name, subject="Recent story", body=STORY, date=datetime.now(timezone.utc)),
		mail(sender, box.name, subject="Old, pulled by ERPNext", date=OLD, message_id=f"<{pulled_id}>"),
		mail(sender, box.name, subject="Old newsletter", date=OLD, headers=bulk),
		mail(sender, box.name, subject="Recent newsletter", headers=bulk),
	])  # fmt: skip
	sync_account(account)
	rows = {r.subject: r for r in synced(account)}
	assert rows["Old newsletter"].status == "Skipped"
	assert rows["Old, pulled by ERPNext"].communication == pulled.name
	frappe.db.set_value("Synced Email", rows["Old newsletter"].name, "creation", OLD.replace(tzinfo=None))
	with_file = rows["Old with a file"]
	[file] = frappe.get_all(
		"File", filters={"attached_to_doctype": "Communication", "attached_to_name": with_file.communication},
		fields=["name", "file_url"],
	)  # fmt: skip
	path = frappe.get_doc("File", file.name).get_full_path()
	assert os.path.exists(path)
	frappe.db.commit()

	keep(DAYS, DAYS)
	before = retention_logs()
	first = run(DAYS, DAYS, limit=1)  # bounded: one row of each kind, the rest for the next run
	assert first["handled"] == 1 and first["skipped_rows"] == 1 and first["more_left"] == 1
	apply_retention()  # the daily job, with the settings
	assert retention_logs() == before + 2

	for subject in ("Old with a file", "Old story"):
		name, email = rows[subject].name, rows[subject].communication
		snippet = frappe.db.get_value("Synced Email", name, "snippet")
		kept = frappe.db.get_value("Communication", email, ("content", "text_content", "has_attachment"))
		assert kept == (escape_html(snippet), snippet, 0)
		assert frappe.db.get_value("Synced Email", name, ["subject", "sender"]) == (subject, sender)
		assert str(frappe.db.get_value("Synced Email", name, "retention_applied_on")) == nowdate()
	assert "THE END" not in frappe.db.get_value("Communication", rows["Old story"].communication, "content")
	assert not frappe.db.exists("File", file.name) and not os.path.exists(path)
	[listed] = frappe.get_all("Email Sync Attachment", {"parent": with_file.name}, ["file", "reason"])
	assert not listed.file and "retention" in listed.reason
	assert "THE END" in frappe.db.get_value("Communication", rows["Recent story"].communication, "content")
	assert frappe.db.get_value("Communication", pulled.name, "content") == STORY  # ERPNext's own: untouched
	assert not frappe.db.exists("Synced Email", rows["Old newsletter"].name)
	assert frappe.db.exists("Synced Email", rows["Recent newsletter"].name)

	logs = frappe.get_all(
		"Email Sync Erasure Log", {"kind": "Retention"}, ["*"], order_by="creation desc", limit=2
	)
	assert sum(log.bodies_cut for log in logs) >= 2 and sum(log.files for log in logs) >= 1
	assert logs[1].more_left and not logs[0].more_left

	assert not any(apply_retention()[k] for k in ("bodies_cut", "files", "skipped_rows"))  # idempotent
	assert retention_logs() == before + 2  # a run that changes nothing leaves no record


def test_zero_keeps_everything(keep):
	keep(0, 0)
	before = retention_logs()
	assert not any(apply_retention().values())
	assert retention_logs() == before
