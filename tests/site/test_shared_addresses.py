"""An address shared by Contacts of two Customers (a family's two accounts, a consultant of two clients), on
the real site: filed on all of them, or held in Needs Review with both candidates named until a reviewer
files it on one Customer or on all, every copy following."""

import json
from contextlib import contextmanager
from datetime import datetime, timezone

import frappe
import pytest
from factories import deliver, mail, make_account, make_contact, make_customer, new_mailbox, site_user, unique

from email_sync import api
from email_sync.desk import dashboard
from email_sync.sync.retrofile import file_for_contact
from email_sync.sync.runner import sync_account


@contextmanager
def shared_addresses(action):
	"""The site-wide setting, for as short as the sync needs it. Only this field is written: other suites
	share the site and change other settings meanwhile."""
	field = "shared_address_action"
	before = frappe.db.get_single_value("Email Sync Settings", field) or "File on all"
	frappe.db.set_single_value("Email Sync Settings", field, action)
	frappe.db.commit()
	try:
		yield
	finally:
		frappe.db.set_single_value("Email Sync Settings", field, before)
		frappe.db.commit()


@pytest.fixture
def smiths(dovecot):
	"""The Smiths write from one address; Senior and Junior are Customers with a Contact each holding it.
	Two shared mailboxes receive their mail."""
	home = f"{unique('smiths')}@home.test"
	senior, junior = make_customer(f"Smith Senior {unique()}"), make_customer(f"Smith Junior {unique()}")
	boxes = new_mailbox(dovecot), new_mailbox(dovecot)
	frappe.db.commit()
	return frappe._dict(
		home=home, senior=senior, junior=junior, boxes=boxes,
		pat_senior=make_contact("Pat", [home], senior), pat_junior=make_contact("Pat", [home], junior),
		accounts=[make_account(dovecot, box) for box in boxes],
	)  # fmt: skip


def receive(dovecot, smiths, action, sender=None, cc=""):
	"""A new email from the Smiths (newest on the site: the review list shows it first), synced by both
	mailboxes under `action`; its Synced Emails, first mailbox first."""
	subject = f"Our two accounts {unique()}"
	raw = mail(sender or smiths.home, ", ".join(b.name for b in smiths.boxes), subject=subject, cc=cc,
		date=datetime.now(timezone.utc))  # fmt: skip
	with shared_addresses(action):
		for box, account in zip(smiths.boxes, smiths.accounts):
			deliver(dovecot, box, [raw])
			sync_account(account)
	return [
		frappe.get_all("Synced Email", filters={"account": account, "subject": subject}, fields=["*"])[0]
		for account in smiths.accounts
	]


def links(communication):
	return sorted(
		(link.link_doctype, link.link_name)
		for link in frappe.get_all("Communication Link", filters={"parent": communication}, fields=["link_doctype", "link_name"])
	)


def reviewer():
	"""Reviews Needs Review (Email Sync Reviewer) and may change Customers (Sales User)."""
	return site_user("shared-reviewer", "Email Sync Reviewer", "Sales User")


def test_file_on_all_files_on_both_customers_and_says_why(dovecot, smiths):
	rows = receive(dovecot, smiths, "File on all")
	assert [(r.status, r.decision_rule) for r in rows] == [("Filed", "matched")] * 2
	pair = " and ".join(sorted([smiths.senior, smiths.junior]))
	assert f"{smiths.home} is shared by Contacts of {pair}: filed on all of them." in rows[0].reason
	assert links(rows[0].communication) == sorted([
		("Contact", smiths.pat_senior), ("Contact", smiths.pat_junior),
		("Customer", smiths.senior), ("Customer", smiths.junior),
	])  # fmt: skip


def test_needs_review_names_both_candidates_and_one_click_files_every_copy_on_one(dovecot, smiths):
	rows = receive(dovecot, smiths, "Needs Review")
	assert [(r.status, r.decision_rule) for r in rows] == [("Needs Review", "shared-address")] * 2
	pair = " and ".join(sorted([smiths.senior, smiths.junior]))
	assert rows[0].reason == f"{smiths.home} is shared by Contacts of {pair}: choose where to file it."
	assert rows[0].communication == rows[1].communication
	assert links(rows[0].communication) == []  # on nobody's timeline until a person chooses

	# the Email Sync page: one row for both copies, each candidate named with its Contact
	[row] = [r for r in dashboard(limit=50)["needs_review"] if r.communication == rows[0].communication]
	assert sorted((c["customer"], [p["name"] for p in c["contacts"]]) for c in row.candidates) == sorted([
		(smiths.senior, [smiths.pat_senior]), (smiths.junior, [smiths.pat_junior])])  # fmt: skip

	user = reviewer()
	frappe.set_user(user)
	assert api.file_shared(json.dumps([row.name]), customer=smiths.junior) == [row.name]
	frappe.set_user("Administrator")
	assert links(rows[0].communication) == [("Contact", smiths.pat_junior), ("Customer", smiths.junior)]
	for copy in frappe.get_all("Synced Email", filters={"name": ("in", [r.name for r in rows])}, fields=["*"]):
		assert (copy.status, copy.matched_contacts, copy.matched_customers) == ("Filed", smiths.pat_junior, smiths.junior)
		assert f"Filed on {smiths.junior} by {user}" in copy.reason
		assert f"{user}: Filed on {smiths.junior}" in copy.decision_history
	assert rows[0].communication not in [r.communication for r in dashboard(limit=50)["needs_review"]]


def test_file_on_all_from_review(dovecot, smiths):
	rows = receive(dovecot, smiths, "Needs Review")
	frappe.set_user(reviewer())
	api.file_shared([rows[0].name])
	frappe.set_user("Administrator")
	assert len(links(rows[0].communication)) == 4
	assert {r.status for r in frappe.get_all("Synced Email", filters={"name": ("in", [r.name for r in rows])},
		fields=["status"])} == {"Filed"}  # fmt: skip


def test_a_colleague_of_one_candidate_in_copy_settles_it_without_review(dovecot, smiths):
	colleague = f"{unique('kim')}@home-office.test"
	kim = make_contact("Kim", [colleague], smiths.senior)
	frappe.db.commit()
	[row, _copy] = receive(dovecot, smiths, "Needs Review", cc=colleague)
	assert (row.status, row.matched_customers) == ("Filed", smiths.senior)
	assert f"filed on {smiths.senior}, named by {colleague}" in row.reason
	assert links(row.communication) == sorted([("Contact", smiths.pat_senior), ("Contact", kim), ("Customer", smiths.senior)])


def test_only_reviewers_file_and_only_on_a_candidate(dovecot, smiths):
	rows = receive(dovecot, smiths, "Needs Review")
	frappe.set_user(site_user("shared-sales", "Sales User"))  # may change Customers, not review mail
	with pytest.raises(frappe.PermissionError):
		api.file_shared([rows[0].name], customer=smiths.senior)
	frappe.set_user(reviewer())
	stranger = make_customer(f"Stranger {unique()}")
	with pytest.raises(frappe.ValidationError, match="not one of the Customers sharing"):
		api.file_shared([rows[0].name], customer=stranger)
	frappe.set_user("Administrator")
	assert frappe.db.get_value("Synced Email", rows[0].name, "status") == "Needs Review"


def test_retro_filing_leaves_the_choice_to_a_person(dovecot, smiths):
	rows = receive(dovecot, smiths, "Needs Review")
	third = make_contact("Pat", [smiths.home], make_customer(f"Smith Cousin {unique()}"))
	frappe.db.commit()
	assert file_for_contact(third) == 0
	assert frappe.db.get_value("Synced Email", rows[0].name, ["status", "decision_rule"]) == ("Needs Review", "shared-address")
