"""The account form for a Microsoft 365 shared mailbox read through a person's own sign-in: the Mailbox option,
its hint, a Connect button (this kind signs in, unlike Shared or delegated) and the setup step that says
whom to sign in as."""

import frappe
from browserlib import expect, go, login, settle, shoot, wait_for_form
from factories import unique


def test_a_draft_shared_mailbox_through_a_sign_in_asks_to_connect_as_yourself(stack, new_page, admin):
	name = frappe.get_doc({"doctype": "Email Sync Account", "provider": "Microsoft", "status": "Draft",
		"email_address": f"{unique('support')}@contoso.example", "mailbox_kind": "Shared, through my sign-in",
		"microsoft_tenant": "organizations"}).insert(ignore_permissions=True).name  # fmt: skip
	frappe.db.commit()
	page = new_page()
	login(page, stack, admin.email, admin.password)
	go(page, stack, f"email-sync-account/{name}")
	wait_for_form(page, "Email Sync Account", name)

	mailbox = page.locator("select[data-fieldname='mailbox_kind']")
	expect(mailbox).to_have_value("Shared, through my sign-in")
	expect(page.locator(".frappe-control[data-fieldname='mailbox_kind']")).to_contain_text("sign in as yourself")
	expect(page.locator(".page-actions button[data-label='Connect']")).to_be_visible()
	steps = page.locator(".form-dashboard .form-headline, .form-message").filter(has_text="Set up this mailbox")
	expect(steps).to_contain_text("☐ 2. Connect: sign in to Microsoft as yourself, a person with access to this shared mailbox")
	settle(page)
	shoot(page, "account-shared-through-sign-in")

	# The app-only kind has no Connect button: nobody signs in.
	mailbox.select_option("Shared or delegated")
	page.keyboard.press("Control+s")
	expect(page.locator(".indicator-pill", has_text="Not Saved")).to_have_count(0)
	expect(page.locator(".page-actions button[data-label='Connect']")).to_have_count(0)
	assert not page.errors, page.errors
