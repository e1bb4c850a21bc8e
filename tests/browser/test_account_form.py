"""The account form's rough edges: the port follows the security chosen, a Draft's setup steps count a host and
password without a username as done, and a Draft offers no Sync Now (which could only fail)."""

import frappe
from browserlib import expect, go, login, settle, wait_for_form
from factories import unique


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
