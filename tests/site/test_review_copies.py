"""One Needs Review row per email however many mailboxes hold it, an action settles every copy, and the
Email Sync Reviewer role triages from the page."""

import frappe
import pytest
from factories import deliver, mail, make_account, make_customer, new_mailbox, site_user, synced, unique

from email_sync.desk import dashboard
from email_sync.sync.review import assign_to_customer, ignore_senders
from email_sync.sync.runner import sync_account


@pytest.fixture
def two_mailboxes(dovecot):
	"""The same unknown sender's email in two shared mailboxes, both waiting for review."""
	first, second = new_mailbox(dovecot), new_mailbox(dovecot)
	one, two = make_account(dovecot, first), make_account(dovecot, second)
	sender = f"newbie@{unique('copies')}.test"
	raw = mail(sender, f"{first.name}, {second.name}", subject=f"Hello from {sender}")
	deliver(dovecot, first, [raw])
	deliver(dovecot, second, [raw])
	sync_account(one)
	sync_account(two)
	rows = synced(one) + synced(two)
	assert [r.status for r in rows] == ["Needs Review", "Needs Review"]
	return frappe._dict(accounts=(one, two), rows=rows, sender=sender)


def review_rows(sender):
	return [r for r in dashboard(limit=200)["needs_review"] if r.sender == sender]


def test_an_email_in_two_mailboxes_is_one_review_row_showing_both(two_mailboxes):
	rows = review_rows(two_mailboxes.sender)
	assert len(rows) == 1
	assert set(rows[0].mailboxes.split("\n")) == set(two_mailboxes.accounts)


def test_assigning_the_one_row_files_every_copy(two_mailboxes):
	customer = make_customer(f"Copies {unique()}")
	row = review_rows(two_mailboxes.sender)[0]
	assign_to_customer([row.name], customer)
	statuses = {r.account: (r.status, r.reason) for r in frappe.get_all(
		"Synced Email", filters={"name": ("in", [r.name for r in two_mailboxes.rows])}, fields=["account", "status", "reason"])}  # fmt: skip
	assert {s for s, _ in statuses.values()} == {"Filed"}
	assert review_rows(two_mailboxes.sender) == []


def test_ignoring_the_one_row_skips_every_copy_and_drops_the_communication(two_mailboxes):
	row = review_rows(two_mailboxes.sender)[0]
	communication = row.communication
	ignore_senders([row.name])
	rows = frappe.get_all(
		"Synced Email", filters={"name": ("in", [r.name for r in two_mailboxes.rows])}, fields=["status", "communication"]
	)
	assert [(r.status, r.communication) for r in rows] == [("Skipped", None), ("Skipped", None)]
	assert not frappe.db.exists("Communication", communication)


def test_a_support_agent_with_the_reviewer_role_triages_from_the_page(two_mailboxes):
	customer = make_customer(f"Triage {unique()}")
	agent = site_user("triage", "Support Team", "Email Sync Reviewer", "Sales User")
	frappe.set_user(agent)
	rows = [r for r in dashboard(limit=200)["needs_review"] if r.sender == two_mailboxes.sender]
	assert len(rows) == 1
	assign_to_customer([rows[0].name], customer)
	frappe.set_user("Administrator")
	assert frappe.db.get_value("Synced Email", rows[0].name, "status") == "Filed"
	plain = site_user("plain-support", "Support Team")
	frappe.set_user(plain)
	with pytest.raises(frappe.PermissionError):
		dashboard()
