"""Putting a wrong filing right from the Emails tab: a salesperson reassigns an email filed on the wrong
Customer to the right one and its Contact, learning the address; both tabs follow."""

import frappe
from browserlib import expect, login, settle, shoot
from data import days_ago, message, party
from factories import deliver, make_account, new_mailbox, unique
from test_emails_tab import open_emails_tab

from email_sync.sync.runner import sync_account


def pick(page, dialog, fieldname: str, typed: str, option: str) -> None:
	field = dialog.locator(f'input[data-fieldname="{fieldname}"]')
	field.click()
	field.press_sequentially(typed, delay=30)
	choice = dialog.locator(f'.frappe-control[data-fieldname="{fieldname}"] .awesomplete [role="option"]', has_text=option)
	expect(choice.first).to_be_visible()
	choice.first.click()
	# the input may show the record's title (a Contact's name): the dialog holds its id
	page.wait_for_function("([f, v]) => cur_dialog && cur_dialog.get_value(f) === v", arg=[fieldname, option])


def test_a_salesperson_reassigns_an_email_from_the_emails_tab(stack, new_page, sales_user, dovecot):
	wrong, right = party("Umbrella", "Lee"), party("Initech", "Sam")
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, frequency="Manual only")
	subject = f"Order for Initech {unique('#')}"
	deliver(dovecot, box, [message(f"Lee <{wrong.address}>", box.name, subject, "Please ship to Initech.",
		date=days_ago(0.2))])  # fmt: skip
	assert sync_account(account)["Filed"] == 1

	page = new_page()
	login(page, stack, sales_user.email, sales_user.password)
	row = open_emails_tab(page, stack, wrong.customer).filter(has_text=subject)
	row.locator(".email-sync-actions-toggle").click()
	row.locator(".email-sync-reassign").click()
	dialog = page.locator(".modal.show .modal-dialog", has_text="Reassign email")
	pick(page, dialog, "customer", right.domain.split(".")[0], right.customer)
	pick(page, dialog, "contact", "Sam", right.contact)
	dialog.locator('input[data-fieldname="learn"]').check()
	settle(page, 300)
	shoot(page, "reassign-email")
	dialog.locator(".btn-primary", has_text="Reassign").click()
	expect(page.locator(".modal.show", has_text="Reassign email")).to_have_count(0)
	expect(page.locator(".email-sync-row", has_text=subject)).to_have_count(0)  # gone from the wrong Customer

	rows = open_emails_tab(page, stack, right.customer)
	expect(rows.filter(has_text=subject)).to_be_visible()
	assert not page.errors, page.errors
	frappe.db.rollback()
	row = frappe.db.get_value("Synced Email", {"account": account, "subject": subject},
		["matched_customers", "matched_contacts", "decision_history"], as_dict=True)  # fmt: skip
	assert (row.matched_customers, row.matched_contacts) == (right.customer, right.contact)
	assert sales_user.email in row.decision_history
	assert wrong.address in [e.email_id for e in frappe.get_doc("Contact", right.contact).email_ids]
