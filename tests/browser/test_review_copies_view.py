"""One email, two mailboxes: an unknown sender writes to two colleagues, each mailbox synced on its own account.
Needs Review lists the email once, naming both mailboxes; assigning it to a Customer through the dialog files
both copies, and the row leaves the list."""

import frappe
from browserlib import expect, go, login, settle, shoot, wait_for_realtime
from data import days_ago, message, party
from factories import deliver, make_account, new_mailbox, unique

from email_sync.sync.runner import sync_account


def test_an_email_in_two_mailboxes_is_one_review_row_and_assigning_it_files_both(stack, new_page, admin, dovecot):
	first, second = new_mailbox(dovecot), new_mailbox(dovecot)
	accounts = [make_account(dovecot, box, frequency="Manual only") for box in (first, second)]
	globex = party("Globex", "Gina")
	subject = f"Samples for both of you {unique('#')}"
	# One message (one Message-ID), delivered to each mailbox; dated now, so it is on Needs Review's first page.
	raw = message(f"Nia Newcomer <{unique('nia')}@freemail.test>", f"{first.name}, {second.name}", subject,
		"Could you both send samples?", date=days_ago(0.0005))  # fmt: skip
	for box, account in zip((first, second), accounts):
		deliver(dovecot, box, [raw])
		assert sync_account(account)["Needs Review"] == 1
	copies = frappe.get_all("Synced Email", filters={"subject": subject}, fields=["name", "account", "status"])
	assert sorted(c.account for c in copies) == sorted(accounts) and {c.status for c in copies} == {"Needs Review"}

	page = new_page()
	login(page, stack, admin.email, admin.password)
	wait_for_realtime(page)
	go(page, stack, "email-sync")
	rows = page.locator(".es-review tbody tr", has_text=subject)
	expect(rows).to_have_count(1)
	mailboxes = rows.locator(".es-mailboxes")
	expect(mailboxes).to_contain_text("In 2 mailboxes")
	for account in accounts:
		expect(mailboxes).to_contain_text(account)
	# Both shown in full, not cut off after the first (the tooltip alone would hide the second)
	assert mailboxes.evaluate("(el) => el.scrollWidth <= el.clientWidth && el.scrollHeight <= el.clientHeight + 1")
	rows.scroll_into_view_if_needed()
	settle(page)
	shoot(page, "needs-review-one-row-two-mailboxes")

	rows.locator(".es-assign").click()
	dialog = page.locator(".modal.show .modal-dialog")
	expect(dialog.locator(".es-assign-emails")).to_contain_text(subject)
	field = dialog.locator('input[data-fieldname="customer"]')
	field.click()
	field.press_sequentially(globex.domain.split(".")[0], delay=30)  # the unique part of its name
	option = dialog.locator('.awesomplete [role="option"]', has_text=globex.customer)
	option.first.click()
	expect(field).to_have_value(globex.customer)
	dialog.locator(".modal-footer .btn-primary", has_text="Assign").click()
	expect(dialog).to_be_hidden()
	expect(rows).to_have_count(0)  # the one row left Needs Review, without a reload

	frappe.db.rollback()  # see what the web app committed
	settled = frappe.get_all("Synced Email", filters={"subject": subject},
		fields=["account", "status", "communication", "matched_customers"])  # fmt: skip
	assert sorted(s.account for s in settled) == sorted(accounts)
	assert {s.status for s in settled} == {"Filed"}, settled
	assert {s.matched_customers for s in settled} == {globex.customer}, settled
	communication = {s.communication for s in settled}
	assert len(communication) == 1 and None not in communication  # one email, filed once
	assert frappe.db.exists("Communication Link", {"parent": communication.pop(), "link_doctype": "Customer",
		"link_name": globex.customer})  # fmt: skip
	assert not page.errors, page.errors
