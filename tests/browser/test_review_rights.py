"""Needs Review offers each reviewer only what they may do. A support agent given Email Sync Reviewer may
create Issues from waiting mail but may not edit Customers, so Assign and New Customer (which could only answer
"Not permitted") are not offered, and the page says who can; a salesperson reviewer may file on Customers, and
ignoring a sender stays with System Managers."""

import frappe
import pytest
from browserlib import expect, go, login, settle, shoot
from data import days_ago, make_user, message
from factories import deliver, make_account, make_contact, make_customer, new_mailbox, unique
from test_shared_addresses import shared_addresses

from email_sync.sync.runner import sync_account


@pytest.fixture(scope="module")
def support_reviewer(site):
	return make_user("review-support", ["Support Team", "Email Sync Reviewer"], "Sue", "Triage")


@pytest.fixture(scope="module")
def sales_reviewer(site):
	return make_user("review-sales", ["Sales User", "Email Sync Reviewer"], "Sam", "Triage")


@pytest.fixture(scope="module")
def waiting(dovecot):
	"""A shared mailbox with one email per test waiting in Needs Review: from a stranger, or from an address
	the Contacts of two Customers share (then the page offers File on each Customer, to those who may)."""
	user = new_mailbox(dovecot)
	account = make_account(dovecot, user, frequency="Manual only")

	def new_email(topic: str, sender: str | None = None) -> str:
		subject = f"{topic} {unique('#')}"
		deliver(dovecot, user, [message(sender or f"Ina Stranger <{unique('ina')}@initech.test>", user.name, subject,
			"Can we get your price list?", date=days_ago(0.001))])
		with shared_addresses("Needs Review"):
			assert sync_account(account)["Needs Review"] == 1
		return subject

	return new_email


def review_row(new_page, stack, who, subject):
	page = new_page()
	login(page, stack, who.email, who.password)
	go(page, stack, "email-sync")
	row = page.locator(".es-review tr", has_text=subject)
	expect(row).to_be_visible()
	return page, row


def test_a_support_reviewer_is_offered_issues_only_and_told_who_files_on_customers(stack, new_page, support_reviewer,
		waiting):
	subject = waiting("Price list for 2027?")
	page, row = review_row(new_page, stack, support_reviewer, subject)
	expect(row.locator(".es-create-issue")).to_be_visible()
	for action in ("es-assign", "es-create-customer", "es-ignore"):
		expect(row.locator(f".{action}")).to_have_count(0)
	review = page.locator(".es-review")
	expect(review.locator(".es-bulk-assign, .es-bulk-ignore")).to_have_count(0)
	expect(review.locator(".es-missing-rights")).to_contain_text("the Sales User role")
	expect(review.locator(".es-missing-rights")).to_contain_text("is for System Managers")
	settle(page)
	shoot(page, "needs-review-support-reviewer")

	row.locator(".es-create-issue").click()
	expect(row).to_have_count(0)
	frappe.db.rollback()
	issue = frappe.db.get_value("Synced Email", {"subject": subject}, "issue")
	assert issue and frappe.db.get_value("Issue", issue, "subject") == subject
	assert not page.errors, page.errors


def test_a_support_reviewer_is_not_offered_to_file_on_a_customer_sharing_an_address(stack, new_page,
		support_reviewer, waiting):
	home = f"{unique('smiths')}@home.test"
	for customer in (make_customer(f"Smith Senior {unique()}"), make_customer(f"Smith Junior {unique()}")):
		make_contact("Pat", [home], customer)
	frappe.db.commit()
	subject = waiting("Our two accounts", sender=f"Pat Smith <{home}>")
	page, row = review_row(new_page, stack, support_reviewer, subject)
	expect(row).to_contain_text("is shared by Contacts of")
	expect(row.locator(".es-file-on, .es-file-all")).to_have_count(0)
	expect(row.locator(".es-create-issue")).to_be_visible()
	assert not page.errors, page.errors


def test_a_sales_reviewer_is_offered_customers_but_not_ignoring_senders(stack, new_page, sales_reviewer, waiting):
	subject = waiting("Catalogue request")
	page, row = review_row(new_page, stack, sales_reviewer, subject)
	expect(row.locator(".es-assign")).to_be_visible()
	expect(row.locator(".es-create-customer")).to_be_visible()
	expect(row.locator(".es-ignore")).to_have_count(0)
	rights = page.locator(".es-review .es-missing-rights")
	expect(rights).to_contain_text("is for System Managers")
	expect(rights).not_to_contain_text("Sales User")
	assert not page.errors, page.errors
