"""Mail as other systems really send it: each class of damage seen in the wild, in a message written here.

8-bit file names, sibling text and HTML parts, wrong charset labels, ISO-2022-JP vendor characters,
broken and junk-led header blocks, mangled addresses, bounce reports, attachments' bytes, loosely written
transfer encodings, lost or early-closed boundaries, mixed charsets and obsolete header syntax.
"""

import base64
import builtins
import email
import email.header
import email.policy
import json
import random
import time

import pytest

from email_sync.engine.parse import parse_message


def mail(headers: str, body: bytes | str = b"Hello") -> bytes:
	"""RFC 822 bytes with CRLF lines; headers as text (8-bit bytes can be spliced in by the caller)."""
	if isinstance(body, str):
		body = body.replace("\n", "\r\n").encode("utf-8")
	return headers.strip("\n").replace("\n", "\r\n").encode("utf-8") + b"\r\n\r\n" + body


def crlf(text: str) -> bytes:
	return text.replace("\n", "\r\n").encode("utf-8")


def multipart(parts: list[bytes], subtype: str = "mixed", headers: str = "From: a@acme.com\nSubject: s") -> bytes:
	body = b"".join(b"--BOUNDARY\r\n" + p + b"\r\n" for p in parts) + b"--BOUNDARY--\r\n"
	return mail(f'{headers}\nMIME-Version: 1.0\nContent-Type: multipart/{subtype}; boundary="BOUNDARY"', body)


PDF = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\nfake pdf bytes\n"


def pdf_part(disposition: bytes, content_type: bytes = b"application/pdf") -> bytes:
	head = b"Content-Type: " + content_type + b"\r\n"
	if disposition:
		head += b"Content-Disposition: " + disposition + b"\r\n"
	return head + b"Content-Transfer-Encoding: base64\r\n\r\n" + base64.b64encode(PDF)


TEXT = b"Content-Type: text/plain; charset=utf-8\r\n\r\nsee attached"


# 1. File names as sent: raw 8-bit bytes, RFC 2231, RFC 2047, name= only.


@pytest.mark.parametrize(
	"name,encoding,text_charset",
	[
		("Bericht März.pdf", "utf-8", "utf-8"),
		("Bericht März.pdf", "latin-1", "iso-8859-1"),
		("Bericht März.pdf", "latin-1", ""),  # no charset anywhere: not UTF-8, so Windows-1252
		("报价单 2026.pdf", "gbk", "gbk"),
		("見積書.pdf", "shift_jis", "shift_jis"),
		("Счёт.pdf", "utf-8", "koi8-r"),  # UTF-8 first, whatever the message declares
	],
)
def test_raw_8bit_filename_keeps_the_part_and_decodes_the_name(name, encoding, text_charset):
	raw_name = name.encode(encoding)
	charset = b"; charset=" + text_charset.encode() if text_charset else b""
	text = b"Content-Type: text/plain" + charset + b"\r\n\r\nhi"
	part = pdf_part(b'attachment; filename="' + raw_name + b'"', b'application/pdf; name="' + raw_name + b'"')
	m = parse_message(multipart([text, part]))
	assert not any("Header" in d for d in m.defects)
	[att] = m.attachments
	assert att.original_filename == name and att.filename == name
	assert att.content == PDF and att.size == len(PDF) and att.content_type == "application/pdf"


@pytest.mark.parametrize(
	"disposition,content_type,expected",
	[
		(b"attachment; filename*=utf-8''%E6%8A%A5%E4%BB%B7%E5%8D%95.pdf", b"application/pdf", "报价单.pdf"),
		(b"attachment; filename*=iso-8859-1'de'M%E4rz.pdf", b"application/pdf", "März.pdf"),
		(
			b"attachment;\r\n filename*0*=utf-8''Sehr%20langer%20Name%20f%C3%BCr;"
			b'\r\n filename*1*=%20den%20M%C3%A4rz;\r\n filename*2=".pdf"',
			b"application/pdf",
			"Sehr langer Name für den März.pdf",
		),
		(b'attachment; filename="=?UTF-8?B?5oql5Lu35Y2VLnBkZg==?="', b"application/pdf", "报价单.pdf"),
		(
			b'attachment; filename="=?iso-8859-1?Q?M=E4rz?= =?utf-8?Q?_=E2=82=AC.pdf?="',
			b"application/pdf",
			"März €.pdf",
		),
		(b"", b'application/pdf; name="=?utf-8?q?Angebot_M=C3=A4rz.pdf?="', "Angebot März.pdf"),
		(b"", b"application/pdf; name*=UTF-8''%D0%A1%D1%87%D1%91%D1%82.pdf", "Счёт.pdf"),
		(b"inline", b"application/pdf; name=plain.pdf", "plain.pdf"),
		(b"attachment; filename=My Report 2026.pdf", b"application/pdf", "My Report 2026.pdf"),  # unquoted
		(b'attachment; filename="unterminated.pdf', b"application/pdf", "unterminated.pdf"),
		(b"attachment; filename*=utf-8''a.pdf; filename=fallback.pdf", b"application/pdf", "a.pdf"),
	],
)
def test_encoded_filenames(disposition, content_type, expected):
	m = parse_message(multipart([TEXT, pdf_part(disposition, content_type)]))
	[att] = m.attachments
	assert att.original_filename == expected
	assert att.content == PDF


def test_dangerous_names_are_made_safe_and_the_original_is_kept():
	m = parse_message(
		multipart(
			[
				TEXT,
				pdf_part(b'attachment; filename="..\\\\..\\\\Windows\\\\evil.pdf"'),
				pdf_part(b'attachment; filename="/etc/passwd"'),
				pdf_part(b"attachment; filename*=utf-8''invoice%E2%80%AEfdp.exe"),
				pdf_part(b'attachment; filename="CON"'),
				pdf_part(b"attachment"),
			]
		)
	)
	names = [(a.original_filename, a.filename) for a in m.attachments]
	assert names == [
		("..\\..\\Windows\\evil.pdf", "evil.pdf"),
		("/etc/passwd", "passwd"),
		("invoice\u202efdp.exe", "invoicefdp.exe"),
		("CON", "_CON"),
		("", "attachment.pdf"),
	]


# 2. Sibling text and HTML parts that are not alternatives.


def text_part(text: str, subtype: str = "plain") -> bytes:
	head = f"Content-Type: text/{subtype}; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
	return (head + text).encode()


def test_text_body_then_html_signature_reaches_both_views_in_order():
	m = parse_message(
		multipart(
			[
				text_part("The invoice is attached & due <soon>."),
				text_part('<p><b>Ana Silva</b> | Acme Corp | <a href="https://a.test">a.test</a></p>', "html"),
			]
		)
	)
	assert m.text.startswith("The invoice is attached & due <soon>.")
	assert "Ana Silva" in m.text and "Acme Corp" in m.text and "<b>" not in m.text
	assert m.text.index("invoice") < m.text.index("Ana Silva")
	assert "The invoice is attached &amp; due &lt;soon&gt;." in m.html and "<b>Ana Silva</b>" in m.html
	assert m.html.index("invoice") < m.html.index("Ana Silva")


def test_html_body_then_text_footer_from_a_mailing_list():
	related = multipart(
		[
			text_part('<p>The <i>HTML</i> body. <img src="cid:logo@acme"></p>', "html"),
			b"Content-Type: image/png\r\nContent-ID: <logo@acme>\r\nContent-Transfer-Encoding: base64\r\n\r\n"
			+ base64.b64encode(b"\x89PNG fake"),
		],
		"related",
		headers="X-Part: related",
	).replace(b"BOUNDARY", b"REL")
	alternative = multipart([text_part("The plain body."), related], "alternative", headers="X-Part: alt")
	alternative = alternative.replace(b"BOUNDARY", b"ALT")
	message = multipart([alternative, text_part("-- \nList mailing list: unsubscribe at https://list.test")])
	m = parse_message(message)
	assert m.text.startswith("The plain body.") and m.text.endswith("unsubscribe at https://list.test")
	assert "HTML" not in m.text  # the text view takes the text alternative
	assert m.html.startswith('<p>The <i>HTML</i> body. <img src="cid:logo@acme"></p>')
	assert "unsubscribe at https://list.test</div>" in m.html
	[logo] = m.attachments
	assert logo.inline and logo.content_id == "logo@acme" and logo.content == b"\x89PNG fake"


def test_each_view_takes_its_best_alternative_recursively():
	inner_mixed = multipart(
		[
			text_part("<p>First HTML part</p>", "html"),
			pdf_part(b"attachment; filename=a.pdf"),
			text_part("<p>Second</p>", "html"),
		],
		headers="X-Part: mixed",
	).replace(b"BOUNDARY", b"MIX")
	m = parse_message(multipart([text_part("Plain alternative."), inner_mixed], "alternative"))
	assert m.text == "Plain alternative."
	assert "<p>First HTML part</p>" in m.html and "<p>Second</p>" in m.html
	assert "Plain alternative" not in m.html
	assert [a.filename for a in m.attachments] == ["a.pdf"]


def test_html_alternative_alone_is_converted_for_the_text_view():
	html = text_part("<p>Only <b>HTML</b> has words</p>", "html")
	m = parse_message(multipart([text_part(""), html], "alternative"))
	assert "Only HTML has words" in m.text and "<b>HTML</b>" in m.html


def test_mixed_parts_that_are_copies_of_each_other_are_not_shown_twice():
	m = parse_message(
		multipart(
			[
				text_part("Dear team, please find the quarterly report attached.\nRegards, Ana"),
				text_part(
					"<p>Dear team, please find the <b>quarterly report</b> attached.</p><p>Regards, Ana</p>", "html"
				),
			]
		)
	)
	assert m.text.count("quarterly report") == 1
	assert m.html.count("quarterly report") == 1 and "<b>quarterly report</b>" in m.html


def test_multipart_without_boundary_finds_its_parts_by_their_separator():
	body = (
		"--XYZ\nContent-Type: text/plain\n\nthe real body\n"
		"--XYZ\nContent-Type: text/html\n\n<p>sig</p>\n--XYZ--\n"
	)
	m = parse_message(mail("From: a@b.com\nContent-Type: multipart/mixed", body))
	assert m.text.startswith("the real body") and "sig" in m.text
	assert any("boundary" in d for d in m.defects)


# 3. Wrong charset labels.

LETTERS = {
	"gb2312": "张先生：\n附件是本月的发票，请查收。如有问题请随时联系我们。\n谢谢！\n李明",
	"big5": "陳先生您好：\n附件為本月報價單，請查收。若有任何問題，歡迎隨時與我們聯絡。\n謝謝！",
	"shift_jis": "山田様\nお世話になっております。\n見積書をお送りしますので、ご確認ください。",
	"euc-kr": "김 부장님께,\n안녕하세요. 요청하신 견적서를 첨부합니다.\n검토 후 회신 부탁드립니다.",
	"windows-1251": "Уважаемый Иван Петрович!\nВо вложении счёт за ноябрь. Просим оплатить до конца месяца.",
	"koi8-r": "Уважаемая Ольга!\nДоговор поставки подписан, оригинал отправим почтой на этой неделе.",
	"windows-1253": "Αγαπητέ κύριε Παπαδόπουλε,\nΣας επισυνάπτουμε το τιμολόγιο του Νοεμβρίου.",
	"utf-8": "Grüße aus München – naïve café, 你好, Привет.",
}


@pytest.mark.parametrize(
	"actual,declared",
	[
		("gb2312", "iso-8859-1"),
		("windows-1251", "iso-8859-1"),
		("utf-8", "us-ascii"),
		("utf-8", "iso-8859-1"),
		("utf-8", "windows-1252"),
		("shift_jis", "iso-2022-jp"),
		("euc-kr", "iso-8859-1"),
		("big5", "us-ascii"),
		("koi8-r", "windows-1252"),
		("windows-1253", "iso-8859-15"),
		("gb2312", "utf-8"),
		("windows-1251", "utf-8"),
		("gb2312", ""),
	],
)
def test_mislabelled_body_is_read_in_its_real_charset(actual, declared):
	letter = LETTERS[actual]
	content_type = f"text/plain; charset={declared}" if declared else "text/plain"
	body = letter.replace("\n", "\r\n").encode(actual)
	m = parse_message(mail(f"From: a@b.com\nSubject: s\nContent-Type: {content_type}", body))
	assert m.text.replace("\r\n", "\n") == letter
	assert any("body" in d and " read as " in d and (declared or "without a charset") in d for d in m.defects)


@pytest.mark.parametrize(
	"text,charset",
	[
		("Café crème, déjà vu: Grüße aus München. «Ça va?»", "iso-8859-1"),
		("Smart “quotes” – and €5 — fine", "windows-1252"),
		("Zażółć gęślą jaźń. Dzień dobry, w załączeniu faktura.", "iso-8859-2"),
		("Ærlig talt, så er det én ting: Ørsted og Åse.", "iso-8859-1"),
		("Привет, это письмо в правильной кодировке.", "koi8-r"),
		("お世話になっております。", "shift_jis"),
	],
)
def test_correctly_labelled_mail_is_left_alone(text, charset):
	m = parse_message(mail(f"From: a@b.com\nContent-Type: text/plain; charset={charset}", text.encode(charset)))
	assert m.text == text
	assert not any(" read as " in d for d in m.defects)


def test_mislabelled_8bit_subject_is_read_with_the_message():
	subject = "十一月发票 请查收"
	body = LETTERS["gb2312"].encode("gb2312")
	data = mail("From: a@b.com\nSubject: SUBJECT\nContent-Type: text/plain; charset=iso-8859-1", body)
	m = parse_message(data.replace(b"SUBJECT", subject.encode("gb2312")))
	assert m.subject == subject
	assert "Subject declared iso-8859-1 but read as gb18030" in m.defects


def test_mislabelled_encoded_word_is_read_in_its_real_charset():
	word = base64.b64encode("Счёт за ноябрь, оплата до пятницы".encode("cp1251")).decode()
	m = parse_message(mail(f"From: a@b.com\nSubject: =?iso-8859-1?B?{word}?="))
	assert m.subject == "Счёт за ноябрь, оплата до пятницы"


def test_the_detector_never_runs_on_clean_mail(monkeypatch):
	import charset_normalizer

	def fail(*args, **kwargs):
		raise AssertionError("detector called on clean mail")

	monkeypatch.setattr(charset_normalizer, "from_bytes", fail)
	for text, charset in [("Grüße", "iso-8859-1"), ("Привет", "koi8-r"), ("你好", "utf-8"), ("plain", "us-ascii")]:
		headers = f"From: a@b.com\nSubject: {text}\nContent-Type: text/plain; charset={charset}"
		m = parse_message(mail(headers, text.encode(charset)))
		assert m.text == text


def test_the_engine_reads_mail_without_the_detector(monkeypatch):
	real_import = builtins.__import__

	def no_detector(name, *args, **kwargs):
		if name.startswith("charset_normalizer"):
			raise ImportError(name)
		return real_import(name, *args, **kwargs)

	monkeypatch.setattr(builtins, "__import__", no_detector)
	utf8 = parse_message(mail("From: a@b.com\nContent-Type: text/plain; charset=us-ascii", "naïve café"))
	assert utf8.text == "naïve café"  # the cheap check needs no detector
	body = LETTERS["gb2312"].encode("gb2312")
	gb = parse_message(mail("From: a@b.com\nContent-Type: text/plain; charset=iso-8859-1", body))
	assert gb.text  # read as before, as Windows-1252, and never raises


# 4. ISO-2022-JP with vendor extensions.

NEC_AND_IBM = b"\x1b$B\x2d\x21\x2d\x22\x2d\x35\x2d\x6a\x24\x22\x79\x21\x1b(B"  # ①②Ⅰ㈱あ纊


def test_iso2022jp_body_with_nec_and_ibm_characters():
	body = b"\x1b$B%F%9%H\x1b(B: " + NEC_AND_IBM + b"\r\n\x1b(I\x31\x32\x33\x1b(B end\r\n"
	m = parse_message(mail("From: a@b.com\nContent-Type: text/plain; charset=ISO-2022-JP", body))
	assert m.text.replace("\r\n", "\n") == "テスト: ①②Ⅰ㈱あ纊\nｱｲｳ end"
	assert "\x1b" not in m.text and "$B" not in m.text


def test_iso2022jp_headers_encoded_and_raw():
	word = base64.b64encode(NEC_AND_IBM).decode()
	data = mail(f"From: =?ISO-2022-JP?B?{word}?= <jp@example.jp>\nSubject: =?ISO-2022-JP?B?{word}?= RAW")
	m = parse_message(data.replace(b"RAW", b"\x1b$B%F%9%H\x1b(B"))
	assert m.subject == "①②Ⅰ㈱あ纊 テスト"
	assert m.sender.name == "①②Ⅰ㈱あ纊" and m.sender.email == "jp@example.jp"


def test_iso2022jp_label_on_7bit_text_of_another_label():
	m = parse_message(mail("From: a@b.com\nContent-Type: text/plain; charset=us-ascii", NEC_AND_IBM))
	assert m.text == "①②Ⅰ㈱あ纊"
	assert any("read as iso-2022-jp" in d for d in m.defects)


# 5 and 6. Header blocks the stdlib parser would cut short or never find.

SPAM_REPORT = """Received: from mx.example.net by mail.example.com
X-Spam-Report: Content analysis details:   (6.1 points, 5.0 required)
pts rule name              description
---- ---------------------- --------------------------------------------------
 1.5 URIBL_BLACK            Contains an URL listed in the URIBL blacklist
2.0 BAYES_80               Bayes spam probability is 80 to 95%
X-Spam-Status: Yes, score=6.1
From: "Ana Silva" <ana@acme.com>
To: sales@example.com
Subject: Order 7
Message-ID: <o7@acme.com>
Date: Mon, 23 Nov 2026 10:00:00 +0000
Content-Type: text/plain; charset=utf-8
"""


def test_unindented_lines_inside_the_header_block_are_folded():
	m = parse_message(mail(SPAM_REPORT, "Please ship order 7."))
	assert (m.sender.email, m.subject, m.message_id) == ("ana@acme.com", "Order 7", "o7@acme.com")
	assert [a.email for a in m.to] == ["sales@example.com"] and m.date is not None
	assert m.text == "Please ship order 7."
	assert any("unindented" in d for d in m.defects)


def test_a_body_without_a_blank_line_stays_the_body():
	m = parse_message(crlf("From: a@b.com\nSubject: no separator\nDear team: this is the body\nline two\n"))
	assert m.subject == "no separator"
	assert m.text.replace("\r\n", "\n") == "Dear team: this is the body\nline two"


@pytest.mark.parametrize(
	"junk",
	[
		b"---- Original email message ----\r\n",
		b"From someone@example.com Mon Jan  5 10:00:00 2026\r\n",
		b"\xef\xbb\xbf",
		b"\r\n\r\n",
		b"\xef\xbb\xbf\r\nFrom someone@example.com Mon Jan  5 10:00:00 2026\r\n",
		b"\n-----Original Message-----\n",
	],
)
def test_junk_before_the_headers_is_skipped(junk):
	m = parse_message(junk + mail("From: Ana <ana@acme.com>\nSubject: after junk\nMessage-ID: <j@acme.com>", "body"))
	assert (m.sender.email, m.subject, m.message_id, m.text) == ("ana@acme.com", "after junk", "j@acme.com", "body")
	if not junk.startswith(b"From "):  # an mbox line in first place is no junk: the stdlib parser reads it
		assert any("before the headers" in d for d in m.defects)


def test_junk_is_skipped_only_a_few_lines_deep():
	junk = b"".join(b"junk line %d\r\n" % i for i in range(10))
	m = parse_message(junk + mail("From: a@b.com\nSubject: too deep"))
	assert m.subject != "too deep"


# 7. Addresses: a usable one or none, never one with a space.


@pytest.mark.parametrize(
	"header,expected",
	[
		("test test@example.com", [("test@example.com", "test")]),
		('"John" Smith <js@example.com>', [("js@example.com", "John Smith")]),
		("john@example.com <john@example.com>", [("john@example.com", "")]),
		("<a@b.com>, , c@d.example", [("a@b.com", ""), ("c@d.example", "")]),
		("Name <a@b.com", [("a@b.com", "Name")]),
		("Name <a@b.com, Other <c@d.com>", [("a@b.com", "Name"), ("c@d.com", "Other")]),
		("a@b.com c@d.com", [("a@b.com", ""), ("c@d.com", "")]),
		("'Jane Doe' <jd@x.com>", [("jd@x.com", "Jane Doe")]),
		("a@b.com (Ana Silva)", [("a@b.com", "Ana Silva")]),
		("<mailto:x@y.com>", [("x@y.com", "")]),
		('"Smith, John" <js@x.com>', [("js@x.com", "Smith, John")]),
		("undisclosed-recipients:;", []),
		("Team: a@b.com, c@d.com;", [("a@b.com", ""), ("c@d.com", "")]),
		('"john smith"@x.com', []),
		("<john smith@x.com>", []),
		("a@b@c.com", []),
		("a\x01b@x.com", []),
		('a"b@x.com', []),
		("@x.com, a@, @", []),
		("=?utf-8?q?J=C3=B6rg_M=C3=BCller?= <jm@example.de>", [("jm@example.de", "Jörg Müller")]),
	],
)
def test_addresses_are_usable_or_absent(header, expected):
	m = parse_message(mail(f"From: a@b.com\nTo: {header}"))
	assert [(a.email, a.name) for a in m.to] == expected
	for a in m.to:
		assert " " not in a.email and a.email.count("@") == 1 and '"' not in a.email
		assert all(ch.isprintable() for ch in a.email)


def test_random_address_garbage_never_yields_an_invalid_address():
	rng = random.Random(11)
	alphabet = 'ab@.<>," ()\\:;\t\x00é'
	for _ in range(300):
		header = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40)))
		for a in parse_message(mail("From: x@y.com\nTo: " + header.replace("\n", " "))).to:
			assert a.email.count("@") == 1 and not any(ch in a.email for ch in ' "<>,;:()\\\t\x00')


# 8. Bounce reports are not forwarded mail; the returned message is.

BOUNCE = """From: MAILER-DAEMON@mx.example.net
To: ana@acme.com
Subject: Undelivered Mail Returned to Sender
Message-ID: <bounce-1@mx.example.net>
MIME-Version: 1.0
Content-Type: multipart/report; report-type=delivery-status; boundary="R"

--R
Content-Type: text/plain

Your message could not be delivered to nobody@example.com.
--R
Content-Type: message/delivery-status

Reporting-MTA: dns; mx.example.net

Final-Recipient: rfc822; nobody@example.com
Action: failed
Status: 5.1.1

--R
Content-Type: ORIGINAL

From: ana@acme.com
To: nobody@example.com
Subject: Hello there
Message-ID: <orig@acme.com>

original body
--R--
"""


def test_bounce_status_is_a_text_attachment_and_the_original_is_forwarded():
	m = parse_message(crlf(BOUNCE.replace("ORIGINAL", "message/rfc822")))
	assert m.text == "Your message could not be delivered to nobody@example.com."
	status, original = m.attachments
	assert (status.content_type, status.is_forwarded_message, status.filename) == (
		"message/delivery-status",
		False,
		"delivery-status.txt",
	)
	assert b"Status: 5.1.1" in status.content and b"Final-Recipient" in status.content
	assert original.is_forwarded_message and original.filename == "Hello there.eml"
	assert email.message_from_bytes(original.content)["Message-ID"] == "<orig@acme.com>"


def test_returned_headers_are_not_a_forwarded_message():
	m = parse_message(crlf(BOUNCE.replace("ORIGINAL", "text/rfc822-headers")))
	assert [(a.content_type, a.is_forwarded_message) for a in m.attachments] == [
		("message/delivery-status", False),
		("text/rfc822-headers", False),
	]
	assert b"Subject: Hello there" in m.attachments[1].content


def test_read_receipt_is_not_a_forwarded_message():
	receipt = BOUNCE.replace("message/delivery-status", "message/disposition-notification")
	receipt = receipt.replace("ORIGINAL", "text/plain")
	m = parse_message(crlf(receipt))
	assert not any(a.is_forwarded_message for a in m.attachments)


# 9. Attachments carry their bytes; JSON never does.


def test_attachment_bytes_inline_parts_and_json():
	msg = email.message.EmailMessage()
	msg["From"] = "ana@acme.com"
	msg["Subject"] = "bytes"
	msg.set_content("text")
	msg.add_alternative('<p>Logo: <img src="cid:logo@acme"></p>', subtype="html")
	data = bytes(range(256)) * 4
	msg.add_attachment(data, maintype="application", subtype="octet-stream", filename="data.bin")
	msg.add_attachment(b"\x89PNG logo", maintype="image", subtype="png", filename="logo.png",
		cid="<logo@acme>")
	m = parse_message(msg.as_bytes())
	blob, logo = m.attachments
	assert blob.content == data and blob.size == 1024 and not blob.inline
	assert logo.content == b"\x89PNG logo" and logo.content_id == "logo@acme"
	assert logo.inline  # attached, but shown by the HTML through cid:
	data_json = m.to_json()
	assert all("content" not in a for a in data_json["attachments"])
	assert data_json["attachments"][0]["size"] == 1024
	json.dumps(data_json)  # no bytes anywhere


def test_forwarded_message_content_is_the_message():
	inner = email.message.EmailMessage()
	inner["From"] = "bob@example.com"
	inner["Subject"] = "Grüße / Quarterly: report?"
	inner["Message-ID"] = "<inner@example.com>"
	inner.set_content("inner body")
	outer = email.message.EmailMessage()
	outer["From"] = "ana@acme.com"
	outer["Subject"] = "Fwd"
	outer.set_content("see below")
	outer.add_attachment(inner)
	[att] = parse_message(outer.as_bytes()).attachments
	assert att.original_filename == "Grüße / Quarterly: report?.eml"
	assert att.filename == "Quarterly_ report_.eml"  # no path separators in a file name
	again = parse_message(att.content)
	assert again.message_id == "inner@example.com" and again.text == "inner body"
	assert att.size == len(att.content)


def test_content_does_not_change_the_identity():
	def build(content: bytes) -> bytes:
		head = b"Content-Type: application/pdf\r\nContent-Disposition: attachment; filename=a.pdf\r\n\r\n"
		return multipart([TEXT, head + content])

	assert parse_message(build(b"one")).key == parse_message(build(b"one")).key


# 11. Never raises, stays linear.


def test_mutated_real_world_mail_never_raises():
	rng = random.Random(3)
	seeds = [
		multipart([TEXT, pdf_part(b'attachment; filename="M\xe4rz.pdf"')]),
		mail(SPAM_REPORT, "x"),
		mail("From: a@b.com\nContent-Type: text/plain; charset=ISO-2022-JP", NEC_AND_IBM),
		crlf(BOUNCE.replace("ORIGINAL", "message/rfc822")),
		b"\xef\xbb\xbf\r\n" + mail("From: a@b.com\nTo: test test@x.com, <a@b"),
	]
	for _ in range(400):
		data = bytearray(rng.choice(seeds))
		for _ in range(rng.randint(1, 12)):
			data[rng.randrange(len(data))] = rng.randrange(256)
		assert parse_message(bytes(data)).key


@pytest.mark.parametrize(
	"data",
	[
		mail("From: a@b.com\nTo: " + '"\\' * 100_000),
		mail("From: a@b.com\nTo: " + "(" * 100_000 + "a@b.com"),
		mail("From: a@b.com\nTo: " + "<a" * 100_000),
		mail("From: a@b.com\nSubject: " + "=?x?q?" * 50_000),
		mail("X-A: 1\n" + "unindented line\n" * 50_000 + "From: a@b.com"),
		multipart([TEXT, pdf_part(b"attachment; filename=" + b'"\\' * 50_000)]),
		multipart([TEXT, pdf_part(b"attachment; " + b"filename*1*=x; " * 20_000)]),
		mail("From: a@b.com\nContent-Type: text/plain; charset=iso-8859-1", bytes(range(128, 256)) * 20_000),
		mail("From: a@b.com\nContent-Type: text/plain; charset=iso-2022-jp", b"\x1b$B" + b"\x2d\x21" * 200_000),
	],
	ids=[
		*["quotes", "comments", "brackets", "encoded-words", "unindented", "filename-quotes", "continuations"],
		*["latin-runs", "jis"],
	],
)
def test_hostile_input_is_read_in_linear_time(data):
	start = time.perf_counter()
	parse_message(data)
	assert time.perf_counter() - start < 3


# 12. Transfer encodings as written, boundaries lost or closed early, charsets mixed or barely evidenced,
# addresses in odd places and obsolete header syntax.


@pytest.mark.parametrize(
	"encoding",
	[
		"quoted-printable   ",
		"quoted-printable;",
		"Quoted-Printable (sent by a webmail)",
		"quoted printable",
		"\t\tquoted-printable\t",
		"\n quoted-printable",
	],
)
def test_transfer_encoding_written_loosely_is_still_undone(encoding):
	text = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: " + encoding.encode()
	text += b"\r\n\r\nPreis: 5=E2=82=AC, Gr=C3=BC=C3=9Fe =\r\naus M=C3=BCnchen"
	pdf = pdf_part(b'attachment; filename="a.pdf"').replace(b"base64", b"BASE64 ; x")
	m = parse_message(multipart([text, pdf]))
	assert m.text == "Preis: 5€, Grüße aus München"
	[att] = m.attachments
	assert att.content == PDF


def test_unknown_transfer_encodings_leave_the_text_as_sent():
	for encoding in ("7-bit", "8 bit", "binary", "", "x-unknown"):
		part = b"Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: " + encoding.encode()
		m = parse_message(multipart([part + b"\r\n\r\nkeep =3D as sent \xe2\x82\xac"]))
		assert m.text == "keep =3D as sent €"


def test_multipart_without_parts_read_as_text_has_its_transfer_encoding_undone():
	headers = (
		"From: a@acme.com\nSubject: s\nMIME-Version: 1.0\nContent-Transfer-Encoding: quoted-printable\n"
		'Content-Type: multipart/mixed; boundary="never-used"; charset=iso-8859-1'
	)
	m = parse_message(mail(headers, "Gr=FC=DFe aus K=F6ln\n\n-- \nAna"))
	assert m.text.replace("\r\n", "\n") == "Grüße aus Köln\n\n-- \nAna"
	assert any("read as text" in d for d in m.defects)


def test_boundary_folded_across_lines_is_unfolded():
	body = (
		"preamble\n\n--part one\nContent-Type: text/plain\n\nthe body\n\n"
		"--part one\nContent-Type: application/pdf\nContent-Disposition: attachment; filename=a.pdf\n"
		"Content-Transfer-Encoding: base64\n\n" + base64.b64encode(PDF).decode() + "\n--part one--\n"
	)
	headers = 'From: a@acme.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary="part\n one"'
	m = parse_message(mail(headers, body))
	assert m.text == "the body"
	assert [(a.filename, a.content) for a in m.attachments] == [("a.pdf", PDF)]


def test_parts_after_an_early_closing_boundary_are_kept():
	# The inner multipart reuses its parent's boundary, so the parent closes before the attachment.
	inner = (
		b'Content-Type: multipart/alternative; boundary="BOUNDARY"\r\n\r\n'
		b"--BOUNDARY\r\nContent-Type: text/plain\r\n\r\nsee the invoice\r\n"
		b"--BOUNDARY\r\nContent-Type: text/html\r\n\r\n<p>see the invoice</p>\r\n"
		b"--BOUNDARY--\r\n"
	)
	m = parse_message(multipart([inner, pdf_part(b'attachment; filename="invoice.pdf"')]))
	assert "see the invoice" in m.text
	assert [(a.filename, a.content) for a in m.attachments] == [("invoice.pdf", PDF)]


def test_an_epilogue_without_parts_stays_an_epilogue():
	data = multipart([TEXT]) + b"--BOUNDARY is how this list's footer mentions the separator\r\nbye\r\n"
	m = parse_message(data)
	assert m.text == "see attached" and m.attachments == []


def test_raw_8bit_headers_inside_a_filters_report_in_another_charset():
	# A spam filter wraps the original (raw GB2312 headers) in a report of its own, in Latin-1.
	subject, name = "转发：本月发票请查收", "王小明"
	headers = b'From: "NAME" <wang@example.cn>\r\nSubject: SUBJECT\r\n'
	headers = headers.replace(b"NAME", name.encode("gb2312")).replace(b"SUBJECT", subject.encode("gb2312"))
	original = headers + b"Content-Type: text/plain; charset=gb2312\r\n\r\n" + LETTERS["gb2312"].encode("gb2312")
	report = (
		"Die Software zur Erkennung von Spam hat die eingegangene E-Mail als mögliche Spam-Nachricht "
		"identifiziert. Die ursprüngliche Nachricht wurde an diesen Bericht angehängt, so dass Sie sie "
		"anschauen können (falls es doch eine legitime E-Mail ist) oder ähnliche unerwünschte Nachrichten "
		"in Zukunft markieren können. Bei Fragen wenden Sie sich bitte an Ihren Administrator."
	).encode("latin-1")
	body = (
		b"--B\r\nContent-Type: text/plain; charset=iso-8859-1\r\nContent-Transfer-Encoding: 8bit\r\n\r\n"
		+ report
		+ b"\r\n--B\r\nContent-Type: message/rfc822\r\nContent-Disposition: attachment\r\n\r\n"
		+ original
		+ b"\r\n--B--\r\n"
	)
	headers += b'MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="B"\r\n\r\n'
	m = parse_message(headers + body)
	assert m.subject == subject
	assert (m.sender.email, m.sender.name) == ("wang@example.cn", name)
	assert m.text.startswith("Die Software zur Erkennung von Spam")
	assert [a.filename for a in m.attachments] == [f"{subject}.eml"]


@pytest.mark.parametrize(
	"subject,body",
	[
		("=?iso-8859-1?Q?=C4=D6=DC-Liste?=", b"Die \xc4\xd6\xdc-Liste folgt."),  # ÄÖÜ-Liste
		("=?iso-8859-1?Q?Caf=E9=E0=E8?=", b"voil\xe0"),
		("=?iso-8859-15?Q?=E4=F6=FC?=", b"\xe4\xf6\xfc\xdf"),
	],
)
def test_a_few_accented_letters_in_a_row_keep_their_label(subject, body):
	headers = f"From: a@b.com\nSubject: {subject}\nContent-Type: text/plain; charset=iso-8859-1"
	m = parse_message(mail(headers, body))
	label = subject.split("?")[1]
	assert m.subject == decode_expected(subject, label)
	assert m.text == body.decode("latin-1")
	assert not any(" read as " in d for d in m.defects)


def decode_expected(word: str, label: str) -> str:
	return email.header.decode_header(word)[0][0].decode(label)


def test_greek_glued_to_latin_letters_is_no_reading_of_a_latin_label():
	# Alone (no body to compare with), 8-bit runs inside Latin words read as Greek would glue the scripts.
	m = parse_message(mail("From: a@b.com\nSubject: =?iso-8859-1?Q?Stra=DFen=E4=F6=FCbersicht?="))
	assert m.subject == "Straßenäöübersicht"


def test_units_with_greek_letters_are_not_odd():
	text = "Dosis 5μg, Widerstand 10kΩ, Länge 3μm – bitte prüfen."
	m = parse_message(mail("From: a@b.com\nContent-Type: text/plain; charset=utf-8", text.encode("utf-8")))
	assert m.text == text


@pytest.mark.parametrize("declared", ["utf-8", "iso-8859-1", ""])
def test_utf8_text_with_a_latin1_signature_is_read_part_by_part(declared):
	text = "Danke für die Bestellung – 5 € Rabatt, 发票已发送.\n"
	signature = "Grüße, Jürgen Müller (Geschäftsführer)"
	body = text.encode("utf-8") + signature.encode("latin-1")
	content_type = f"text/plain; charset={declared}" if declared else "text/plain"
	m = parse_message(mail(f"From: a@b.com\nContent-Type: {content_type}", body))
	assert m.text.replace("\r\n", "\n") == text + signature
	assert any("mixes UTF-8" in d for d in m.defects)


def test_latin1_text_is_not_taken_for_mixed_utf8():
	text = "Grüße aus Zürich: Müßiggang, Öl, Äpfel – à la carte, café, naïve, señor."
	m = parse_message(mail("From: a@b.com\nContent-Type: text/plain; charset=iso-8859-1", text.encode("cp1252")))
	assert m.text == text
	assert not any("mixes" in d for d in m.defects)


@pytest.mark.parametrize(
	"header,expected",
	[
		('"ana@acme.com"', [("ana@acme.com", "")]),
		('"ana@acme.com", "bo@acme.com"', [("ana@acme.com", ""), ("bo@acme.com", "")]),
		("=?iso-8859-2?Q?Kowalsk=E1?= (ewa@acme.com)", [("ewa@acme.com", "Kowalská")]),
		("Ana Silva (ana@acme.com), bo@acme.com", [("ana@acme.com", "Ana Silva"), ("bo@acme.com", "")]),
		("Ana <ana(work)@acme.com(main office)>", [("ana@acme.com", "Ana")]),
		('"Ana Silva"@acme.com', []),  # a quoted local part with a space: no address we can store
		("Ana (ana@acme.com) (bo@acme.com)", []),  # two candidates: neither is the address
	],
)
def test_addresses_found_in_quotes_and_comments(header, expected):
	m = parse_message(mail(f"From: {header}\nTo: {header}"))
	assert [(a.email, a.name) for a in m.to] == expected
	assert ((m.sender.email, m.sender.name) if m.sender else None) == (expected[0] if expected else None)


@pytest.mark.parametrize(
	"first", ["From  : Ana <ana@acme.com>", "Subject : Old syntax", "Date\t: Mon, 2 Mar 2026 10:00:00 +0000"]
)
def test_obsolete_space_before_the_colon(first):
	headers = [
		"From  : Ana <ana@acme.com>",
		"To: bo@acme.com",
		"Subject : Old syntax",
		"Date\t: Mon, 2 Mar 2026 10:00:00 +0000",
		"Message-ID: <old@acme.com>",
	]
	headers.remove(first)
	m = parse_message(mail("\n".join([first, *headers]), "the body"))
	expected = ("ana@acme.com", "Old syntax", "old@acme.com", "the body")
	assert (m.sender.email, m.subject, m.message_id, m.text) == expected
	assert [a.email for a in m.to] == ["bo@acme.com"] and m.date is not None


def test_an_mbox_line_is_not_an_obsolete_header():
	mbox_line = b"From ana@acme.com Mon Mar  2 10:00:00 2026\r\n"
	m = parse_message(mbox_line + mail("From: ana@acme.com\nSubject: mbox"))
	assert (m.sender.email, m.subject, m.text) == ("ana@acme.com", "mbox", "Hello")


@pytest.mark.parametrize(
	"data",
	[
		# Each nested multipart reuses the boundary and closes early, with more parts after.
		mail(
			'From: a@b.com\nContent-Type: multipart/mixed; boundary="B"',
			'--B\nContent-Type: multipart/mixed; boundary="B"\n\n' * 2000
			+ "--B--\n"
			+ "--B\nX: y\n\nz\n--B--\n" * 2000,
		),
		mail("From: a@b.com\nContent-Type: text/plain; charset=utf-8", ("ü".encode() + b"\xfc") * 300_000),
		mail("From: a@b.com\n" + "X-Obsolete : value\n" * 50_000 + "Subject: s"),
		mail("From: a@b.com\nContent-Transfer-Encoding: " + " quoted - printable" * 20_000, "=41" * 100_000),
		mail('From: a@b.com\nContent-Type: multipart/mixed; boundary="a\n b"', "--a b\n" * 100_000),
	],
	ids=["early-closes", "mixed-utf8", "obsolete-fields", "encoding-name", "folded-boundary"],
)
def test_new_repairs_stay_linear(data):
	start = time.perf_counter()
	parse_message(data)
	assert time.perf_counter() - start < 3
