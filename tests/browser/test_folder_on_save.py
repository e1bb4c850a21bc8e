"""A wrong folder name is caught on save: the admin types a folder into the account's Folders table with a
typo; the save is refused, naming the missing folder and the folders the server has; with the name put right
the account saves."""

import frappe
from browserlib import expect, go, login, settle, shoot, wait_for_form
from dovecot import Mailbox
from factories import make_account, new_mailbox, unique


def test_a_folder_that_does_not_exist_is_refused_on_save_and_the_fixed_name_saves(stack, new_page, admin, dovecot):
	box = new_mailbox(dovecot)
	folder = f"Customers {unique('')}"  # a folder the admin made in their mail client
	Mailbox(dovecot, box).create(folder)
	typo = folder.replace("Customers", "Custmers")
	account = make_account(dovecot, box, frequency="Manual only", folders=[{"folder_name": "INBOX"}])

	page = new_page()
	login(page, stack, admin.email, admin.password)
	go(page, stack, f"email-sync-account/{account}")
	wait_for_form(page, "Email Sync Account", account)

	table = page.locator('.frappe-control[data-fieldname="folders"]')
	table.locator(".grid-add-row").click()
	cell = table.locator('.grid-row[data-idx="2"] .grid-static-col[data-fieldname="folder_name"]')
	name = cell.locator('input[data-fieldname="folder_name"]')
	cell.click()
	name.fill(typo)
	page.keyboard.press("Control+s")

	refused = page.locator(".modal.show").filter(has_text="Folder not found on the server")
	expect(refused).to_be_visible()
	expect(refused).to_contain_text(f'The folder "{typo}" does not exist')
	expect(refused).to_contain_text("Folders that exist:")
	for existing in ("INBOX", "Sent", folder):
		expect(refused).to_contain_text(existing)
	expect(page.locator(".indicator-pill", has_text="Not Saved")).to_be_visible()
	settle(page)
	shoot(page, "folder-missing-on-save")
	frappe.db.rollback()
	assert frappe.get_all("Email Sync Folder", filters={"parent": account}, pluck="folder_name") == ["INBOX"]

	refused.locator(".btn-modal-close").click()
	expect(refused).to_be_hidden()
	cell.click()
	name.fill(folder)
	page.keyboard.press("Control+s")
	expect(page.locator(".indicator-pill", has_text="Not Saved")).to_have_count(0)
	frappe.db.rollback()  # see what the browser's save committed
	saved = frappe.get_all("Email Sync Folder", filters={"parent": account}, pluck="folder_name", order_by="idx")
	assert saved == ["INBOX", folder]
	# The refused save is a 417 whose server message the desk also logs; anything else is a real error.
	errors = [e for e in page.errors if "status of 417" not in e and f'"{typo}" does not exist' not in e]
	assert not errors, errors
