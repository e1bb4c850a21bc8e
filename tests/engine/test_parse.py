"""Parsing real-world and hostile mail: the parser never raises and never loses what it can read."""

import random
from datetime import datetime
from email.message import EmailMessage

import pytest

from email_sync.engine.parse import parse_message


def raw(headers: str, body: str = "Hello", *, crlf: bool = True) -> bytes:
	text = headers.strip("\n") + "\n\n" + body
	return (text.replace("\n", "\r\n") if crlf else text).encode("utf-8")


def test_plain_message_fields():
	m = parse_message(
		raw(
			"""From: "Ana Silva" <Ana.Silva@Acme.com>
To: sales@example.com, "Bob" <bob@example.com>
Cc: carol@acme.com
Subject: Order 1001
Message-ID: <order-1001@acme.com>
In-Reply-To: <q-1@example.com>
References: <q-0@example.com> <q-1@example.com>
Date: Mon, 23 Nov 2026 15:30:00 -0500""",
			"Please ship it.",
		)
	)
	assert m.sender.email == "ana.silva@acme.com" and m.sender.name == "Ana Silva"
	assert [a.email for a in m.to] == ["sales@example.com", "bob@example.com"]
	assert [a.email for a in m.cc] == ["carol@acme.com"]
	assert m.subject == "Order 1001"
	assert m.message_id == "order-1001@acme.com"
	assert m.in_reply_to == "q-1@example.com"
	assert m.references == ["q-0@example.com", "q-1@example.com"]
	assert m.date == datetime(2026, 11, 23, 20, 30)  # naive UTC
	assert m.text == "Please ship it."
	assert m.defects == [] and not m.auto.is_auto and not m.unreadable


def test_rfc2047_subject_is_decoded_whole():
	# A long subject split over several encoded words in two charsets: Frappe's pull truncated these.
	subject = (
		"Subject: =?UTF-8?B?0JfQsNC60LDQtyDihJYgNDIg0L3QtSDQv9GA0LjRiNC10Ls=?=\n"
		" =?UTF-8?Q?_=E2=80=94_r=C3=A9clamation_urgente_pour_la_livraison?=\n"
		" =?ISO-8859-1?Q?_de_d=E9cembre?= (ref 7)"
	)
	m = parse_message(raw(f"From: a@b.com\n{subject}\nMessage-ID: <x@b.com>\nDate: Mon, 23 Nov 2026 10:00:00 +0000"))
	assert m.subject == "Заказ № 42 не пришел — réclamation urgente pour la livraison de décembre (ref 7)"


def test_encoded_display_names_and_8bit_headers():
	data = (
		"From: =?iso-8859-1?q?Fran=E7ois_M=FCller?= <fm@acme.de>\r\n"
		"To: Jörg Weiß <jw@example.com>\r\n"
		"Subject: Grüße aus München\r\n"
		"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n\r\nHallo"
	).encode("utf-8")
	m = parse_message(data)
	assert m.sender.name == "François Müller"
	assert m.to[0].name == "Jörg Weiß" and m.to[0].email == "jw@example.com"
	assert m.subject == "Grüße aus München"


def test_latin1_8bit_header_falls_back_to_declared_charset():
	data = b"From: x@y.com\r\nSubject: Caf\xe9 cr\xe8me\r\nContent-Type: text/plain; charset=iso-8859-1\r\n\r\nd\xe9j\xe0 vu"
	m = parse_message(data)
	assert m.subject == "Café crème"
	assert m.text == "déjà vu"


def test_wrong_declared_charset_never_raises():
	data = b"From: x@y.com\r\nSubject: s\r\nContent-Type: text/plain; charset=no-such-charset\r\n\r\n\xff\xfe caf\xc3\xa9"
	m = parse_message(data)
	assert "caf" in m.text


@pytest.mark.parametrize("charset,text", [("koi8-r", "Привет"), ("shift_jis", "こんにちは"), ("gb2312", "你好"), ("windows-1252", "naïve €")])
def test_body_charsets(charset, text):
	msg = EmailMessage()
	msg["From"] = "a@b.com"
	msg["Subject"] = "t"
	msg.set_content(text, charset=charset, cte="8bit" if charset != "shift_jis" else "base64")
	assert parse_message(msg.as_bytes()).text == text


def test_html_only_body_becomes_text():
	m = parse_message(
		raw(
			"From: a@b.com\nContent-Type: text/html; charset=utf-8",
			"<html><body><p>Dear team,</p><p>The <b>invoice</b> is <a href='https://x.test/i'>here</a>.</p></body></html>",
		)
	)
	assert "Dear team," in m.text and "invoice" in m.text and "<p>" not in m.text
	assert "<b>invoice</b>" in m.html


def test_alternative_prefers_plain_text_and_keeps_html():
	msg = EmailMessage()
	msg["From"] = "a@b.com"
	msg.set_content("plain version")
	msg.add_alternative("<p>html version</p>", subtype="html")
	m = parse_message(msg.as_bytes())
	assert m.text == "plain version"
	assert "html version" in m.html
	assert m.attachments == []


def test_attachments_listed_with_name_type_size():
	msg = EmailMessage()
	msg["From"] = "a@b.com"
	msg.set_content("see attached")
	msg.add_attachment(b"%PDF-1.4 " + b"x" * 991, maintype="application", subtype="pdf", filename="Angebot Nr. 5 – März.pdf")
	msg.add_attachment(b"\x89PNG" + b"\0" * 96, maintype="image", subtype="png", filename="logo.png", disposition="inline", cid="<logo@x>")
	m = parse_message(msg.as_bytes())
	assert m.text == "see attached"
	pdf, png = m.attachments
	assert (pdf.filename, pdf.content_type, pdf.size) == ("Angebot Nr. 5 – März.pdf", "application/pdf", 1000)
	assert (png.filename, png.inline, png.content_id, png.size) == ("logo.png", True, "logo@x", 100)


def forwarded(depth: int) -> EmailMessage:
	inner = EmailMessage()
	inner["From"] = f"level{depth}@inner.test"
	inner["Subject"] = f"inner {depth}"
	inner.set_content(f"inner body {depth}")
	if depth > 1:
		inner.add_attachment(forwarded(depth - 1))
	return inner


def test_forwarded_message_is_an_attachment_not_the_body():
	outer = EmailMessage()
	outer["From"] = "fwd@acme.com"
	outer["Subject"] = "Fwd: inner 3"
	outer.set_content("FYI, see below")
	outer.add_attachment(forwarded(3))
	m = parse_message(outer.as_bytes())
	assert m.text == "FYI, see below"
	assert m.sender.email == "fwd@acme.com" and m.subject == "Fwd: inner 3"
	assert len(m.attachments) == 1
	att = m.attachments[0]
	assert att.is_forwarded_message and att.content_type == "message/rfc822"
	assert att.filename == "inner 3.eml" and att.size > 100
	assert "inner body" not in m.text


def test_missing_from_message_id_and_date_get_stable_identity_and_defects():
	data = raw("To: sales@example.com\nSubject: no sender", "who sent this?")
	first, second = parse_message(data), parse_message(data)
	assert first.sender is None and first.message_id == "" and first.date is None
	assert {"missing From header", "missing Message-ID header", "missing Date header"} <= set(first.defects)
	assert first.key == second.key and len(first.key) == 40
	other = parse_message(raw("To: sales@example.com\nSubject: no sender", "someone else"))
	assert other.key != first.key


def test_identity_is_message_id_whatever_the_mailbox_headers():
	base = "From: a@b.com\nSubject: s\nMessage-ID: <same@b.com>"
	one = parse_message(raw("Received: from mx1 by inbox-a\n" + base))
	two = parse_message(raw("Received: from mx2 by inbox-b\nX-Folder: Sent\n" + base))
	assert one.key == two.key


def test_identity_without_message_id_ignores_transport_headers():
	base = "From: a@b.com\nTo: c@d.com\nSubject: s\nDate: Mon, 23 Nov 2026 10:00:00 +0000"
	assert parse_message(raw("Received: from mx1\n" + base)).key == parse_message(raw("Received: from mx2\n" + base)).key


@pytest.mark.parametrize(
	"data,reason",
	[(b"", "empty"), (b"   \r\n\r\n", "empty"), (b"\r\n\r\njust a body and no headers", "no headers")],
)
def test_unreadable_input_is_reported_not_raised(data, reason):
	m = parse_message(data)
	assert reason in m.unreadable
	assert m.key


def test_broken_mime_keeps_what_is_readable():
	data = raw(
		'From: a@b.com\nSubject: broken\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="XYZ"',
		"--XYZ\nContent-Type: text/plain\n\nfirst part survives\n--XYZ\nContent-Type: application/pdf\n"
		"Content-Transfer-Encoding: base64\n\n!!!not base64!!!\n",  # and no closing boundary
	)
	m = parse_message(data)
	assert "first part survives" in m.text
	assert any("boundary" in d for d in m.defects)


def test_multipart_without_boundary():
	m = parse_message(raw("From: a@b.com\nContent-Type: multipart/mixed", "body without parts"))
	assert m.sender.email == "a@b.com"
	assert m.defects


def test_garbage_addresses_and_dates_are_defects():
	m = parse_message(raw("From: not an address\nTo: ;;;, <>, ok@fine.com\nDate: yesterday-ish"))
	assert m.sender is None
	assert [a.email for a in m.to] == ["ok@fine.com"]
	assert any("Date" in d for d in m.defects)


def test_huge_message_is_read():
	body = ("All work and no play. " * 50 + "\n") * 20000  # about 22 MB
	m = parse_message(raw("From: big@b.com\nSubject: huge", body))
	assert m.size > 20_000_000
	assert m.text.startswith("All work")


def test_random_bytes_never_raise():
	rng = random.Random(7)
	seeds = [
		raw("From: a@b.com\nSubject: =?utf-8?q?x?=", "body"),
		raw('From: a@b.com\nContent-Type: multipart/alternative; boundary="b"', "--b\n\nx\n--b--"),
	]
	for _ in range(500):
		data = bytearray(rng.choice(seeds))
		for _ in range(rng.randint(1, 20)):
			data[rng.randrange(len(data))] = rng.randrange(256)
		m = parse_message(bytes(data))
		assert m.key
