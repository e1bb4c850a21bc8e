"""The MIME tree of a message into its text and HTML views and its attachments.

Sibling text and HTML parts that are not alternatives are both shown, in order; inside
multipart/alternative each view takes its own best alternative. Every part that is not the body is kept,
bytes included, as an attachment. Parts the stdlib parser misses are looked for: a multipart whose
boundary is folded or missing, parts sent after an early closing boundary; transfer encodings are undone
as senders write their names.
"""

from __future__ import annotations

import base64
import binascii
import email
import email.policy
import itertools
import re
from dataclasses import replace
from email.message import Message as EmailMessage
from html import escape
from urllib.parse import unquote

from email_sync.engine.attachments import raw_filename, safe_filename
from email_sync.engine.charsets import DETECT_SAMPLE, DecodeContext, decode_bytes, is_utf8
from email_sync.engine.headers import decode_words, part_charset, raw_header, undo_surrogates
from email_sync.engine.model import Attachment, Message

MAX_HTML_FOR_TEXT = 300 * 1024  # larger HTML bodies are cut (after a tag) before conversion to text
MAX_RECOVERIES = 4  # epilogues read for parts sent after the closing boundary, per message

# Parts that embed a message of their own: kept whole as a forwarded .eml.
FORWARDED_TYPES = frozenset({"message/rfc822", "message/global", "message/news"})
# Reports about a message, not a message: a bounce's status, a read receipt, the original's headers. They
# are kept as text attachments; a bounce's returned message/rfc822 stays a forwarded message.
REPORT_TYPES = {
	"message/delivery-status": "delivery-status.txt",
	"message/global-delivery-status": "delivery-status.txt",
	"message/disposition-notification": "disposition-notification.txt",
	"message/global-disposition-notification": "disposition-notification.txt",
	"message/feedback-report": "feedback-report.txt",
	"text/rfc822-headers": "original-headers.txt",
	"message/global-headers": "original-headers.txt",
}
_AS_WRITTEN = email.policy.compat32.clone(max_line_length=None)  # re-serialise without refolding
# Transfer encodings by their name with spaces, hyphens and underscores taken out; what the stdlib decodes.
_ENCODINGS = {
	"quotedprintable": "quoted-printable", "base64": "base64", "xuuencode": "x-uuencode",
	"uuencode": "x-uuencode", "xuue": "x-uuencode", "uue": "x-uuencode",
}  # fmt: skip
_DECODED = frozenset({"quoted-printable", "base64", "x-uuencode", "uuencode", "uue", "x-uue"})
_NOT_IN_ENCODING = re.compile(r"[\s_-]+")
_CID = re.compile(r"cid:([^\s\"'<>)]+)", re.I)
_WORD = re.compile(r"\w+")
_LINE_BREAK = re.compile(r"\r?\n")
_META_CHARSET = re.compile(rb"<meta[^>]{0,300}?charset\s*=\s*[\"']?([A-Za-z0-9_.:-]{1,40})", re.I)
# A separator line followed by a part's header: what a multipart that lost its boundary parameter shows.
_GUESSED_BOUNDARY = re.compile(r"^--([^\s]{1,200})[ \t]*\r?\n(?=content-)", re.M | re.I)


class _Block:
	"""One body part in reading order, converted to the other view (HTML to text, text to HTML) on demand."""

	__slots__ = ("is_html", "body", "_text", "_words")

	def __init__(self, is_html: bool, body: str):
		self.is_html = is_html
		self.body = body
		self._text: str | None = None
		self._words: tuple[int, set[str]] | None = None

	def text(self, defects: list[str]) -> str:
		if self._text is None:
			self._text = html_to_text(self.body, defects) if self.is_html else self.body
		return self._text

	def words(self, defects: list[str]) -> tuple[int, set[str]]:
		if self._words is None:
			found = _WORD.findall(self.text(defects)[:50_000].lower())
			self._words = (len(found), set(found))
		return self._words


_Views = tuple[list[_Block], list[_Block]]  # (what the text view shows, what the HTML view shows)


def read_body(msg: EmailMessage, message: Message, context: DecodeContext) -> None:
	"""The text and HTML views of the body, and every other part as an attachment.

	Sibling text and HTML parts that are not alternatives (a text body then an HTML signature, an HTML
	body then a text footer) are both shown, in order, in both views; inside multipart/alternative each
	view takes its own best alternative, looking into related or mixed alternatives."""
	text_view, html_view = _walk(msg, message, context, 0)
	message.text = _text_view(text_view, context.defects)
	message.html = _html_view(html_view, context.defects)
	if message.html and any(a.content_id and not a.inline for a in message.attachments):
		_mark_inline(message)


def message_samples(msg: EmailMessage) -> tuple[bytes, bytes]:
	"""(every 8-bit header value and the first 8-bit text part that is not UTF-8, the header values
	alone): a short subject's bytes are rarely enough for a detector, but a mislabelled message is
	usually mislabelled throughout - unless a filter wrapped it in a report of its own charset."""
	headers: list[bytes] = []
	body = b""
	try:
		for _, value in msg.raw_items():
			value = str(value)
			if not value.isascii():
				headers.append(value.encode("utf-8", "surrogateescape"))
		for part in itertools.islice(msg.walk(), 100):
			if part.get_content_maintype() == "text" and not part.is_multipart():
				data = _payload(part)[:DETECT_SAMPLE]
				if not data.isascii() and not is_utf8(data):
					body = data
					break
	except Exception:
		pass
	header_sample = b"\n".join(headers)[:DETECT_SAMPLE]
	return b"\n".join(c for c in (header_sample, body) if c)[:DETECT_SAMPLE], header_sample


def _walk(part: EmailMessage, message: Message, context: DecodeContext, depth: int) -> _Views:
	if depth > 50:
		context.defects.append("MIME nesting deeper than 50 levels: the rest is ignored")
		return [], []
	ctype = part.get_content_type()
	try:
		if part.get_content_maintype() != "multipart":
			return _read_leaf(part, ctype, message, context)
		payload = part.get_payload()
		if not isinstance(payload, list):
			return _without_boundary(part, payload, message, context, depth)
		subs = [sub for sub in payload if isinstance(sub, EmailMessage)] + _after_close(part, context)
		children = [_walk(sub, message, context, depth + 1) for sub in subs]
	except RecursionError:
		context.defects.append("MIME nesting too deep: the rest is ignored")
		return [], []
	except Exception as e:  # one bad part must not cost the rest of the message
		context.defects.append(f"unreadable part {ctype}: {e}")
		return [], []
	if ctype == "multipart/alternative":
		return _best(children, 0, False), _best(children, 1, True)
	return [b for c in children for b in c[0]], [b for c in children for b in c[1]]


def _after_close(part: EmailMessage, context: DecodeContext) -> list[EmailMessage]:
	"""Parts sent after the closing delimiter, by a sender that closed too early or nested a multipart under
	its parent's boundary: a delimiter line then a header line in the epilogue. Read a few times a message
	at most, so crafted nesting cannot make the message be parsed again and again."""
	epilogue = part.epilogue
	if not isinstance(epilogue, str) or "--" not in epilogue or context.recoveries >= MAX_RECOVERIES:
		return []
	boundary = _unfolded_boundary(part)
	if not boundary:
		return []
	found = re.search(f"^--{re.escape(boundary)}[ \t]*\r?\n(?=[\x21-\x39\x3b-\x7e]+:)", epilogue, re.M)
	if not found:
		return []
	context.recoveries += 1
	head = f'Content-Type: multipart/mixed; boundary="{boundary}"\n\n'
	inner = email.message_from_bytes(
		(head + epilogue[found.start() :]).encode("utf-8", "surrogateescape"), policy=email.policy.compat32
	)
	payload = inner.get_payload()
	if not isinstance(payload, list):
		return []
	context.defects.append("parts after the closing boundary read too")
	return [sub for sub in payload if isinstance(sub, EmailMessage)]


def _best(children: list[_Views], view: int, html: bool) -> list[_Block]:
	"""The last alternative with the kind this view wants (senders put the best last), else the last
	alternative with anything in it."""
	wanted = fallback = None
	for child in children:
		blocks = child[view]
		if any(b.is_html == html and b.body.strip() for b in blocks):
			wanted = blocks
		if any(b.body.strip() for b in blocks):
			fallback = blocks
	return wanted if wanted is not None else (fallback or [])


def _without_boundary(
	part: EmailMessage, payload, message: Message, context: DecodeContext, depth: int
) -> _Views:
	"""A multipart whose parts the stdlib did not find: by its boundary unfolded (a parameter folded across
	lines keeps the line break for the stdlib), else by a separator line, else it is read as text, its
	transfer encoding undone."""
	text = payload if isinstance(payload, str) else ""
	head_of_text = text[:65536]
	candidates = []
	declared = _unfolded_boundary(part)
	if declared and f"--{declared}" in head_of_text:
		candidates.append(declared)
	guessed = _GUESSED_BOUNDARY.search(head_of_text)
	if guessed and guessed.group(1) not in candidates:
		candidates.append(guessed.group(1))
	for boundary in candidates:
		head = f'Content-Type: {part.get_content_type()}; boundary="{boundary}"\n\n'
		inner = email.message_from_bytes(
			(head + text).encode("utf-8", "surrogateescape"), policy=email.policy.compat32
		)
		if isinstance(inner.get_payload(), list):
			found = "its boundary unfolded" if boundary == declared else "their separator"
			context.defects.append(f"multipart without boundary: parts found by {found}")
			return _walk(inner, message, context, depth + 1)
	if not text.strip():
		return [], []
	context.defects.append("multipart without parts: read as text")
	data = _payload(part)
	block = _Block(False, decode_bytes(data, context.hint, context.defects, "body", context))
	return [block], [block]


def _unfolded_boundary(part: EmailMessage) -> str:
	try:
		boundary = part.get_boundary() or ""
	except Exception:
		return ""
	boundary = _LINE_BREAK.sub("", boundary).rstrip()
	return boundary if 0 < len(boundary) <= 200 and '"' not in boundary and "\\" not in boundary else ""


def _read_leaf(part: EmailMessage, ctype: str, message: Message, context: DecodeContext) -> _Views:
	if ctype in FORWARDED_TYPES or (
		part.get_content_maintype() == "message"
		and part.is_multipart()
		and ctype not in REPORT_TYPES
		and ctype not in ("message/partial", "message/external-body")
	):
		message.attachments.append(_forwarded(part, ctype, context))
		return [], []
	if ctype in REPORT_TYPES:
		content = _content(part)
		message.attachments.append(Attachment(REPORT_TYPES[ctype], ctype, len(content), content=content))
		return [], []
	disposition = raw_header(part, "content-disposition").split(";")[0].strip().lower()
	filename = _filename(part, context)
	if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
		data = _payload(part)
		charset = part_charset(part) or (_meta_charset(data) if ctype == "text/html" else "")
		text = decode_bytes(data, charset, context.defects, "body", context)
		block = _Block(ctype == "text/html", text)
		return [block], [block]
	content = _content(part)
	message.attachments.append(
		Attachment(
			filename=safe_filename(filename, ctype),
			content_type=ctype,
			size=len(content),
			content_id=_content_id(part),
			inline=disposition == "inline",
			original_filename=filename,
			content=content,
		)
	)
	return [], []


def _meta_charset(html: bytes) -> str:
	"""The charset an HTML body names in its own <meta> when the MIME header names none."""
	found = _META_CHARSET.search(html[:4096])
	return found.group(1).decode("ascii").lower() if found else ""


def _forwarded(part: EmailMessage, ctype: str, context: DecodeContext) -> Attachment:
	"""A message/rfc822 part: its message's bytes, named after its subject."""
	payload = part.get_payload()
	inner = payload[0] if isinstance(payload, list) and payload else None
	content = b""
	if isinstance(inner, EmailMessage):
		try:
			content = inner.as_bytes(policy=_AS_WRITTEN)
		except Exception as e:
			context.defects.append(f"forwarded message could not be copied: {e}")
	encoding = _transfer_encoding(part)
	if content and encoding in ("base64", "quoted-printable"):  # not allowed, but sent: undo it
		try:
			content = base64.b64decode(content) if encoding == "base64" else binascii.a2b_qp(content)
			inner = email.message_from_bytes(content[: 256 * 1024], policy=email.policy.compat32)
		except (binascii.Error, ValueError) as e:
			context.defects.append(f"forwarded message could not be decoded: {e}")
	subject = ""
	if isinstance(inner, EmailMessage):
		subject = decode_words(undo_surrogates(raw_header(inner, "subject"), context.hint), context.hint)
	name = _filename(part, context) or f"{subject or 'forwarded message'}.eml"
	return Attachment(
		safe_filename(name, "message/rfc822"),
		ctype,
		len(content),
		is_forwarded_message=True,
		original_filename=name,
		content=content,
	)


def _content(part: EmailMessage) -> bytes:
	if part.is_multipart():  # a report's blocks of fields, or a message/partial
		payload = part.get_payload()
		return b"".join(p.as_bytes(policy=_AS_WRITTEN) for p in payload if isinstance(p, EmailMessage))
	return _payload(part)


def _payload(part: EmailMessage) -> bytes:
	"""A leaf part's bytes with its transfer encoding undone, as the sender meant the encoding (see
	_transfer_encoding); the stdlib only knows the exact names."""
	encoding = _transfer_encoding(part)
	as_read = str(part.get("content-transfer-encoding", "")).lower()
	if as_read == encoding or (not encoding and as_read not in _DECODED):
		return part.get_payload(decode=True) or b""
	stand_in = EmailMessage()
	stand_in["Content-Transfer-Encoding"] = encoding or "8bit"
	stand_in.set_payload(part.get_payload())
	return stand_in.get_payload(decode=True) or b""


def _transfer_encoding(part: EmailMessage) -> str:
	"""quoted-printable, base64, x-uuencode or "" (nothing to undo) from a Content-Transfer-Encoding as
	written: with spaces, tabs or line breaks around it, a ';' or a comment after it, or as
	"quoted printable"."""
	value = raw_header(part, "content-transfer-encoding").lower().split(";")[0].split("(")[0]
	return _ENCODINGS.get(_NOT_IN_ENCODING.sub("", value), "")


def _content_id(part: EmailMessage) -> str:
	return undo_surrogates(raw_header(part, "content-id"), "").strip().strip("<>").strip()


def _filename(part: EmailMessage, context: DecodeContext) -> str:
	"""The attachment's name as its sender wrote it: RFC 2231 in its declared charset, RFC 2047 words,
	raw 8-bit bytes as UTF-8, else the part's (or message's) charset, else what the detector says."""
	data, charset = raw_filename(raw_header(part, "content-disposition"), raw_header(part, "content-type"))
	if not data:
		return ""
	hint = part_charset(part) or context.hint
	if charset:
		name = decode_bytes(data, charset, context.defects, "filename", context)
	elif is_utf8(data):
		name = data.decode("utf-8")
	else:
		name = decode_bytes(data, hint, context.defects, "filename", context)
	if "=?" in name or "\x1b" in name:
		name = decode_words(name, hint, context.defects, "filename", context)
	return _LINE_BREAK.sub("", name).strip()  # unfolded, otherwise exactly as sent


def _text_view(blocks: list[_Block], defects: list[str]) -> str:
	has_text = any(not b.is_html and b.body.strip() for b in blocks)
	parts = [
		b.text(defects) for b in blocks if not (b.is_html and has_text and _repeats(b, blocks, defects))
	]
	return "\n\n".join(t.strip() for t in parts if t.strip())


def _html_view(blocks: list[_Block], defects: list[str]) -> str:
	if not any(b.is_html for b in blocks):
		return ""  # a text-only message has no HTML view; the desk renders its text
	parts = []
	for b in blocks:
		if b.is_html:
			parts.append(b.body)
		elif b.body.strip() and not _repeats(b, blocks, defects):
			parts.append(f'<div style="white-space: pre-wrap">{escape(b.body.strip())}</div>')
	return "\n".join(parts)


def _repeats(block: _Block, blocks: list[_Block], defects: list[str]) -> bool:
	"""True when a part of the other kind says the same (a mixed message whose text and HTML are in fact
	alternatives): similar length, and nearly every word of the shorter found in the longer."""
	if len(blocks) > 20:
		return False
	count, words = block.words(defects)
	for other in blocks:
		if other.is_html == block.is_html:
			continue
		other_count, other_words = other.words(defects)
		if not count or not other_count or min(count, other_count) * 2 < max(count, other_count):
			continue
		small, large = sorted((words, other_words), key=len)
		if len(small & large) >= 0.85 * len(small):
			return True
	return False


def _mark_inline(message: Message) -> None:
	"""Parts the HTML shows through cid: links are inline whatever their disposition says."""
	links = itertools.islice(_CID.finditer(message.html), 1000)
	cids = {unquote(m.group(1)).strip("<>").lower() for m in links}
	message.attachments = [
		replace(a, inline=True) if a.content_id and a.content_id.lower() in cids else a
		for a in message.attachments
	]


def html_to_text(html: str, defects: list[str] | None = None) -> str:
	"""Plain text of an HTML body. Never raises, never stalls: the HTML is cut to MAX_HTML_FOR_TEXT and
	converted within a one-second budget, after which a rough tag strip stands in (each noted in defects)."""
	from email_sync.engine import htmltext
	from email_sync.engine.budget import Budget, BudgetExceeded

	budget = Budget(max_html=MAX_HTML_FOR_TEXT)
	html = budget.cut(html or "", defects)
	try:
		return htmltext.html_to_text(html, budget)
	except BudgetExceeded as e:
		problem = f"HTML converted to text roughly: converting it {e}"
	except Exception as e:  # the converter raises nothing else; the message must not depend on that
		problem = f"HTML could not be converted to text: {e}"
	if defects is not None:
		defects.append(problem)
	return htmltext.strip_tags(html)
