"""Putting a wrong filing right from the desk, beyond reassigning: a salesperson removes a private email from
the Customer and then from its Contact, after which it is gone from the site and the next sync leaves it
out; an account manager links an email to an existing Issue and the customer's reply joins that Issue; a
reviewer settles an email from an address two Customers share with one click on the Email Sync page."""

import frappe
import pytest
from browserlib import expect, go, login, settle, shoot, wait_for_desk, wait_for_form
from data import days_ago, make_user, message, party
from factories import deliver, mail, make_account, make_contact, make_customer, new_mailbox, unique
from test_reassign_email import pick
from test_shared_addresses import shared_addresses

from email_sync.sync.runner import sync_account


@pytest.fixture(scope="module")
def account_manager(site):
	"""Looks after customers and answers their support requests: Sales User and Support Team."""
	return make_user("account-manager", ["Sales User", "Support Team"], "Alex", "Account")


@pytest.fixture(scope="module")
def reviewer(site):
	"""Reviews the mail Email Sync could not file alone (Email Sync Reviewer), and edits Customers."""
	return make_user("reviewer", ["Email Sync Reviewer", "Sales User"], "Robin", "Review")


def open_emails(page, stack, doctype, name):
	"""The Emails tab of a Customer or Contact, as a user opens it."""
	go(page, stack, f"{frappe.scrub(doctype).replace('_', '-')}/{name}")
	wait_for_form(page, doctype, name)
	# The form done drawing itself: on a busy site a late pass redraws it (its tabs, and the list with any
	# menu open on it)
	page.wait_for_load_state("networkidle")
	settle(page, 1_500)
	tab = f"{frappe.scrub(doctype)}-email_sync_emails_tab"  # forms opened before stay in the page, hidden
	page.locator(f"#{tab}-tab").click()
	pane = page.locator(f"#{tab}")
	expect(pane.locator(".email-sync-row, p.text-muted").first).to_be_visible()
	return pane


def menu(pane, subject, action):
	"""The email's filing menu, then one of its entries. The list may be drawn again while the form settles
	(a menu opened on the row it replaced is gone): open it again then."""
	row = pane.locator(".email-sync-row", has_text=subject)
	entry = row.locator(f".email-sync-{action}")
	for _attempt in range(4):
		row.locator(".email-sync-actions-toggle").click()
		try:
			expect(entry).to_be_visible(timeout=3_000)
			break
		except AssertionError:
			page = row.page
			page.keyboard.press("Escape")
			settle(page, 500)
	entry.click()


def test_a_salesperson_removes_an_email_and_the_next_sync_leaves_it_out(stack, new_page, sales_user, dovecot):
	acme = party("Acme", "Lee")
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, frequency="Manual only")
	subject = f"Dinner on Friday? {unique('#')}"
	deliver(dovecot, box, [message(f"Lee <{acme.address}>", box.name, subject, "Not business: see you on Friday!",
		date=days_ago(0.1))])  # fmt: skip
	assert sync_account(account)["Filed"] == 1
	synced = frappe.db.get_value("Synced Email", {"account": account, "subject": subject}, ["name", "communication"], as_dict=True)

	page = new_page()
	login(page, stack, sales_user.email, sales_user.password)
	pane = open_emails(page, stack, "Customer", acme.customer)
	menu(pane, subject, "remove")
	confirm = page.locator(".modal.show .modal-dialog", has_text="Remove this email from Customer?")
	expect(confirm.locator(".email-sync-removal-outcome")).to_have_text(f"It stays on Contact {acme.contact}.")
	confirm.locator(".btn-danger", has_text="Remove").click()
	expect(pane.locator(".email-sync-row", has_text=subject)).to_have_count(0)

	# still on its Contact; taken off there too, nothing holds it: the dialog says it leaves the site
	pane = open_emails(page, stack, "Contact", acme.contact)
	menu(pane, subject, "remove")
	confirm = page.locator(".modal.show .modal-dialog", has_text="Delete this email?")
	expect(confirm.locator(".email-sync-removal-outcome")).to_contain_text("deleted from the site")
	settle(page, 300)
	shoot(page, "remove-email")
	confirm.locator(".btn-danger", has_text="Delete email").click()
	expect(pane.locator(".email-sync-row", has_text=subject)).to_have_count(0)
	assert not page.errors, page.errors

	frappe.db.rollback()
	assert frappe.db.get_value("Synced Email", synced.name, ["status", "communication"]) == ("Removed", None)
	assert not frappe.db.exists("Communication", synced.communication)
	# the mailbox read again from the start: the email stays out
	frappe.db.set_value("Email Sync Account", account, "sync_cursor", None)
	frappe.db.commit()
	counts = sync_account(account)
	assert counts.get("Filed", 0) == 0 and counts["already_synced"] == 1, counts
	assert not frappe.db.exists("Communication", synced.communication)
	page.reload()
	wait_for_desk(page)
	expect(open_emails(page, stack, "Contact", acme.contact)).to_contain_text("No emails yet.")


def test_an_email_linked_to_an_existing_issue_brings_the_reply_along(stack, new_page, account_manager, dovecot):
	acme = party("Acme", "Lee")
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, frequency="Manual only")
	issue = frappe.get_doc({"doctype": "Issue", "subject": f"Late deliveries {unique('#')}", "customer": acme.customer,
		"raised_by": acme.address}).insert(ignore_permissions=True)  # fmt: skip
	frappe.db.commit()
	subject = f"The pallets came late again {unique('#')}"
	deliver(dovecot, box, [message(f"Lee <{acme.address}>", box.name, subject, "Third time this month.",
		date=days_ago(0.1))])  # fmt: skip
	assert sync_account(account)["Filed"] == 1
	synced = frappe.db.get_value("Synced Email", {"account": account, "subject": subject}, ["name", "communication"], as_dict=True)

	page = new_page()
	login(page, stack, account_manager.email, account_manager.password)
	pane = open_emails(page, stack, "Customer", acme.customer)
	menu(pane, subject, "link-issue")
	dialog = page.locator(".modal.show .modal-dialog", has_text="Link to Issue")
	pick(page, dialog, "issue", issue.name, issue.name)
	settle(page, 300)
	shoot(page, "link-email-to-issue")
	dialog.locator(".btn-primary", has_text="Link").click()
	expect(page.locator(".modal.show", has_text="Link to Issue")).to_have_count(0)
	expect(pane.locator(".email-sync-row", has_text=subject).locator(".email-sync-issue")).to_have_text(issue.name)

	# Lee answers the email: the reply joins the Issue it was linked to
	frappe.db.rollback()
	message_id = frappe.db.get_value("Communication", synced.communication, "message_id")
	reply = f"Re: {subject}"
	deliver(dovecot, box, [mail(f"Lee <{acme.address}>", box.name, subject=reply, body="And the invoice is wrong too.",
		date=days_ago(0.05), headers={"In-Reply-To": f"<{message_id}>", "References": f"<{message_id}>"})])  # fmt: skip
	assert sync_account(account)["Filed"] == 1
	assert frappe.db.get_value("Synced Email", {"account": account, "subject": reply}, "issue") == issue.name
	page.reload()
	wait_for_desk(page)
	pane = open_emails(page, stack, "Customer", acme.customer)
	expect(pane.locator(".email-sync-row", has_text=reply).locator(".email-sync-issue")).to_have_text(issue.name)
	assert not page.errors, page.errors
	assert frappe.db.get_value("Synced Email", synced.name, "issue") == issue.name
	assert "Linked to Issue" in frappe.db.get_value("Synced Email", synced.name, "decision_history")


def test_a_reviewer_files_mail_from_a_shared_address_on_one_customer(stack, new_page, reviewer, dovecot):
	home = f"{unique('smiths')}@home.test"
	tag = unique("")[:4]
	senior, junior = make_customer(f"Smith Senior {tag}"), make_customer(f"Smith Junior {tag}")
	make_contact("Pat Smith", [home], senior)
	sam = make_contact("Sam Smith", [home], junior)
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, frequency="Manual only")
	subject = f"Move the lessons to Tuesday {unique('#')}"
	deliver(dovecot, box, [message(f"The Smiths <{home}>", box.name, subject, "Can Sam's lessons move to Tuesday?",
		date=days_ago(0))])  # fmt: skip
	with shared_addresses("Needs Review"):
		assert sync_account(account)["Needs Review"] == 1

	page = new_page()
	login(page, stack, reviewer.email, reviewer.password)
	go(page, stack, "email-sync")
	page.wait_for_selector(".es-review h5")
	row = page.locator(".es-review tr", has_text=subject)
	expect(row).to_contain_text(f"{home} is shared by Contacts of {junior} and {senior}: choose where to file it.")
	expect(row.locator(".es-candidate")).to_have_count(2)
	expect(row.locator(".es-candidate", has_text=senior)).to_contain_text("Pat Smith")
	expect(row.locator(".es-candidate", has_text=junior)).to_contain_text("Sam Smith")
	expect(row.locator(".es-shared-match")).to_contain_text(senior)
	expect(row.locator(".es-shared-match")).to_contain_text(junior)
	settle(page, 300)
	shoot(page, "shared-address-review")
	row.locator(".es-file-on", has_text=junior).click()
	expect(page.locator(".es-review tr", has_text=subject)).to_have_count(0)
	assert not page.errors, page.errors

	frappe.db.rollback()
	filed = frappe.db.get_value("Synced Email", {"account": account, "subject": subject},
		["status", "matched_contacts", "matched_customers", "decision_history"], as_dict=True)  # fmt: skip
	assert (filed.status, filed.matched_contacts, filed.matched_customers) == ("Filed", sam, junior)
	assert reviewer.email in filed.decision_history
