"""Raw RFC 822 bytes into a Message. Never raises: what cannot be read becomes a recorded defect.

Headers are read with the compat32 policy and decoded here, because the default policy's lazy header
objects both cost more and raise on malformed input at the moment a field is touched.
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re
from datetime import timezone
from email.header import decode_header
from email.message import Message as EmailMessage
from email.utils import getaddresses, parsedate_to_datetime

from email_sync.engine.autosubmit import detect_auto_submitted
from email_sync.engine.model import Address, Attachment, Message

MAX_HTML_FOR_TEXT = 300 * 1024  # larger HTML bodies are cut (after a tag) before conversion to text
RULE_HEADERS = (
	"auto-submitted",
	"precedence",
	"list-id",
	"list-unsubscribe",
	"x-autoreply",
	"x-autorespond",
	"x-auto-response-suppress",
	"return-path",
	"x-failed-recipients",
	"content-type",
)
_MSGID = re.compile(r"<([^<>\s]+)>")


def parse_message(raw: bytes) -> Message:
	"""Read one message. Every problem found is listed in `defects`; `unreadable` is set if nothing was."""
	size = len(raw or b"")
	if not raw or not raw.strip():
		return Message(key=_hash(b"empty:" + (raw or b"")), size=size, unreadable="The message is empty.")
	try:
		msg = email.message_from_bytes(raw, policy=email.policy.compat32)
	except Exception as e:  # the stdlib parser is lenient; this guards against the unforeseen
		return Message(key=_hash(raw), size=size, unreadable=f"The message could not be parsed: {e}")

	defects: list[str] = [_describe(d) for d in getattr(msg, "defects", [])]
	if not msg.keys():
		return Message(key=_hash(raw), size=size, unreadable="The message has no headers.", defects=defects)

	charset_hint = _first_charset(msg)
	header = _HeaderReader(msg, charset_hint, defects)

	message = Message(key="", size=size, defects=defects)
	message.subject = header.text("Subject")
	message.message_id = _first_id(header.raw("Message-ID"))
	message.in_reply_to = _first_id(header.raw("In-Reply-To"))
	message.references = _all_ids(header.raw("References"))
	message.sender = _first(header.addresses("From")) or _first(header.addresses("Sender"))
	message.reply_to = header.addresses("Reply-To")
	message.to = header.addresses("To")
	message.cc = header.addresses("Cc")
	message.bcc = header.addresses("Bcc")
	message.date = _parse_date(header.raw("Date"), defects)
	message.headers = {name: header.text(name) for name in RULE_HEADERS if name in header.values}

	for name, what in (("From", message.sender), ("Message-ID", message.message_id), ("Date", message.date)):
		if not what:
			defects.append(f"missing {name} header")

	_read_body(msg, message, defects)
	message.auto = detect_auto_submitted(message)
	message.key = identity(message, raw)
	return message


def identity(message: Message, raw: bytes) -> str:
	"""The key that makes one mail one record, whichever mailbox or folder it is read from.

	Message-ID when there is one; otherwise a hash of what a copy in another mailbox keeps unchanged
	(never the raw bytes, whose Received headers differ from one mailbox to the next).
	"""
	if message.message_id:
		return _hash(b"mid:" + message.message_id.encode("utf-8", "surrogatepass"))
	parts = [
		message.sender.email if message.sender else "",
		",".join(sorted(a.email for a in message.recipients)),
		message.date.isoformat() if message.date else "",
		message.subject,
		" ".join(message.text.split())[:4000],
		",".join(f"{a.filename}:{a.size}" for a in message.attachments),
	]
	if not any(parts):
		return _hash(raw)
	return _hash("\x1f".join(parts).encode("utf-8", "surrogatepass"))


def _hash(data: bytes) -> str:
	return hashlib.sha256(data).hexdigest()[:40]


class _HeaderReader:
	"""Decodes headers whole: RFC 2047 words in any charset, and raw 8-bit bytes by the best guess."""

	def __init__(self, msg: EmailMessage, charset_hint: str, defects: list[str]):
		# raw_items() gives values as they came, 8-bit bytes as surrogate escapes; get() would wrap those
		# in a Header that renders them as replacement characters.
		self.values: dict[str, list[str]] = {}
		for name, value in msg.raw_items():
			self.values.setdefault(name.lower(), []).append(_undo_surrogates(str(value), charset_hint))
		self.charset_hint = charset_hint
		self.defects = defects

	def raw(self, name: str) -> str:
		values = self.values.get(name.lower())
		return values[0] if values else ""

	def text(self, name: str) -> str:
		return decode_words(self.raw(name), self.charset_hint, self.defects, name)

	def addresses(self, name: str) -> list[Address]:
		values = self.values.get(name.lower(), [])
		if not values:
			return []
		result: list[Address] = []
		seen: set[str] = set()
		for display, addr in getaddresses(values):
			addr = addr.strip().strip("<>").strip().lower()
			if "@" not in addr:
				if addr:
					self.defects.append(f"unreadable address in {name}: {addr[:80]}")
				continue
			if addr in seen:
				continue
			seen.add(addr)
			result.append(Address(addr, decode_words(display, self.charset_hint, self.defects, name).strip()))
		return result


def decode_words(value: str, charset_hint: str = "", defects: list[str] | None = None, name: str = "") -> str:
	"""Decode RFC 2047 encoded-words (any number, any charset) and unfold the header."""
	if not value:
		return ""
	value = re.sub(r"\r?\n[ \t]+", " ", value)
	if "=?" not in value:
		return value.strip()
	try:
		chunks = decode_header(value)
	except Exception:
		if defects is not None:
			defects.append(f"malformed encoded words in {name}")
		return value.strip()
	out: list[str] = []
	for data, charset in chunks:
		if isinstance(data, str):
			out.append(data)
			continue
		out.append(_decode_bytes(data, charset or charset_hint, defects, name))
	return re.sub(r"\s+", " ", "".join(out)).strip()


def _decode_bytes(data: bytes, charset: str | None, defects: list[str] | None = None, name: str = "") -> str:
	for candidate in _charset_candidates(charset):
		try:
			return data.decode(candidate)
		except (LookupError, UnicodeDecodeError):
			continue
	if defects is not None:
		defects.append(f"undecodable bytes in {name or 'body'} (charset {charset or 'unknown'})")
	return data.decode("utf-8", "replace")


def _charset_candidates(charset: str | None) -> list[str]:
	names = []
	if charset:
		charset = charset.strip().strip('"').lower()
		names.append({"unknown-8bit": "utf-8", "x-unknown": "utf-8", "ks_c_5601-1987": "cp949"}.get(charset, charset))
		if charset in ("iso-8859-1", "latin-1", "us-ascii", "ascii"):
			names.append("cp1252")  # mail labelled Latin-1 is very often Windows-1252
		if charset in ("gb2312", "gbk"):
			names.append("gb18030")
	names += ["utf-8", "cp1252"]
	return names


def _undo_surrogates(value: str, charset_hint: str) -> str:
	"""compat32 keeps raw 8-bit header bytes as surrogate escapes: decode them as UTF-8, else the hint."""
	if not any("\udc80" <= ch <= "\udcff" for ch in value):
		return value
	data = value.encode("ascii", "surrogateescape")
	return _decode_bytes(data, charset_hint or "utf-8")


def _first_charset(msg: EmailMessage) -> str:
	try:
		for charset in msg.get_charsets():
			if charset:
				return charset
	except Exception:
		pass
	return ""


def _first(addresses: list[Address]) -> Address | None:
	return addresses[0] if addresses else None


def _first_id(value: str) -> str:
	ids = _all_ids(value)
	return ids[0] if ids else ""


def _all_ids(value: str) -> list[str]:
	if not value:
		return []
	ids = _MSGID.findall(value)
	if not ids:  # some mailers omit the brackets
		ids = [v for v in value.split() if "@" in v]
	return list(dict.fromkeys(i.strip() for i in ids if i.strip()))


def _parse_date(value: str, defects: list[str]):
	if not value:
		return None
	try:
		parsed = parsedate_to_datetime(value)
	except Exception:
		parsed = None
	if parsed is None:
		defects.append(f"unreadable Date header: {value[:60]}")
		return None
	if parsed.tzinfo is not None:
		parsed = parsed.astimezone(timezone.utc).replace(tzinfo=None)
	return parsed


def _describe(defect) -> str:
	return re.sub(r"(?<!^)(?=[A-Z])", " ", type(defect).__name__).lower()


def _read_body(msg: EmailMessage, message: Message, defects: list[str]) -> None:
	texts: list[str] = []
	htmls: list[str] = []
	for part in _leaf_parts(msg, defects):
		try:
			_read_part(part, texts, htmls, message, defects)
		except Exception as e:  # one bad part must not cost the rest of the message
			defects.append(f"unreadable part {part.get_content_type()}: {e}")
	message.text = "\n\n".join(t.strip() for t in texts if t.strip())
	message.html = "\n".join(htmls)
	if not message.text and message.html:
		message.text = html_to_text(message.html, defects)


def _leaf_parts(msg: EmailMessage, defects: list[str], depth: int = 0):
	"""Walk the MIME tree, but stop at message/rfc822: a forwarded message is an attachment, not a body."""
	if depth > 50:
		defects.append("MIME nesting deeper than 50 levels: the rest is ignored")
		return
	if msg.is_multipart() and msg.get_content_maintype() == "multipart":
		payload = msg.get_payload()
		if not isinstance(payload, list):
			defects.append("multipart without parts")
			return
		for sub in payload:
			if isinstance(sub, EmailMessage):
				yield from _leaf_parts(sub, defects, depth + 1)
	else:
		yield msg


def _read_part(part: EmailMessage, texts: list[str], htmls: list[str], message: Message, defects: list[str]):
	ctype = part.get_content_type()
	disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
	filename = _filename(part, defects)
	if ctype == "message/rfc822" or (part.is_multipart() and ctype.startswith("message/")):
		message.attachments.append(
			Attachment(filename or _forwarded_name(part), ctype, _payload_size(part), is_forwarded_message=True)
		)
		return
	is_body_text = ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename
	if is_body_text:
		data = part.get_payload(decode=True) or b""
		text = _decode_bytes(data, part.get_content_charset(), defects, ctype)
		(texts if ctype == "text/plain" else htmls).append(text)
		return
	if ctype.startswith("multipart/"):
		return  # an empty multipart container
	message.attachments.append(
		Attachment(
			filename=filename or f"attachment.{ctype.split('/')[-1]}",
			content_type=ctype,
			size=_payload_size(part),
			content_id=(part.get("Content-ID") or "").strip().strip("<>"),
			inline=disposition == "inline",
		)
	)


def _filename(part: EmailMessage, defects: list[str]) -> str:
	try:
		name = part.get_filename() or ""
	except Exception:
		name = ""
	return decode_words(_undo_surrogates(str(name), "utf-8"), "utf-8", defects, "filename") if name else ""


def _forwarded_name(part: EmailMessage) -> str:
	payload = part.get_payload()
	inner = payload[0] if isinstance(payload, list) and payload else None
	subject = decode_words(str(inner.get("Subject", ""))) if isinstance(inner, EmailMessage) else ""
	return f"{subject or 'forwarded message'}.eml"


def _payload_size(part: EmailMessage) -> int:
	try:
		if part.is_multipart():
			return len(part.as_bytes())
		return len(part.get_payload(decode=True) or b"")
	except Exception:
		return 0


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
