"""Property-based fuzzing: whatever a sender sends, reading it never raises, never outlasts the budget, and
the sanitiser's output is inert (by the same judge as the XSS vectors) and stable under a second pass.

A fixed seed and a modest number of examples by default, so every run checks the same cases quickly;
EMAIL_SYNC_FUZZ_EXAMPLES=<n> asks for a deeper run (CI can set it), still reproducible.
"""

import base64
import os
import quopri
import time

from activecontent import active_content
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from email_sync.engine.budget import SECONDS, Budget
from email_sync.engine.htmltext import html_to_text
from email_sync.engine.parse import parse_message
from email_sync.engine.sanitize import safe_html_for_storage, sanitize_email_html

EXAMPLES = int(os.environ.get("EMAIL_SYNC_FUZZ_EXAMPLES") or 150)
FUZZ = settings(
	max_examples=EXAMPLES,
	derandomize=True,  # the same examples on every run: a failure here is a failure everywhere
	deadline=None,  # time is asserted against the budget below, not per example by Hypothesis
	database=None,
	suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def timed(function, *args):
	start = time.perf_counter()
	result = function(*args)
	elapsed = time.perf_counter() - start
	assert elapsed < SECONDS, f"{function.__name__} took {elapsed:.2f} s"
	return result


# A grammar of HTML-ish pieces: real and hostile tag names, attributes with every kind of quoting (and
# none), URLs with hostile schemes, entities, comments, and the stray brackets and quotes between them.
TAGS = (
	"a b p div span img table tr td br hr ul li ol pre blockquote font center style script title textarea "
	"svg math iframe noscript template xmp plaintext object embed form button select option base meta link "
	"body html head frameset input isindex details video image o:p mi mglyph annotation-xml foreignObject"
).split()
ATTRIBUTES = (
	"href src style title alt width cite data-remote-src onclick onerror onload xlink:href srcset action "
	"formaction background poster dynsrc lowsrc srcdoc data codebase class id type start"
).split()
VALUES = [
	"https://example.com/a?b=1&c=2",
	"//tracker.example/p.gif",
	"javascript:alert(1)",
	"&#106;avascript:alert(1)",
	"jav&#x09;ascript:alert(1)",
	"java\x00script:alert(1)",
	" JAVASCRIPT:alert(1)",
	"vbscript:msgbox(1)",
	"data:text/html,<script>alert(1)</script>",
	"data:image/png;base64,iVBORw0KGgo=",
	"data:image/svg+xml,<svg onload=alert(1)>",
	"cid:part@x",
	"mailto:a@b.example",
	"#top",
	"color: red; background: url(https://t.example/x)",
	"width: expression(alert(1))",
	"color: \\72 ed",
	"color: red !important",
	"</style><script>alert(1)</script>",
	"\"><img src=x onerror=alert(1)>",
	"x`y",
	"",
]
ATTRIBUTE = st.builds(
	lambda sep, name, eq, quote, value: f"{sep}{name}{eq}{quote}{value}{quote}" if eq else f"{sep}{name}",
	st.sampled_from([" ", " ", " ", "  ", "\n", "/", ""]),
	st.sampled_from(ATTRIBUTES),
	st.sampled_from(["=", "=", "=", " = ", ""]),
	st.sampled_from(['"', '"', "'", "", "`"]),
	st.sampled_from(VALUES),
)
TAG = st.builds(
	lambda close, tag, attributes, slash, end: f"<{close}{tag}{attributes}{slash}{end}",
	st.sampled_from(["", "", "", "/"]),
	st.sampled_from(TAGS).flatmap(lambda tag: st.sampled_from([tag, tag.upper()])),
	st.lists(ATTRIBUTE, min_size=1, max_size=4).map("".join),
	st.sampled_from(["", "", "", "/", " /"]),
	st.sampled_from([">", ">", ">", ""]),
)
PIECES = st.one_of(
	TAG,  # tags weigh most: they are where anything active would be
	TAG,
	TAG,
	st.sampled_from(["<", ">", "/", "=", '"', "'", "`", " ", "\n", "\t", "\x00", "&", ";", "-", "!", "?"]),
	st.sampled_from(["<!--", "-->", "--!>", "<!-->", "<![CDATA[", "]]>", "<!DOCTYPE x>", "<?xml?>", "</>"]),
	st.sampled_from(["&amp;", "&lt;", "&gt;", "&quot;", "&#60;", "&#x3C;", "&#0;", "&#x110000;", "&copy"]),
	st.text(alphabet="abc xyz<>&;#=\"'/\u00e9\u200b", max_size=12),
)
HTML_SOUP = st.lists(PIECES, min_size=1, max_size=60).map("".join)


def check_sanitised(html: str) -> None:
	safe, remote = timed(sanitize_email_html, html)
	assert active_content(safe) == [], (html, safe)
	assert sanitize_email_html(safe) == (safe, remote), "sanitising the output again changed it"


@FUZZ
@given(HTML_SOUP)
def test_html_soup(html):
	check_sanitised(html)
	assert isinstance(timed(html_to_text, html), str)
	stored, _ = safe_html_for_storage(html, "text", [], Budget())
	assert active_content(stored) == []


@FUZZ
@given(st.text(max_size=400))
def test_any_text(text):
	check_sanitised(text)
	assert isinstance(timed(html_to_text, text), str)


# MIME-ish messages: real header shapes with hostile values, every transfer encoding (some broken),
# wrong and unknown charsets, nesting, missing boundaries, and bodies drawn from the HTML grammar.
HEADER_LINES = [
	"From: Ana <ana@acme.example>",
	"From: =?utf-8?B?QW5h?= <ana@acme.example>",
	"From: =?x-unknown?Q?=FF=FE?= <a@b>",
	"From: <<<>>>",
	"From:",
	"To: a@b.example, =?utf-8?Q?B=C3=B6b?= <bob@b.example>",
	"Subject: =?utf-8?B?8J+YgA==?= hello",
	"Subject: =?iso-8859-1?q?caf=E9?=",
	"Subject: =?utf-8?B?broken",
	"Subject: \xe9t\xe9 8-bit",
	"Message-ID: <a@b.example>",
	"Message-ID: no brackets@here",
	"In-Reply-To: <x@y> <z@w>",
	"References: " + " ".join(f"<r{i}@x>" for i in range(50)),
	"Date: Mon, 23 Nov 2026 15:30:00 -0500",
	"Date: not a date",
	"Date: Mon, 99 Foo 99999 99:99:99 +9999",
	"Auto-Submitted: auto-replied",
	"Content-Disposition: inline",
	"Content-Disposition: attachment; filename*=utf-8''%E2%82%AC.pdf",
	" folded continuation",
	"X-Header-Without-Value",
	"no colon at all",
]
CHARSETS = ["utf-8", "iso-8859-1", "windows-1252", "koi8-r", "shift_jis", "utf-7", "x-bogus", "", '"utf-8"']
ENCODINGS = ["7bit", "8bit", "base64", "quoted-printable", "x-uuencode", "binary", "bogus"]


@st.composite
def mime_messages(draw, depth=0):
	headers = draw(st.lists(st.sampled_from(HEADER_LINES), max_size=8))
	if depth < 2 and draw(st.integers(0, 3)) == 0:
		boundary = draw(st.sampled_from(["b1", "=_b", "", "a" * 80]))
		subtype = draw(st.sampled_from(["alternative", "mixed", "related", "digest"]))
		parts = draw(st.lists(mime_messages(depth + 1), max_size=3))
		body = b"".join(b"--" + boundary.encode() + b"\r\n" + part + b"\r\n" for part in parts)
		if draw(st.booleans()):
			body += b"--" + boundary.encode() + b"--\r\n"
		content_type = f'Content-Type: multipart/{subtype}; boundary="{boundary}"'
		return _message(headers + [content_type], body)
	subtype = draw(st.sampled_from(["html", "html", "plain", "rfc822", "octet-stream"]))
	charset = draw(st.sampled_from(CHARSETS))
	encoding = draw(st.sampled_from(ENCODINGS))
	text = draw(HTML_SOUP) if subtype == "html" else draw(st.text(max_size=80))
	data = text.encode(charset if charset in ("utf-8", "iso-8859-1", "koi8-r") else "utf-8", "replace")
	if draw(st.booleans()):
		data += draw(st.binary(max_size=20))
	if encoding == "base64":
		data = base64.encodebytes(data)
		if draw(st.booleans()):
			data = data[: len(data) // 2] + b"!!"  # broken padding and alphabet
	elif encoding == "quoted-printable":
		data = quopri.encodestring(data) + draw(st.sampled_from([b"", b"=", b"=Z", b"=\r\n"]))
	content_type = {
		"html": "Content-Type: text/html",
		"plain": "Content-Type: text/plain",
		"rfc822": "Content-Type: message/rfc822",
		"octet-stream": "Content-Type: application/octet-stream; name=x.bin",
	}[subtype]
	if charset:
		content_type += f"; charset={charset}"
	return _message(headers + [content_type, f"Content-Transfer-Encoding: {encoding}"], data)


def _message(headers: list[str], body: bytes) -> bytes:
	head = "\r\n".join(headers).encode("utf-8", "surrogateescape")
	return head + b"\r\n\r\n" + body


@FUZZ
@given(mime_messages())
def test_mime_like_messages(raw):
	message = timed(parse_message, raw)
	assert isinstance(message.text, str) and isinstance(message.html, str)
	if message.html:
		check_sanitised(message.html)


@FUZZ
@given(st.binary(max_size=2000))
def test_random_bytes(raw):
	message = timed(parse_message, raw)
	assert message.key
