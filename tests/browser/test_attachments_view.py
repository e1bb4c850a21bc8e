"""Attachments on the Emails tab and in the viewer: names, sizes and download links; an inline image shown
in place inside the sandboxed frame; an attachment that was not stored says why."""

import base64
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid

import frappe
import pytest
from browserlib import expect, login, settle, shoot
from data import days_ago, party
from factories import deliver, make_account, new_mailbox, unique
from test_emails_tab import open_emails_tab

from email_sync.sync.runner import sync_account

PNG = base64.b64decode(  # 8x8 red square
	"iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAEklEQVR4nGP4z8CAFWEXHbQSACj/P8Fu7N9hAAAAAElFTkSuQmCC"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def with_inline_image(sender: str, to: str, subject: str) -> bytes:
	msg = EmailMessage()
	msg["From"], msg["To"], msg["Subject"] = sender, to, subject
	msg["Date"] = format_datetime(days_ago(1))
	msg["Message-ID"] = make_msgid(domain="browser.test")
	msg.set_content("The error is in the screenshot.")
	msg.add_alternative('<p>The error:</p><img id="shot" src="cid:shot@browser.test" alt="screenshot"><p>Thanks</p>',
		subtype="html")  # fmt: skip
	msg.get_payload()[1].add_related(PNG, "image", "png", cid="<shot@browser.test>", filename="shot.png")
	msg.add_attachment(PDF, maintype="application", subtype="pdf", filename="quote.pdf")
	msg.add_attachment(b"MZ" + b"\0" * 32, maintype="application", subtype="octet-stream", filename="tool.exe")
	return msg.as_bytes()


@pytest.fixture(scope="module")
def mailed(dovecot):
	customer = party("Globex", "Gil")
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, frequency="Manual only")
	subject = f"Error screenshot {unique('#')}"
	deliver(dovecot, box, [with_inline_image(f"Gil <{customer.address}>", box.name, subject)])
	assert sync_account(account)["Filed"] == 1
	return frappe._dict(customer=customer, subject=subject)


def test_attachments_listed_downloadable_and_inline_image_in_place(stack, new_page, admin, mailed):
	page = new_page()
	login(page, stack, admin.email, admin.password)
	rows = open_emails_tab(page, stack, mailed.customer.customer)
	row = rows.filter(has_text=mailed.subject)
	files = row.locator(".email-sync-file")
	expect(files).to_have_count(3)
	expect(row.locator("a.email-sync-file", has_text="quote.pdf")).to_be_visible()
	expect(row.locator(".email-sync-file.not-stored", has_text="tool.exe")).to_contain_text(".exe files are blocked")

	with page.expect_download() as download:
		row.locator("a.email-sync-file", has_text="quote.pdf").click()
	path = download.value.path()
	assert open(path, "rb").read() == PDF
	assert download.value.suggested_filename == "quote.pdf"

	row.locator(".email-sync-subject").click()
	dialog = page.locator(".modal.show .modal-dialog")
	expect(dialog.locator(".modal-title")).to_have_text(mailed.subject)
	image = page.frame_locator(".email-sync-frame").locator("img[alt=screenshot]")
	expect(image).to_be_visible()
	assert image.get_attribute("src").startswith("data:image/png;base64,")
	assert image.evaluate("img => img.naturalWidth") == 8  # decoded and drawn, not a broken image
	expect(dialog.locator("a.email-sync-file", has_text="shot.png")).to_be_visible()
	assert not page.errors, page.errors
	settle(page)
	shoot(page, "email-with-attachments")
