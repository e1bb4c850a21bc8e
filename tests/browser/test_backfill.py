"""Backfill after activation, as an administrator drives it: the account has synced since its start date; moving
the Sync Start Date earlier on the form (after a confirm) brings the older mail in, which then shows on the
Customer's Emails tab, filed as history: no Issue is opened for it."""

import re
from datetime import datetime, timedelta, timezone

import frappe
from browserlib import expect, go, login, settle, shoot, wait_for_form, wait_for_realtime
from dovecot import fill_mailbox
from factories import deliver, mail, make_account, make_party, new_mailbox, unique
from frappe.utils import add_days, today

from email_sync.sync.runner import sync_account


def test_backfill_after_activation_brings_older_mail_to_the_customer_without_an_issue(
	stack, new_page, admin, dovecot
):
	party = make_party("Older", "Sam")
	box = new_mailbox(dovecot)
	tag = unique("#")
	now = datetime.now(timezone.utc)
	old_subject, new_subject = f"Quote for last month's order {tag}", f"Where is my delivery? {tag}"
	fill_mailbox(dovecot.host, dovecot.port, box.name, box.password, "INBOX",
		[mail(f"sam@{party.domain}", box.name, subject=old_subject, date=now - timedelta(days=20))],
		date=(now - timedelta(days=20)).replace(tzinfo=None))  # fmt: skip
	deliver(dovecot, box, [mail(f"sam@{party.domain}", box.name, subject=new_subject, date=now + timedelta(minutes=1))])
	# A support mailbox switched on five days ago's start date: Issues on, activated now, synced once.
	account = make_account(dovecot, box, create_issues=1, activated_on=None, frequency="Manual only",
		sync_start_date=add_days(today(), -5))  # fmt: skip
	assert sync_account(account)["Filed"] == 1
	frappe.db.commit()

	page = new_page()
	login(page, stack, admin.email, admin.password)
	wait_for_realtime(page)
	go(page, stack, f"email-sync-account/{account}")
	wait_for_form(page, "Email Sync Account", account)

	earlier = str(add_days(today(), -30))
	date_input = page.locator("input[data-fieldname='sync_start_date']")
	date_input.fill(page.evaluate("(d) => frappe.datetime.str_to_user(d)", earlier))
	date_input.press("Escape")
	date_input.blur()
	confirm = page.locator(".modal.show").filter(has_text="When you save, the mail from")
	expect(confirm).to_be_visible()
	settle(page)
	shoot(page, "backfill-confirm")
	confirm.locator(".btn-primary").click()
	page.keyboard.press("Control+s")
	expect(page.locator(".indicator-pill", has_text="Not Saved")).to_have_count(0)
	# The background job reports through Socket.IO; its summary pops up on the form when it is done.
	done = page.locator(".desk-alert", has_text=re.compile("Backfill from .*1 fetched, 1 filed"))
	expect(done).to_be_visible(timeout=90_000)
	settle(page)
	shoot(page, "backfill-done")

	frappe.db.rollback()  # see what the worker committed
	rows = {r.subject: r for r in frappe.get_all("Synced Email", filters={"account": account}, fields=["subject", "issue"])}
	assert set(rows) == {old_subject, new_subject}
	assert not rows[old_subject].issue and rows[new_subject].issue  # older mail is history: no Issue
	assert frappe.db.count("Issue", {"subject": ("like", f"%{tag}%")}) == 1
	log = frappe.get_all("Email Sync Log", filters={"account": account, "triggered_by": "Backfill"},
		fields=["status", "summary"])  # fmt: skip
	assert len(log) == 1 and log[0].status == "Success"

	go(page, stack, f"customer/{party.customer}")
	wait_for_form(page, "Customer", party.customer)
	page.locator(".form-tabs .nav-link", has_text=re.compile(r"^\s*Emails\s*$")).click()
	old_row = page.locator(".email-sync-row", has_text=old_subject)
	expect(old_row).to_be_visible()
	expect(old_row.locator(".email-sync-issue")).to_have_count(0)  # no Issue link on the older email
	expect(page.locator(".email-sync-row", has_text=new_subject).locator(".email-sync-issue")).to_have_count(1)
	settle(page)
	shoot(page, "backfill-older-mail-on-customer")

	# And the explicit action: Import older mail, from a date, for one folder or all.
	go(page, stack, f"email-sync-account/{account}")
	wait_for_form(page, "Email Sync Account", account)
	actions = '.inner-group-button[data-label="Actions"]'
	page.locator(f"{actions}:visible button").click()
	page.locator(f"{actions}:visible .dropdown-item", has_text="Import older mail").click()
	dialog = page.locator(".modal.show").filter(has_text="Import older mail")
	expect(dialog).to_contain_text("is already read")
	settle(page)
	shoot(page, "import-older-mail-dialog")
	page.keyboard.press("Escape")
	settle(page)
	assert not page.errors, page.errors


def test_import_from_file_files_an_uploaded_zip_as_history_and_deletes_it(stack, new_page, admin, dovecot):
	import io
	import zipfile

	party = make_party("Archive", "Lou")
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, create_issues=1, frequency="Manual only")
	tag = unique("#")
	buffer = io.BytesIO()
	with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
		for n in (1, 2):
			archive.writestr(f"2019/{n}.eml", mail(f"lou@{party.domain}", box.name, subject=f"Archived order {n} {tag}"))
	frappe.db.commit()

	page = new_page()
	login(page, stack, admin.email, admin.password)
	wait_for_realtime(page)
	go(page, stack, f"email-sync-account/{account}")
	wait_for_form(page, "Email Sync Account", account)
	actions = '.inner-group-button[data-label="Actions"]'
	page.locator(f"{actions}:visible button").click()
	page.locator(f"{actions}:visible .dropdown-item", has_text="Import from file").click()
	uploader = page.locator(".modal.show").filter(has_text="Import mail from a file")
	expect(uploader).to_be_visible()
	uploader.locator("input[type=file]").set_input_files(
		{"name": "old-orders.zip", "mimeType": "application/zip", "buffer": buffer.getvalue()}
	)
	expect(uploader).to_contain_text("old-orders.zip")
	settle(page)
	shoot(page, "import-from-file")
	uploader.locator(".btn-primary", has_text="Upload").click()
	done = page.locator(".desk-alert", has_text=re.compile("Import of old-orders.zip: 2 fetched, 2 filed"))
	expect(done).to_be_visible(timeout=90_000)

	frappe.db.rollback()
	rows = frappe.get_all("Synced Email", filters={"account": account}, fields=["subject", "issue", "communication"])
	assert sorted(r.subject for r in rows) == [f"Archived order 1 {tag}", f"Archived order 2 {tag}"]
	assert all(r.communication and not r.issue for r in rows)  # filed, as history: no Issue
	assert not frappe.get_all("File", filters={"attached_to_name": account, "file_name": "old-orders.zip"})
	settle(page)
	assert not page.errors, page.errors
