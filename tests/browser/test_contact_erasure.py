"""Erase Synced Email on the Contact form: a System Manager sees what would go, confirms, and it is gone; a
salesperson has no such button, and the server refuses her."""

import time

import frappe
import pytest
from browserlib import call, expect, go, login, settle, shoot, wait_for_form
from data import days_ago, message, party
from factories import deliver, make_account, new_mailbox, synced, unique

from email_sync.sync.runner import sync_account

ACTIONS = '.inner-group-button[data-label="Actions"]'


@pytest.fixture(scope="module")
def nora(dovecot):
	"""Nora asked to be forgotten; two of her emails were synced."""
	person = party("Forget", "Nora")
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, frequency="Manual only")
	subjects = [f"Please forget me {unique('#')}", f"My old order {unique('#')}"]
	deliver(dovecot, box, [
		message(f"Nora Lind <{person.address}>", box.name, subject, "Delete my data.", date=days_ago(1 + i))
		for i, subject in enumerate(subjects)
	])  # fmt: skip
	sync_account(account)
	assert len(synced(account)) == 2
	return frappe._dict(person=person, account=account, subjects=subjects)


def open_contact(page, stack, contact):
	go(page, stack, f"contact/{contact}")
	wait_for_form(page, "Contact", contact)


def test_a_salesperson_has_no_erase_button_and_is_refused(stack, new_page, sales_user, nora):
	page = new_page()
	login(page, stack, sales_user.email, sales_user.password)
	open_contact(page, stack, nora.person.contact)
	expect(page.locator(f"{ACTIONS} .dropdown-item", has_text="Erase Synced Email")).to_have_count(0)
	refused = call(page, "email_sync.erasure.erase", {"contact": nora.person.contact})
	assert refused["status"] == 403
	assert len(synced(nora.account)) == 2


def test_a_system_manager_sees_what_goes_and_erases_it(stack, new_page, admin, nora):
	page = new_page()
	login(page, stack, admin.email, admin.password)
	open_contact(page, stack, nora.person.contact)
	page.locator(f"{ACTIONS} button").click()
	page.locator(f"{ACTIONS} .dropdown-item", has_text="Erase Synced Email").click()
	dialog = page.locator(".modal.show", has_text="Erase synced email of")
	for subject in nora.subjects:
		expect(dialog).to_contain_text(subject)
	expect(dialog).to_contain_text("2 synced emails")
	expect(dialog.get_by_label("Blacklist these addresses")).to_be_checked()
	settle(page)
	shoot(page, "erase-synced-email-dialog")

	dialog.locator(".btn-modal-primary").click()
	expect(page.locator(".alert-message", has_text="2 synced emails")).to_be_visible()
	deadline = time.monotonic() + 10
	while synced(nora.account) and time.monotonic() < deadline:
		frappe.db.rollback()  # see what the request committed
		time.sleep(0.2)
	assert not synced(nora.account)
	assert frappe.db.exists("Email Sync Blacklist", nora.person.address)
	assert frappe.db.exists("Email Sync Erasure Log", {"contact": nora.person.contact, "erased_by": "Administrator"})
	assert not page.errors, page.errors
