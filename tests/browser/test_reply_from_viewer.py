"""Acting from an email: Reply in the viewer opens Frappe's composer addressed to the sender and filed on the
email's Issue; the customer's answer to that reply threads back into the same Issue."""

import frappe
import pytest
from browserlib import expect, login, settle, shoot
from data import days_ago, message, party
from factories import deliver, make_account, new_mailbox, synced, unique
from test_emails_tab import open_emails_tab

from email_sync.sync.runner import sync_account


@pytest.fixture(scope="module")
def outgoing():
	"""An outgoing Email Account, so the composer can queue mail (nothing is really sent)."""
	doc = frappe.get_doc({"doctype": "Email Account", "email_id": f"{unique('desk')}@ourco.example",
		"email_account_name": unique("Desk "), "enable_outgoing": 1, "default_outgoing": 1,
		"smtp_server": "127.0.0.1", "awaiting_password": 1}).insert(ignore_permissions=True)  # fmt: skip
	frappe.db.commit()
	yield doc.name
	frappe.db.rollback()
	frappe.delete_doc("Email Account", doc.name, force=True, ignore_permissions=True)
	frappe.db.commit()


@pytest.fixture(scope="module")
def support_mail(dovecot):
	customer = party("Umbrella", "Uma")
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, frequency="Manual only", create_issues=1)
	subject = f"Printer jammed {unique('#')}"
	deliver(dovecot, box, [message(f"Uma <{customer.address}>", box.name, subject, "It jams on page 2.", date=days_ago(1))])
	assert sync_account(account)["Filed"] == 1
	issue = frappe.db.get_value("Synced Email", synced(account)[0].name, "issue")
	assert issue
	return frappe._dict(customer=customer, account=account, box=box, subject=subject, issue=issue)


def test_reply_from_the_viewer_files_on_the_issue_and_the_answer_threads_back(
	stack, new_page, admin, support_mail, outgoing, dovecot
):
	page = new_page()
	login(page, stack, admin.email, admin.password)
	rows = open_emails_tab(page, stack, support_mail.customer.customer)
	rows.filter(has_text=support_mail.subject).locator(".email-sync-subject").click()
	viewer = page.locator(".modal.show .modal-dialog")
	expect(viewer.locator(".modal-title")).to_have_text(support_mail.subject)
	expect(viewer.locator(".btn-reply-all")).to_be_visible()
	expect(viewer.locator(".btn-forward")).to_be_visible()
	viewer.locator(".btn-primary", has_text="Reply").click()

	composer = page.locator(".modal.show .modal-dialog", has=page.locator("[data-fieldname='recipients']"))
	expect(composer).to_be_visible()
	expect(composer.locator("[data-fieldname='subject'] input")).to_have_value(f"Re: {support_mail.subject}")
	expect(composer.locator("div.frappe-control[data-fieldname='recipients']")).to_contain_text(support_mail.customer.address)
	composer.locator(".ql-editor").first.click()
	page.keyboard.press("Control+Home")  # above the quoted email
	page.keyboard.type("We are sending a technician tomorrow.")
	settle(page)
	shoot(page, "reply-from-email")
	composer.locator(".btn-primary", has_text="Send").click()
	expect(composer).to_be_hidden()

	sent = []
	for _ in range(50):  # the composer closes before the server has made the Communication
		frappe.db.rollback()
		sent = frappe.get_all("Communication", filters={"reference_doctype": "Issue", "reference_name": support_mail.issue,
			"sent_or_received": "Sent"}, fields=["name", "message_id", "recipients", "subject"])  # fmt: skip
		if sent:
			break
		page.wait_for_timeout(200)
	assert len(sent) == 1 and support_mail.customer.address in sent[0].recipients, sent
	assert sent[0].message_id

	# Uma answers the reply: her mail client quotes its Message-ID, and the answer joins the Issue
	answer = message(f"Uma <{support_mail.customer.address}>", support_mail.box.name, f"Re: {support_mail.subject}",
		"Thanks, tomorrow works.", date=days_ago(0))  # fmt: skip
	answer = answer.replace(b"Subject:", f"In-Reply-To: <{sent[0].message_id.strip('<>')}>\r\nSubject:".encode(), 1)
	deliver(dovecot, support_mail.box, [answer])
	sync_account(support_mail.account)
	rows = {r.subject: r for r in synced(support_mail.account)}
	assert frappe.db.get_value("Synced Email", rows[f"Re: {support_mail.subject}"].name, "issue") == support_mail.issue
	assert not page.errors, page.errors
