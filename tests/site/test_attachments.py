"""Attachments kept as private Files on the real site, inline images in the viewer, limits with reasons,
Issues carrying the files, and the Snippet-only and Headers-only store modes."""

import base64
import hashlib
import json

import frappe
import pytest
import requests
from factories import deliver, make_account, make_contact, make_customer, new_mailbox, site_user, synced, unique

from email_sync.desk import email_view, party_emails
from email_sync.sync.attachments import strip_stored
from email_sync.sync.runner import sync_account

PNG = base64.b64decode(
	"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)


def multipart_mail(sender: str, to: str, subject: str, parts: list[bytes], message_id: str | None = None) -> bytes:
	"""A multipart/mixed message from raw parts, so that headers can hold raw 8-bit bytes as real mail does."""
	boundary = b"==outer-" + unique().encode()
	head = (
		f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nDate: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
		f"Message-ID: <{message_id or unique('att') + '@test.example'}>\r\nMIME-Version: 1.0\r\n"
	).encode() + b'Content-Type: multipart/mixed; boundary="' + boundary + b'"\r\n\r\n'
	body = b"".join(b"--" + boundary + b"\r\n" + part + b"\r\n" for part in parts)
	return head + body + b"--" + boundary + b"--\r\n"


def html_with_inline_image() -> bytes:
	inner = b"==related-" + unique().encode()
	return (
		b'Content-Type: multipart/related; boundary="' + inner + b'"\r\n\r\n'
		b"--" + inner + b'\r\nContent-Type: text/html; charset="utf-8"\r\n\r\n'
		b'<p>See the error:</p><img src="cid:shot@test.example"><p>Thanks</p>\r\n'
		b"--" + inner + b"\r\nContent-Type: image/png\r\nContent-Transfer-Encoding: base64\r\n"
		b"Content-ID: <shot@test.example>\r\nContent-Disposition: inline; filename=\"shot.png\"\r\n\r\n"
		+ base64.encodebytes(PNG) + b"\r\n--" + inner + b"--"
	)


def attachment(name: bytes, content_type: str, content: bytes) -> bytes:
	return (
		f"Content-Type: {content_type}\r\nContent-Transfer-Encoding: base64\r\n".encode()
		+ b'Content-Disposition: attachment; filename="' + name + b'"\r\n\r\n'
		+ base64.encodebytes(content)
	)


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n" + unique().encode()
def jpeg() -> bytes:
	import io

	from PIL import Image  # Frappe's own dependency; a real JPEG, as Frappe may re-encode JPEGs without EXIF

	out = io.BytesIO()
	Image.new("RGB", (2, 2), (200, 30, 30)).save(out, "JPEG")
	return out.getvalue()


JPEG = jpeg()
JPEG_NAME = "Fotograf\u00eda del error.jpg"  # raw UTF-8 in the header, as many mailers send it


def the_email(sender: str, to: str, message_id: str, extra: list[bytes] = ()) -> bytes:
	return multipart_mail(sender, to, "Screenshot of the error attached", [
		html_with_inline_image(),
		attachment(b"quote.pdf", "application/pdf", PDF),
		attachment(JPEG_NAME.encode("utf-8"), "image/jpeg", JPEG),
		*extra,
	], message_id)  # fmt: skip


@pytest.fixture
def party():
	domain = f"{unique('files')}.test"
	customer = make_customer(f"Files {domain}")
	contact = make_contact("Flo", [f"flo@{domain}"], customer)
	return frappe._dict(domain=domain, customer=customer, contact=contact, sender=f"flo@{domain}")


def files_of(doctype, name):
	return frappe.get_all(
		"File",
		filters={"attached_to_doctype": doctype, "attached_to_name": name},
		fields=["name", "file_name", "file_url", "is_private", "content_hash", "file_size"],
	)


def test_attachments_become_private_files_once_with_inline_image_in_the_viewer(dovecot, party):
	first, second = new_mailbox(dovecot), new_mailbox(dovecot)
	message_id = unique("mid") + "@test.example"
	exe = attachment(b"../../setup.exe", "application/octet-stream", b"MZ" + b"\0" * 64)
	big = attachment(b"huge-scan.tif", "image/tiff", b"II*\0" + b"x" * (1536 * 1024))
	one = make_account(dovecot, first, attachment_limit_mb=1)
	two = make_account(dovecot, second)
	deliver(dovecot, first, [the_email(party.sender, first.name, message_id, [exe, big])])
	deliver(dovecot, second, [the_email(party.sender, second.name, message_id, [exe, big])])
	sync_account(one)
	row = synced(one)[0]
	assert row.status == "Filed"

	files = files_of("Communication", row.communication)
	assert len(files) == 3 and all(f.is_private for f in files)
	assert {f.content_hash for f in files} == {hashlib.md5(c).hexdigest() for c in (PDF, PNG, JPEG)}
	assert any(f.file_name.endswith(".jpg") and "Fotograf" in f.file_name for f in files)  # safe, not lost

	listed = {a.file_name: a for a in frappe.get_doc("Synced Email", row.name).attachments}
	# listed under the names the sender gave (the Files have safe names)
	assert set(listed) == {"shot.png", "quote.pdf", JPEG_NAME, "../../setup.exe", "huge-scan.tif"}
	assert listed[JPEG_NAME].file and listed["quote.pdf"].file and listed["shot.png"].inline
	over = listed["huge-scan.tif"]
	assert not over.file and "1 MB" in over.reason
	blocked = listed["../../setup.exe"]
	assert not blocked.file and ".exe" in blocked.reason

	# the Customer's Emails tab lists them with download links; the viewer shows the inline image in place
	email = next(e for e in party_emails("Customer", party.customer)["emails"] if e.name == row.communication)
	assert len([a for a in email.attachments if a.url]) == 3
	view = email_view(row.communication)
	assert "data:image/png;base64," in view["html"] and "cid:" not in view["html"]

	# the second mailbox's copy is filed onto the same Communication and adds no File
	sync_account(two)
	assert synced(two)[0].communication == row.communication
	assert len(files_of("Communication", row.communication)) == 3


def test_download_is_for_those_who_may_read_the_email(dovecot, party, web):
	box = new_mailbox(dovecot)
	owner_password = "Es-" + unique("pw") + "-9Qx"
	owner = site_user("fileowner", "Sales User", password=owner_password)
	account = make_account(dovecot, box, shared=0, account_owner=owner)
	deliver(dovecot, box, [the_email(party.sender, box.name, unique("mid") + "@test.example")])
	sync_account(account)
	row = synced(account)[0]
	pdf = next(a for a in frappe.get_doc("Synced Email", row.name).attachments if a.file_name == "quote.pdf")
	url = f"{web}/api/method/email_sync.desk.attachment"

	as_owner = requests.Session()
	assert as_owner.post(f"{web}/api/method/login", data={"usr": owner, "pwd": owner_password}).ok
	got = as_owner.get(url, params={"name": pdf.name})
	assert got.ok and got.content == PDF

	other_password = "Es-" + unique("pw") + "-9Qx"
	other = site_user("fileother", "Sales User", "Sales Manager", password=other_password)
	as_other = requests.Session()
	assert as_other.post(f"{web}/api/method/login", data={"usr": other, "pwd": other_password}).ok
	assert as_other.get(url, params={"name": pdf.name}).status_code == 403
	assert as_other.get(url, params={"name": "no-such-attachment"}).status_code == 403
	# nor through Frappe's own file URL: the File is private and attached to a Communication they cannot read
	assert as_other.get(f"{web}{frappe.db.get_value('File', pdf.file, 'file_url')}").status_code in (403, 404)


def test_an_issue_made_from_the_email_carries_its_attachments(dovecot, party):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, create_issues=1)
	deliver(dovecot, box, [the_email(party.sender, box.name, unique("mid") + "@test.example")])
	sync_account(account)
	issue = frappe.db.get_value("Synced Email", synced(account)[0].name, "issue")
	assert issue
	on_issue = files_of("Issue", issue)
	on_email = files_of("Communication", synced(account)[0].communication)
	assert {f.content_hash for f in on_issue} == {f.content_hash for f in on_email} and len(on_issue) == 3
	assert {f.file_url for f in on_issue} == {f.file_url for f in on_email}  # one copy on disk


def test_snippet_only_and_headers_only_keep_no_body_and_no_file(dovecot, party):
	snippet_box, headers_box = new_mailbox(dovecot), new_mailbox(dovecot)
	snippet_account = make_account(dovecot, snippet_box, store_mode="Snippet only")
	headers_account = make_account(dovecot, headers_box, store_mode="Headers only")
	deliver(dovecot, snippet_box, [the_email(party.sender, snippet_box.name, unique("mid") + "@test.example")])
	deliver(dovecot, headers_box, [the_email(party.sender, headers_box.name, unique("mid") + "@test.example")])
	sync_account(snippet_account)
	sync_account(headers_account)

	row = frappe.get_doc("Synced Email", synced(snippet_account)[0].name)
	comm = frappe.get_doc("Communication", row.communication)
	assert row.status == "Filed" and row.snippet.startswith("See the error")
	assert "<img" not in (comm.content or "") and len(comm.text_content or "") <= 200
	assert not files_of("Communication", comm.name)
	assert len(row.attachments) == 3 and all(not a.file and "snippet" in a.reason for a in row.attachments)

	row = frappe.get_doc("Synced Email", synced(headers_account)[0].name)
	comm = frappe.get_doc("Communication", row.communication)
	assert row.subject == "Screenshot of the error attached" and not row.snippet
	assert not (comm.content or "").strip() and not (comm.text_content or "").strip()
	assert not files_of("Communication", comm.name)


def test_a_stricter_mode_strips_what_was_already_stored(dovecot, party):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	deliver(dovecot, box, [the_email(party.sender, box.name, unique("mid") + "@test.example")])
	sync_account(account)
	row = synced(account)[0]
	assert len(files_of("Communication", row.communication)) == 3

	frappe.db.set_value("Email Sync Account", account, "store_mode", "Snippet only")
	assert strip_stored(account) == {"stripped": 1}
	comm = frappe.get_doc("Communication", row.communication)
	assert "<img" not in comm.content and comm.text_content.startswith("See the error")
	assert not files_of("Communication", row.communication)
	assert all(not a.file for a in frappe.get_doc("Synced Email", row.name).attachments)
	assert json.loads(json.dumps(email_view(row.communication)["attachments"], default=str))[0]["url"] is None
