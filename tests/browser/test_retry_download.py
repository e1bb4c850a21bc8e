"""Retry on an Error Synced Email whose download failed: the form's button downloads the message again; while
the server still refuses it the row keeps the new reason, and once it hands it out the form opens the filed
email. Against a Dovecot storing Maildir, with one stored message made unreadable."""

import frappe
import pytest
from browserlib import expect, go, login, settle, shoot, wait_for_form
from data import message, party
from dovecot import Dovecot, DovecotUnavailable, Mailbox
from factories import deliver, make_account, new_mailbox, synced, unique

from email_sync.sync.runner import sync_account


@pytest.fixture(scope="module")
def server(site):
	try:
		server = Dovecot.start(maildir=True, settings={"imap_fetch_failure": "no-after"})
	except DovecotUnavailable as e:
		pytest.skip(str(e))
	yield server
	server.cleanup()


def refused_mail(server):
	"""An account whose second email Dovecot will not hand out: one Error row, the others filed."""
	person = party("Retry", "Rita")
	box = new_mailbox(server)
	subjects = [f"Order {n} {unique('#')}" for n in (1, 2, 3)]
	deliver(server, box, [message(f"Rita Rossi <{person.address}>", box.name, s, "Please ship.") for s in subjects])
	path = Mailbox(server, box).make_unreadable("INBOX", 2)
	account = make_account(server, box, frequency="Manual only")
	sync_account(account)
	[error] = synced(account, status="Error")
	return frappe._dict(account=account, error=error.name, subject=subjects[1], path=path)


@pytest.fixture
def refused(server):
	return refused_mail(server)


def test_retry_on_the_form_files_the_email_once_the_server_hands_it_out(stack, new_page, admin, refused):
	page = new_page()
	login(page, stack, admin.email, admin.password)
	go(page, stack, f"synced-email/{refused.error}")
	wait_for_form(page, "Synced Email", refused.error)
	retry = page.locator(".page-actions button", has_text="Retry")
	expect(retry).to_be_visible()

	retry.click()  # the server still refuses: the row stays an Error, with the server's reason
	dialog = page.locator(".modal.show", has_text="Not every email could be downloaded")
	expect(dialog).to_contain_text("Internal error")
	settle(page)
	shoot(page, "retry-download-refused")
	dialog.locator(".btn-modal-close").click()
	frappe.db.rollback()
	assert frappe.db.get_value("Synced Email", refused.error, "status") == "Error"

	refused.path.chmod(0o644)
	retry.click()
	expect(page.locator(".modal.show", has_text="Downloaded")).to_be_visible()
	page.wait_for_function("(name) => window.cur_frm && cur_frm.docname !== name", arg=refused.error)
	expect(page.locator(".indicator-pill", has_text="Filed").first).to_be_visible()
	settle(page)
	shoot(page, "retry-download-filed")
	frappe.db.rollback()
	assert not frappe.db.exists("Synced Email", refused.error)
	filed = frappe.get_value("Synced Email", {"account": refused.account, "subject": refused.subject}, "status")
	assert filed == "Filed"
	assert not page.errors, page.errors


def test_retry_download_on_the_list_for_the_selected_emails(stack, new_page, admin, server):
	first, second = refused_mail(server), refused_mail(server)
	first.path.chmod(0o644)
	second.path.chmod(0o644)
	page = new_page()
	login(page, stack, admin.email, admin.password)
	page.evaluate(
		"(accounts) => frappe.set_route('List', 'Synced Email', {status: 'Error', account: ['in', accounts]})",
		[first.account, second.account],
	)
	page.wait_for_function("() => window.cur_list && cur_list.doctype === 'Synced Email' && cur_list.data.length === 2")
	for row in (first, second):
		page.locator(f'.list-row-checkbox[data-name="{row.error}"]').check()
	actions = page.locator('#page-List\\/Synced\\ Email\\/List .actions-btn-group')
	actions.locator('button:has-text("Actions")').click()
	actions.locator(".dropdown-item", has_text="Retry Download").click()
	expect(page.locator(".alert-message", has_text="2 of 2 downloaded and filed")).to_be_visible()
	frappe.db.rollback()
	for row in (first, second):
		assert not frappe.db.exists("Synced Email", row.error)
		assert frappe.db.get_value("Synced Email", {"account": row.account, "subject": row.subject}, "status") == "Filed"
	assert not page.errors, page.errors
