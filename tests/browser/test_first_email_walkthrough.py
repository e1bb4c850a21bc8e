"""The README's 'Connect an IMAP mailbox' steps, done in the desk as an administrator does them: a Customer
with its Email Domain, a new IMAP account saved, Test Connection (the preview says the email will be filed
on that Customer, INBOX is ticked), Active, Sync Now, and the email on the Customer's Emails tab, in well
under the 10 minutes a new site is given for its first email. The Customer's form, kept by the desk since it
was saved, shows the email on its timeline too."""

import re
import time

import frappe
from browserlib import expect, go, login, settle, shoot, wait_for_form
from data import days_ago, message
from factories import deliver, unique

SYNC_TIMEOUT_MS = 180_000  # the worker may first finish scheduled syncs queued on a busy bench


def fill(page, fieldname, value):
	control = page.locator(f".form-layout .frappe-control[data-fieldname='{fieldname}']").first
	select = control.locator("select")
	if select.count():
		select.select_option(value)
		return
	box = control.locator("textarea, input:not([type=checkbox])").first
	box.fill(value)
	box.press("Tab")


def save(page):
	page.keyboard.press("Control+s")
	page.wait_for_function("() => cur_frm && !cur_frm.is_new() && !cur_frm.is_dirty() && !frappe.dom.freeze_count")


def test_first_email_on_a_customer_by_the_readme_steps(stack, new_page, admin, dovecot):
	started = time.monotonic()
	domain = f"{unique('walk')}.test"
	customer_name = f"Walk {domain}"
	# .test, not .example: a test session starting elsewhere pauses Active .example accounts (conftest)
	box = dovecot.add_user(name=f"{unique('walk')}@mail.walk.test")
	subject = f"Quote for 40 pallets {unique('#')}"
	deliver(dovecot, box, [message(f"Jane Buyer <jane@{domain}>", box.name, subject, "Could you quote 40 pallets?",
		date=days_ago(0.01))])  # fmt: skip

	page = new_page()
	login(page, stack, admin.email, admin.password)
	# Step 1: the Customer the mail belongs to, by its domain (Details tab, under Customer Group)
	go(page, stack, "customer/new")
	page.wait_for_selector(".form-layout .frappe-control[data-fieldname='email_sync_domains'] textarea")
	fill(page, "customer_name", customer_name)
	fill(page, "email_sync_domains", domain)
	save(page)
	customer = page.evaluate("cur_frm.docname")

	# Step 2: the account, saved, then Test Connection
	go(page, stack, "email-sync-account/new")
	page.wait_for_selector(".form-layout .frappe-control[data-fieldname='imap_host'] input")
	fill(page, "email_address", box.name)
	fill(page, "imap_host", dovecot.host)
	fill(page, "imap_security", "None")
	expect(page.locator(".form-layout input[data-fieldname='imap_port']")).to_have_value("143")
	fill(page, "imap_port", str(dovecot.port))
	fill(page, "password", box.password)
	save(page)
	wait_for_form(page, "Email Sync Account", box.name)
	page.locator(".page-actions button", has_text="Test Connection").click()
	dialog = page.locator(".modal.show")
	expect(dialog.locator(".modal-title")).to_have_text("Connected: choose folders to sync")
	preview = dialog.locator("tr", has_text=subject)
	expect(preview).to_contain_text("Filed")
	expect(preview).to_contain_text(f"its domain belongs to Customer {customer_name}")
	expect(dialog.locator(".checkbox label", has_text="INBOX").locator("input")).to_be_checked()
	dialog.locator(".btn-primary", has_text="Use these folders").click()
	expect(dialog).to_be_hidden()

	# Step 5: Active, saved, Sync Now; the form tells when it is done
	fill(page, "status", "Active")
	save(page)
	page.locator(".page-actions button", has_text="Sync Now").click()
	headline = page.locator(".form-dashboard .form-headline, .form-message").filter(has_text="Healthy")
	expect(headline).to_contain_text("1 email filed", timeout=SYNC_TIMEOUT_MS)

	# Step 6: the email on the Customer's Emails tab
	go(page, stack, f"customer/{customer}")
	wait_for_form(page, "Customer", customer)
	page.locator(".form-tabs .nav-link", has_text=re.compile(r"^\s*Emails\s*$")).click()
	row = page.locator(".email-sync-row", has_text=subject)
	expect(row).to_be_visible()
	expect(row).to_contain_text("Jane Buyer")
	# The desk kept the Customer's form from step 1: its timeline catches up with the mail synced since
	expect(page.locator(".new-timeline .timeline-item", has_text=subject).first).to_be_visible()
	elapsed = time.monotonic() - started
	page.locator("#alert-container .desk-alert .close").evaluate_all("(links) => links.forEach((a) => a.click())")
	settle(page, 800)
	shoot(page, "first-email-on-customer")
	assert elapsed < 600, f"the README's steps took {elapsed:.0f} s"
	frappe.db.rollback()
	assert frappe.db.get_value("Email Sync Account", box.name, "status") == "Active"
	assert frappe.db.get_value("Email Sync Folder", {"parent": box.name}, "folder_name") == "INBOX"
	frappe.db.set_value("Email Sync Account", box.name, "status", "Paused")  # its server goes with the test session
	frappe.db.commit()
	assert not page.errors, page.errors
