"""The Email Sync page as an administrator uses it: live account health, Sync Now with live progress, and
Needs Review emails assigned to a Customer through the dialog."""

import re

import frappe
import pytest
from browserlib import expect, go, login, settle, shoot, wait_for_form, wait_for_realtime
from data import days_ago, latest_synced, message, party
from factories import deliver, make_account, new_mailbox, unique

from email_sync.sync.runner import sync_account

SYNC_TIMEOUT_MS = 180_000  # the worker may first finish scheduled syncs queued on a busy bench


@pytest.fixture(scope="module")
def box(dovecot):
	"""A mailbox of Acme's account manager, synced once: one mail from a stranger waits for review."""
	user = new_mailbox(dovecot)
	account = make_account(dovecot, user, frequency="Manual only", batch_size=4)
	acme = party("Acme", "Lee")
	stranger = f"{unique('quinn')}@freemail.test"
	subject = f"Quote for 40 chairs {unique('#')}"
	deliver(dovecot, user, [message(f"Quinn Stranger <{stranger}>", user.name, subject, "Could you quote 40 chairs?",
		date=days_ago(0.001))])  # newest, so on the first page of Needs Review however many wait on a busy site
	assert sync_account(account)["Needs Review"] == 1
	return frappe._dict(user=user, account=account, address=user.name, acme=acme, review_subject=subject)


def account_card(page, address):
	"""The account's card; with many accounts the page shows a filter box: type the address into it."""
	page.wait_for_selector(".es-account")
	search = page.locator(".es-account-filter")
	if search.is_visible():
		search.fill(address)
	return page.locator(f'.es-account[data-account="{address}"]')


def open_page(new_page, stack, admin):
	page = new_page()
	login(page, stack, admin.email, admin.password)
	wait_for_realtime(page)
	go(page, stack, "email-sync")
	page.wait_for_selector(".es-review h5")
	return page


def test_page_shows_live_data_and_sync_now_updates_it_live(stack, new_page, admin, dovecot, box):
	page = open_page(new_page, stack, admin)
	review = page.locator(".es-review")
	expect(review.locator("tr", has_text=box.review_subject)).to_be_visible()
	expect(review.locator("tr", has_text=box.review_subject)).to_contain_text("No Contact has any of its addresses")
	expect(page.locator(".es-log .es-log-row", has_text=box.address).first).to_be_visible()
	expect(page.locator(".es-accounts .es-account").first).to_be_visible()
	settle(page)
	shoot(page, "email-sync-page")

	card = account_card(page, box.address)
	expect(card).to_contain_text(box.address)
	expect(card.locator(".es-light")).to_have_class(re.compile(r"\bgreen\b"))
	expect(card.locator(".es-health")).to_have_text("Healthy.")

	# New mail arrives: many from Acme's contact (filed, read in batches of 4), one from a new stranger
	news = f"Delivery window next week {unique('#')}"
	bulk = [message(f"Lee <{box.acme.address}>", box.address, f"Order update {i} {unique('#')}", f"Line {i}",
		date=days_ago(0.1)) for i in range(48)]
	stranger = f"{unique('rita')}@freemail.test"
	deliver(dovecot, box.user, [*bulk, message(f"Rita Newcomer <{stranger}>", box.address, news, "When can you deliver?",
		date=days_ago(0.0002))])

	# Watch the page without reloading it: a marker survives only if the page stays the same document
	page.evaluate("""() => {
		window.__still_the_same_page = true;
		window.__progress = [];
		const seen = () => document.querySelectorAll('.es-progress').forEach((el) => {
			const text = el.textContent.replace(/\\s+/g, ' ').trim();
			if (text && window.__progress[window.__progress.length - 1] !== text) window.__progress.push(text);
		});
		new MutationObserver(seen).observe(document.querySelector('.email-sync-page'),
			{subtree: true, childList: true, characterData: true});
	}""")
	card.locator(".es-sync").click()
	expect(card.locator(".es-progress")).not_to_be_empty()
	try:  # a picture of the progress bar, if a batch is caught in flight
		card.locator(".progress-bar").wait_for(timeout=SYNC_TIMEOUT_MS)
		shoot(page, "email-sync-page-sync-progress")
	except Exception:
		pass

	expect(review.locator("tr", has_text=news)).to_be_visible(timeout=SYNC_TIMEOUT_MS)
	recent = page.locator(".es-recent")
	expect(recent.locator("tr", has_text=bulk_subject(bulk[-1])).first).to_be_visible()
	assert page.evaluate("window.__still_the_same_page") is True, "the page was reloaded"
	progress = page.evaluate("window.__progress")
	assert any(re.search(r"\d+ of 49: \d+ filed", text) for text in progress), progress
	log = page.locator(".es-log .es-log-row", has_text=box.address).first
	expect(log.locator(".es-log-summary")).to_have_text("49 fetched, 48 filed, 1 for review")  # no "0 errors"
	expect(log).to_contain_text("Manual")
	expect(card.locator(".es-progress")).to_be_empty()
	expect(card).to_contain_text("48 filed")


def bulk_subject(raw: bytes) -> str:
	from email import message_from_bytes

	return message_from_bytes(raw)["Subject"]


def test_assign_needs_review_email_to_customer_through_the_dialog(stack, new_page, admin, dovecot, box):
	globex = party("Globex", "Gina")
	buyer = f"{unique('pat')}@freemail.test"
	subject = f"Invoice address change {unique('#')}"
	deliver(dovecot, box.user, [message(f"Pat Buyer <{buyer}>", box.address, subject, "Please bill our new office.",
		date=days_ago(0.01))])
	assert sync_account(box.account)["Needs Review"] == 1

	page = open_page(new_page, stack, admin)
	row = page.locator(".es-review tr", has_text=subject)
	row.locator(".es-assign").click()
	dialog = page.locator(".modal.show .modal-dialog")
	expect(dialog).to_contain_text("Assign email to a Customer")
	field = dialog.locator('input[data-fieldname="customer"]')
	field.click()
	field.press_sequentially(globex.domain.split(".")[0], delay=30)  # the unique part of its name
	option = dialog.locator('.awesomplete [role="option"]', has_text=globex.customer)
	expect(option.first).to_be_visible()
	settle(page, 300)
	shoot(page, "assign-dialog")
	option.first.click()
	expect(field).to_have_value(globex.customer)
	dialog.locator(".modal-footer .btn-primary", has_text="Assign").click()

	expect(dialog).to_be_hidden()
	expect(row).to_have_count(0)  # left Needs Review, without a reload
	filed = latest_synced(box.account, subject)
	assert filed.status == "Filed" and filed.communication
	assert frappe.db.exists("Communication Link", {"parent": filed.communication, "link_doctype": "Customer",
		"link_name": globex.customer})

	go(page, stack, f"customer/{globex.customer}")
	wait_for_form(page, "Customer", globex.customer)
	page.locator(".form-tabs .nav-link", has_text=re.compile(r"^\s*Emails\s*$")).click()
	rows = page.locator(".email-sync-row")
	expect(rows.filter(has_text=subject)).to_be_visible()
	expect(rows.filter(has_text=subject)).to_contain_text("Pat Buyer")


def test_account_form_shows_health(stack, new_page, admin, box):
	page = new_page()
	login(page, stack, admin.email, admin.password)
	go(page, stack, f"email-sync-account/{box.account}")
	wait_for_form(page, "Email Sync Account", box.account)
	expect(page.get_by_text("Healthy: last synced")).to_be_visible()
	assert not page.errors, page.errors
	expect(page.locator(".page-actions:visible")).to_contain_text("Sync Now")
	expect(page.locator(".page-actions:visible")).to_contain_text("Test Connection")
	settle(page)
	shoot(page, "email-sync-account-form")
