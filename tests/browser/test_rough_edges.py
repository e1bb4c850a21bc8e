"""The desk's rough edges, each as a user met it: a Draft account's checklist drawn twice after the first save
(and step 2 with no username), Security set wrong for the port (30 silent seconds before), "1 email(s)" and
"0 errors" on the Email Sync page, an Assign dialog that does not say which email, a tall empty viewer, and a
Contact made again for a known person writing from a second address."""

import time
from datetime import datetime, timezone

import frappe
from browserlib import expect, go, login, settle, shoot, wait_for_form, wait_for_realtime
from data import days_ago, message, party
from factories import deliver, make_account, make_customer, new_mailbox, unique

from email_sync.sync.runner import sync_account


def open_email_sync_page(page, stack):
	wait_for_realtime(page)
	go(page, stack, "email-sync")
	page.wait_for_selector(".es-review h5")


def test_a_new_draft_shows_its_checklist_once_with_step_2_done_without_a_username(stack, new_page, admin):
	page = new_page()
	login(page, stack, admin.email, admin.password)
	go(page, stack, "email-sync-account/new")
	address = page.locator("input[data-fieldname='email_address']")
	address.wait_for()
	settle(page, 600)
	address.fill(f"{unique('draft')}@mail.example")
	page.locator("input[data-fieldname='imap_host']").fill("imap.mail.example")
	page.locator("input[data-fieldname='password']").fill("secret-pass")  # Username left empty: the address is used
	settle(page)
	page.keyboard.press("Control+s")
	page.wait_for_function("() => cur_frm && !cur_frm.is_new() && !cur_frm.is_dirty() && cur_frm.doc.status === 'Draft'")
	settle(page, 1500)  # the first save refreshes the form twice

	message_box = page.locator(".form-message")
	expect(message_box.get_by_text("Set up this mailbox")).to_have_count(1)
	expect(message_box).to_contain_text("☑ 2. IMAP host, username and password")
	expect(message_box).to_contain_text("☐ 3. Folders picked from the live list")
	assert not page.evaluate("cur_frm.doc.username"), "the test is about an empty Username"
	page.reload()
	page.wait_for_function("() => window.cur_frm && cur_frm.doc && cur_frm.doc.__last_sync_on && !cur_frm.is_new()")
	settle(page, 800)
	expect(page.locator(".form-message").get_by_text("Set up this mailbox")).to_have_count(1)
	shoot(page, "account-draft-steps")

	# Its card on the Email Sync page offers no Sync Now either (a Draft cannot sync), only its setup
	name = page.evaluate("cur_frm.doc.name")
	open_email_sync_page(page, stack)
	page.wait_for_selector(".es-account")
	if page.locator(".es-account-filter").is_visible():
		page.locator(".es-account-filter").fill(name)
	card = page.locator(f'.es-account[data-account="{name}"]')
	expect(card.locator("a.btn", has_text="Finish setup")).to_be_visible()
	expect(card.locator(".es-sync")).to_have_count(0)
	assert not page.errors, page.errors


def test_security_that_does_not_match_the_port_fails_fast_with_the_fix(stack, new_page, admin, dovecot):
	box = new_mailbox(dovecot)
	# The SSL port with Security None: the server waits for a TLS hello that never comes
	account = make_account(dovecot, box, frequency="Manual only", status="Draft", imap_port=dovecot.ssl_port,
		imap_security="None", connection_timeout=30)  # fmt: skip
	page = new_page()
	login(page, stack, admin.email, admin.password)
	go(page, stack, f"email-sync-account/{account}")
	wait_for_form(page, "Email Sync Account", account)

	started = time.monotonic()
	page.locator(".page-actions button", has_text="Test Connection").click()
	freeze = page.locator("#freeze .freeze-message")
	expect(freeze).to_contain_text(f"Connecting to {dovecot.host}:{dovecot.ssl_port}…")
	expect(freeze).to_contain_text(" s", timeout=3_000)  # the seconds counting up: a sign of life
	shoot(page, "account-test-connection-progress")
	dialog = page.locator(".modal.show", has_text="Connection failed")
	expect(dialog).to_contain_text(f"Port {dovecot.ssl_port} expects SSL/TLS", timeout=15_000)
	elapsed = time.monotonic() - started
	expect(dialog).to_contain_text(f"Choose Security SSL for port {dovecot.ssl_port}")
	assert elapsed < 12, f"took {elapsed:.1f} s (the account's timeout is 30 s)"
	settle(page)
	shoot(page, "account-wrong-security")

	# The fix, as the message says: Security SSL (the port stays: the admin typed it), and Test Connection
	# saves it first
	dialog.locator(".btn-modal-close, .modal-header .close").first.click()
	page.locator("select[data-fieldname='imap_security']").select_option("SSL")
	expect(page.locator("input[data-fieldname='imap_port']")).to_have_value(str(dovecot.ssl_port))
	page.locator(".page-actions button", has_text="Test Connection").click()
	frappe.db.rollback()
	expect(page.locator(".modal.show .modal-title").first).to_be_visible(timeout=15_000)
	frappe.db.rollback()
	assert frappe.db.get_value("Email Sync Account", account, "imap_security") == "SSL"  # saved before testing
	assert not page.errors, page.errors


def test_email_sync_page_wording_assign_dialog_viewer_and_review_order(stack, new_page, admin, dovecot, site_timezone):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, frequency="Manual only")
	stranger = f"{unique('quinn')}@freemail.test"
	older, newer = f"Older question {unique('#')}", f"Newer question {unique('#')}"
	long_body = "<p>" + "</p><p>".join(f"Line {i} of a long email." for i in range(80)) + "</p>"
	deliver(dovecot, box, [
		message(f"Quinn Stranger <{stranger}>", box.name, older, "Is the short one.", html="<p>Short and sweet.</p>",
			date=days_ago(0.002)),
		message(f"Quinn Stranger <{stranger}>", box.name, newer, "A long one.", html=long_body, date=days_ago(0.001)),
	])  # fmt: skip
	assert sync_account(account)["Needs Review"] == 2
	broken = make_account(dovecot, new_mailbox(dovecot), frequency="Manual only", imap_port=1)  # refused: a failed run
	sync_account(broken)

	page = new_page()
	page.set_viewport_size({"width": 1400, "height": 900})
	login(page, stack, admin.email, admin.password)
	open_email_sync_page(page, stack)

	# Needs Review comes first, on the first screen, newest email first
	review = page.locator(".es-review")
	assert review.bounding_box()["y"] < page.locator(".es-accounts").bounding_box()["y"]
	assert review.bounding_box()["y"] < 900
	subjects = review.locator("tbody tr .es-subject").all_inner_texts()
	assert subjects.index(newer) < subjects.index(older), subjects

	# The Sync Log in words: no "0 errors", and a failed run says that it failed and why
	failed = page.locator(".es-log .es-log-row", has_text=broken).first
	expect(failed.locator(".es-log-summary")).to_have_text("The sync failed")
	expect(failed).to_contain_text("connection refused")
	ours = page.locator(".es-log .es-log-row", has_text=account).first
	expect(ours.locator(".es-log-summary")).to_have_text("2 fetched, 2 for review")
	log_text = page.locator(".es-log").inner_text()
	assert "(s)" not in log_text and " 0 errors" not in log_text and "1 errors" not in log_text

	# The viewer is as tall as its email: a short one is short, a long one scrolls inside a bounded frame
	review.locator("tr", has_text=older).locator(".es-subject").click()
	frame = page.locator(".modal.show .email-sync-frame")
	expect(page.frame_locator(".modal.show .email-sync-frame").get_by_text("Short and sweet.")).to_be_visible()
	page.wait_for_function("() => !document.querySelector('.email-sync-measure')")
	short_height = frame.bounding_box()["height"]
	assert short_height < 120, short_height
	settle(page)
	shoot(page, "viewer-short-email")
	page.locator(".modal.show .btn-modal-close").first.click()
	expect(frame).to_have_count(0)
	review.locator("tr", has_text=newer).locator(".es-subject").click()
	expect(page.frame_locator(".modal.show .email-sync-frame").get_by_text("Line 0 of a long email.")).to_be_visible()
	page.wait_for_function("() => !document.querySelector('.email-sync-measure')")
	long_height = frame.bounding_box()["height"]
	assert 300 < long_height <= 900 * 0.65 + 1, long_height
	page.locator(".modal.show .btn-modal-close").first.click()
	expect(frame).to_have_count(0)

	# The Assign dialog says which email it is for
	review.locator("tr", has_text=newer).locator(".es-assign").click()
	dialog = page.locator(".modal.show .modal-dialog")
	which = dialog.locator(".es-assign-emails")
	expect(which).to_contain_text(newer)
	expect(which).to_contain_text(f"Quinn Stranger <{stranger}>")
	row_date = frappe.db.get_value("Synced Email", {"account": account, "subject": newer}, "email_date")
	expect(which).to_contain_text(page.evaluate("(d) => frappe.datetime.str_to_user(d)", str(row_date)))
	settle(page)
	shoot(page, "assign-dialog-names-the-email")
	acme = party("Acme", "Lee")
	field = dialog.locator('input[data-fieldname="customer"]')
	field.fill(acme.customer)
	page.evaluate("(c) => cur_dialog.set_value('customer', c)", acme.customer)
	dialog.locator(".modal-footer .btn-primary", has_text="Assign").click()
	expect(page.locator(".desk-alert .alert-message").filter(has_text=f"1 email filed on {acme.customer}")).to_be_visible()
	assert "(s)" not in page.locator(".email-sync-page").inner_text()

	# The Sync Log list: the failed run is red and counts nothing it never reached (no "Failed 0")
	page.evaluate("(account) => frappe.set_route('List', 'Email Sync Log', {account})", broken)
	row = page.locator(".list-row-container .list-row").first
	expect(row.locator(".indicator-pill").first).to_have_text("Failed")
	counts = row.locator(".list-row-col").all_inner_texts()
	assert not any(text.strip() == "0" for text in counts), counts
	settle(page)
	shoot(page, "sync-log-failed-run")
	assert not page.errors, page.errors


def test_a_known_person_writing_from_a_second_address_is_offered_to_her_contact(stack, new_page, admin, dovecot):
	domain = f"{unique('acme')}.test"
	customer = make_customer(f"Acme {domain}", domains=domain)
	lee = frappe.get_doc({"doctype": "Contact", "first_name": "Lee", "last_name": "Smith",
		"email_ids": [{"email_id": f"lee.smith@{domain}", "is_primary": 1}],
		"links": [{"link_doctype": "Customer", "link_name": customer}]}).insert(ignore_permissions=True).name  # fmt: skip
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, frequency="Manual only")
	subject = f"Sent from my phone {unique('#')}"
	second = f"lee.mobile@{domain}"
	deliver(dovecot, box, [message(f"Lee Smith <{second}>", box.name, subject, "Can we move the call?",
		date=datetime.now(timezone.utc))])  # fmt: skip
	before = frappe.db.get_single_value("Email Sync Settings", "namesake_action", cache=False)
	frappe.db.set_single_value("Email Sync Settings", "namesake_action", "Ask in Needs Review")
	frappe.db.commit()
	try:
		assert sync_account(account)["Needs Review"] == 1
	finally:
		frappe.db.set_single_value("Email Sync Settings", "namesake_action", before)
		frappe.db.commit()

	page = new_page()
	login(page, stack, admin.email, admin.password)
	open_email_sync_page(page, stack)
	row = page.locator(".es-review tr", has_text=subject)
	expect(row).to_contain_text("has a Contact of that name")
	add = row.locator(".es-add-address", has_text=f"Add address to {lee}")
	expect(add).to_be_visible()
	settle(page)
	shoot(page, "needs-review-second-address")
	add.click()
	expect(row).to_have_count(0)
	frappe.db.rollback()
	assert frappe.get_all("Contact Email", filters={"email_id": second}, pluck="parent") == [lee]
	assert frappe.db.get_value("Synced Email", {"account": account, "subject": subject}, "status") == "Filed"
	assert not page.errors, page.errors


def test_the_erase_dialog_counts_one_email_in_the_singular(stack, new_page, admin, dovecot):
	person = party("Single", "Una")
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, frequency="Manual only")
	deliver(dovecot, box, [message(f"Una <{person.address}>", box.name, f"Just one {unique('#')}", "Hi.", date=days_ago(1))])
	assert sync_account(account)["Filed"] == 1

	page = new_page()
	login(page, stack, admin.email, admin.password)
	go(page, stack, f"contact/{person.contact}")
	wait_for_form(page, "Contact", person.contact)
	actions = '.inner-group-button[data-label="Actions"]'
	page.locator(f"{actions} button").click()
	page.locator(f"{actions} .dropdown-item", has_text="Erase Synced Email").click()
	dialog = page.locator(".modal.show", has_text="Erase synced email of")
	expect(dialog).to_contain_text("1 synced email")
	expect(dialog).to_contain_text("1 email on the timeline, with 0 files and 0 comments")
	assert "1 synced emails" not in dialog.inner_text()
	dialog.locator(".btn-modal-close").first.click()
	assert not page.errors, page.errors
