"""History without side effects: mail older than the account's activation is filed, but opens no Issue."""

from datetime import datetime, timedelta, timezone

import frappe
import pytest
from factories import make_party, deliver, mail, make_account, new_mailbox, synced

from email_sync.sync.runner import sync_account


@pytest.fixture
def party():
	return make_party("History", "Kim")


@pytest.fixture
def issues_for_history():
	doc = frappe.get_single("Email Sync Settings")
	saved = doc.issues_for_history
	yield doc
	doc.reload()
	doc.issues_for_history = saved
	doc.save()
	frappe.db.commit()


def activated_now(dovecot, box) -> str:
	# activated_on=None: the account gets it as it is saved Active, i.e. now
	account = make_account(dovecot, box, create_issues=1, activated_on=None)
	assert frappe.db.get_value("Email Sync Account", account, "activated_on")
	return account


def test_mail_from_before_activation_is_filed_without_an_issue(dovecot, party):
	box = new_mailbox(dovecot)
	account = activated_now(dovecot, box)
	now = datetime.now(timezone.utc)
	deliver(dovecot, box, [
		mail(f"kim@{party.domain}", box.name, subject="Old request", date=now - timedelta(days=30)),
		mail(f"kim@{party.domain}", box.name, subject="New request", date=now + timedelta(minutes=1)),
	])  # fmt: skip
	counts = sync_account(account)
	assert counts["Filed"] == 2 and counts["issues_created"] == 1
	by_subject = {row.subject: row for row in synced(account)}
	assert by_subject["Old request"].status == "Filed" and by_subject["Old request"].communication
	frappe.db.rollback()
	issues = dict(frappe.get_all("Synced Email", filters={"account": account}, fields=["subject", "issue"], as_list=1))
	assert not issues["Old request"] and issues["New request"]
	# nobody was told about the old one either
	assert not frappe.db.exists("Notification Log", {"subject": ("like", "%Old request%")})


def test_issues_for_history_setting_opens_issues_for_old_mail_too(dovecot, party, issues_for_history):
	issues_for_history.issues_for_history = 1
	issues_for_history.save()
	frappe.db.commit()
	box = new_mailbox(dovecot)
	account = activated_now(dovecot, box)
	deliver(dovecot, box, [mail(f"kim@{party.domain}", box.name, subject="Old but wanted",
		date=datetime.now(timezone.utc) - timedelta(days=30))])  # fmt: skip
	assert sync_account(account)["issues_created"] == 1


def test_activated_on_is_kept_once_set(dovecot):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, activated_on=None)
	first = frappe.db.get_value("Email Sync Account", account, "activated_on")
	doc = frappe.get_doc("Email Sync Account", account)
	doc.status = "Paused"
	doc.save()
	doc.status = "Active"
	doc.save()
	assert doc.activated_on == first
