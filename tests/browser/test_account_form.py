"""The account form's rough edges: the port follows the security chosen, a Draft's setup steps count a host and
password without a username as done, a Draft offers no Sync Now (which could only fail), and a folder that
no longer exists is a connected account with the live list to pick from, not a failed connection."""

import frappe
from browserlib import expect, go, login, settle, shoot, wait_for_form
from factories import make_account, new_mailbox, unique


def test_imap_port_follows_security_and_draft_steps_are_right(stack, new_page, admin):
	name = frappe.get_doc({"doctype": "Email Sync Account", "provider": "IMAP", "status": "Draft",
		"email_address": f"{unique('draft')}@mail.example", "imap_host": "imap.mail.example", "imap_security": "SSL",
		"password": "secret-pass"}).insert(ignore_permissions=True).name  # fmt: skip
	frappe.db.commit()
	page = new_page()
	login(page, stack, admin.email, admin.password)
	go(page, stack, f"email-sync-account/{name}")
	wait_for_form(page, "Email Sync Account", name)

	steps = page.locator(".form-dashboard .form-headline, .form-message").filter(has_text="Set up this mailbox")
	expect(steps).to_contain_text("☑ 2. IMAP host, username and password")
	expect(page.locator(".page-actions button", has_text="Sync Now")).to_have_count(0)
	expect(page.locator(".page-actions button", has_text="Test Connection")).to_be_visible()

	port = page.locator("input[data-fieldname='imap_port']")
	security = page.locator("select[data-fieldname='imap_security']")
	assert port.input_value() == "993"
	security.select_option("STARTTLS")
	expect(port).to_have_value("143")
	security.select_option("None")
	expect(port).to_have_value("143")
	security.select_option("SSL")
	expect(port).to_have_value("993")
	port.fill("10993")  # a port the admin typed stays
	port.blur()
	security.select_option("STARTTLS")
	expect(port).to_have_value("10993")
	settle(page)
	assert not page.errors, page.errors


def test_a_missing_folder_is_connected_with_the_live_list_to_pick_from(stack, new_page, admin, dovecot):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, frequency="Manual only", folders=[{"folder_name": "INBOX"}])
	frappe.db.set_value("Email Sync Folder", {"parent": account}, "folder_name", "Kunden")  # renamed since
	frappe.db.commit()
	page = new_page()
	login(page, stack, admin.email, admin.password)
	go(page, stack, f"email-sync-account/{account}")
	wait_for_form(page, "Email Sync Account", account)

	page.locator(".page-actions button", has_text="Test Connection").click()
	dialog = page.locator(".modal.show")
	expect(dialog.locator(".modal-title")).to_have_text("Connected, but a folder does not exist")
	expect(dialog).to_contain_text('Connected, but the folder "Kunden" does not exist')
	dialog.locator("label", has_text="Sent").locator("input").check()
	shoot(page, "account-missing-folder")
	dialog.locator(".btn-primary", has_text="Use these folders").click()
	page.keyboard.press("Control+s")
	expect(page.locator(".indicator-pill", has_text="Not Saved")).to_have_count(0)
	frappe.db.rollback()  # see what the browser's save committed
	assert frappe.get_all("Email Sync Folder", filters={"parent": account}, pluck="folder_name") == ["Sent"]
	settle(page)
	assert not page.errors, page.errors


def test_the_folder_picker_starts_from_what_an_empty_list_syncs(stack, new_page, admin, dovecot):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, status="Draft", frequency="Manual only", direction="Bidirectional")
	page = new_page()
	login(page, stack, admin.email, admin.password)
	go(page, stack, f"email-sync-account/{account}")
	wait_for_form(page, "Email Sync Account", account)

	page.locator(".page-actions button", has_text="Test Connection").click()
	dialog = page.locator(".modal.show")
	expect(dialog.locator(".modal-title")).to_have_text("Connected: choose folders to sync")

	def option(name):
		return dialog.locator(".checkbox label", has_text=name)

	expect(option("INBOX")).to_have_text("INBOX")  # its role is not repeated after its name
	expect(option("INBOX").locator("input")).to_be_checked()
	expect(option("Sent").locator("input")).to_be_checked()  # Bidirectional reads Sent too
	expect(option("Drafts").locator("input")).not_to_be_checked()
	dialog.locator(".btn-primary", has_text="Use these folders").click()
	page.keyboard.press("Control+s")
	expect(page.locator(".indicator-pill", has_text="Not Saved")).to_have_count(0)
	frappe.db.rollback()
	assert sorted(frappe.get_all("Email Sync Folder", filters={"parent": account}, pluck="folder_name")) == ["INBOX", "Sent"]
	assert not page.errors, page.errors
