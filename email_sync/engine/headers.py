"""Header fields as their senders meant them: a header block the stdlib parser would cut short repaired
before parsing, and values decoded whole - RFC 2047 words in any charset, raw 8-bit bytes as UTF-8 when
they are UTF-8, else by the message's charset checked for plausibility - into addresses, ids and a date.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import re
from datetime import timezone
from email.message import Message as EmailMessage
from email.utils import parsedate_to_datetime

from email_sync.engine.addresses import parse_address_list
from email_sync.engine.attachments import header_param
from email_sync.engine.charsets import DecodeContext, decode_bytes, is_utf8, without_escapes
from email_sync.engine.model import Address, Message

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


def read_headers(header: HeaderReader, message: Message) -> None:
	message.subject = header.text("Subject")
	message.message_id = _first_id(header.raw("Message-ID"))
	message.in_reply_to = _first_id(header.raw("In-Reply-To"))
	message.references = _all_ids(header.raw("References"))
	message.sender = _first(header.addresses("From")) or _first(header.addresses("Sender"))
	message.reply_to = header.addresses("Reply-To")
	message.to = header.addresses("To")
	message.cc = header.addresses("Cc")
	message.bcc = header.addresses("Bcc")
	message.date = _parse_date(header.raw("Date"), message.defects)
	message.headers = {name: header.text(name) for name in RULE_HEADERS if name in header.values}


class HeaderReader:
	"""Decodes headers whole, and only those asked for: RFC 2047 words in any charset, and raw 8-bit bytes
	as UTF-8 when they are UTF-8, else by the message's charset checked for plausibility."""

	def __init__(self, msg: EmailMessage, context: DecodeContext):
		# raw_items() gives values as they came, 8-bit bytes as surrogate escapes; get() would wrap those
		# in a Header that renders them as replacement characters.
		self.values: dict[str, list[str]] = {}
		for name, value in msg.raw_items():
			self.values.setdefault(name.lower(), []).append(str(value))
		self.context = context
		self.defects = context.defects
		self._decoded: dict[str, list[str]] = {}

	def all(self, name: str) -> list[str]:
		key = name.lower()
		if key not in self._decoded:
			raw = self.values.get(key, [])
			self._decoded[key] = [undo_surrogates(v, self.context.hint, name, self.context) for v in raw]
		return self._decoded[key]

	def raw(self, name: str) -> str:
		values = self.all(name)
		return values[0] if values else ""

	def text(self, name: str) -> str:
		return decode_words(self.raw(name), self.context.hint, self.defects, name, self.context)

	def addresses(self, name: str) -> list[Address]:
		"""Only addresses that are addresses: a header's leftovers are defects, never a contact."""
		result: list[Address] = []
		seen: set[str] = set()
		for value in self.all(name):
			found, unusable = parse_address_list(value)
			for bad in unusable:
				self.defects.append(f"unreadable address in {name}: {bad[:80]}")
			for display, addr in found:
				if addr in seen:
					continue
				seen.add(addr)
				display = decode_words(display, self.context.hint, self.defects, name, self.context)
				result.append(Address(addr, display.strip().strip('"').strip()))
		return result


# An RFC 2047 encoded word. Each part stops at a "?", so a failed match never rescans much: linear.
_ENCODED_WORD = re.compile(r"=\?([^?\s]+)\?([bBqQ])\?([^?]*)\?=")
_FOLDING = re.compile(r"\r?\n[ \t]+")
_WHITESPACE = re.compile(r"\s+")


def decode_words(
	value: str,
	charset_hint: str = "",
	defects: list[str] | None = None,
	name: str = "",
	context: DecodeContext | None = None,
) -> str:
	"""Decode RFC 2047 encoded-words (any number, any charset) and unfold the header.

	Adjacent words in one charset are joined before decoding, since senders split multi-byte characters
	across them; raw ISO-2022-JP (escape sequences, no encoded words) is decoded too."""
	if not value:
		return ""
	value = _FOLDING.sub(" ", without_escapes(value))
	if "=?" not in value:
		return value.strip()
	out: list[str] = []
	pending: list[bytes] = []
	pending_charset = ""
	pos = 0
	after_word = False

	def flush():
		if pending:
			data = b"".join(pending)
			out.append(decode_bytes(data, pending_charset or charset_hint, defects, name, context))
			pending.clear()

	for match in _ENCODED_WORD.finditer(value):
		between = value[pos : match.start()]
		pos = match.end()
		if not (after_word and not between.strip()):  # only whitespace between two words is dropped
			flush()
			out.append(between)
		charset = match.group(1).split("*", 1)[0].lower()  # RFC 2231 adds *language
		data = _word_bytes(match.group(2), match.group(3))
		if data is None:
			flush()
			out.append(match.group())
			after_word = False
			if defects is not None:
				defects.append(f"malformed encoded words in {name}")
			continue
		if pending and charset != pending_charset:
			flush()
		pending_charset = charset
		pending.append(data)
		after_word = True
	flush()
	out.append(value[pos:])
	return _WHITESPACE.sub(" ", "".join(out)).strip()


def _word_bytes(encoding: str, text: str) -> bytes | None:
	try:
		if encoding in "bB":
			text = "".join(text.split())
			if len(text) % 4 == 1:  # a stray character; the rest still decodes
				text = text[:-1]
			return base64.b64decode(text + "=" * (-len(text) % 4))
		return binascii.a2b_qp(text.encode("utf-8", "surrogateescape"), header=True)
	except (binascii.Error, ValueError):
		return None


def undo_surrogates(
	value: str, charset_hint: str, name: str = "", context: DecodeContext | None = None
) -> str:
	"""compat32 keeps raw 8-bit header bytes as surrogate escapes: decode them as UTF-8 when they are,
	else by the message's charset (checked, like a body)."""
	if value.isascii() and "\x1b" not in value:
		return value
	data = value.encode("utf-8", "surrogateescape")
	if is_utf8(data) and b"\x1b" not in data:
		return data.decode("utf-8")
	defects = context.defects if context is not None else None
	return decode_bytes(data, charset_hint or "", defects, name, context)


def first_charset(msg: EmailMessage) -> str:
	try:
		for part in itertools.islice(msg.walk(), 200):
			charset = part_charset(part)
			if charset:
				return charset
	except Exception:
		pass
	return ""


def part_charset(part: EmailMessage) -> str:
	try:
		return part.get_content_charset() or ""
	except Exception:  # 8-bit bytes in the header: read the parameter from the raw value
		return header_param(raw_header(part, "content-type"), "charset")[0].decode("ascii", "ignore").lower()


def raw_header(part: EmailMessage, name: str) -> str:
	name = name.lower()
	for key, value in part.raw_items():
		if key.lower() == name:
			return str(value)
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


# Header block repair. A line the stdlib parser takes for a header (or a continuation) - any other line
# ends the headers for it, and everything after becomes body.
_HEADER_START = re.compile(rb"From |[\x21-\x39\x3b-\x7e]*:|[\t ]")
_HEADER_NAME = re.compile(rb"([\x21-\x39\x3b-\x7e]+)[\t ]*:")
_OBSOLETE_FIELD = re.compile(rb"[\x21-\x39\x3b-\x7e]+[\t ]+:")  # RFC 5322 4.5.3: space before the colon
KNOWN_HEADERS = frozenset(
	b"""from to cc bcc subject date message-id in-reply-to references reply-to sender return-path received
	mime-version content-type content-transfer-encoding content-disposition delivered-to user-agent x-mailer
	list-id list-unsubscribe precedence auto-submitted dkim-signature authentication-results thread-topic
	thread-index importance x-priority x-original-to envelope-to""".split()
)
MAX_JUNK_LINES = 5
MAX_JUNK_BYTES = 1024
MAX_HEADER_BLOCK = 1024 * 1024
_BOM = b"\xef\xbb\xbf"


def repair_header_block(raw: bytes, defects: list[str]) -> bytes:
	"""The message with the headers the stdlib parser would lose made readable, in linear time:
	- junk before the headers (a byte order mark, blank lines, an mbox "From " line after them,
	  "---- Original message ----"): at most 5 lines and 1 KB are skipped, and only when a known header
	  follows;
	- header names with spaces before the colon (the obsolete "Subject : ..." syntax): the spaces go;
	- lines inside the header block that are neither a header nor indented (spam filters' reports do
	  this): folded into the header before them, but only those followed by a known header, so a
	  message whose body starts without a blank line keeps its body.
	Each repair is noted in `defects`; mail that needs none is returned as it is, uncopied."""
	start = _junk_before_headers(raw)
	if start:
		skipped = raw[:start]
		lines = skipped.count(b"\n")
		what = "a byte order mark" if skipped == _BOM else f"{lines} line{'s' if lines != 1 else ''}"
		defects.append(f"skipped {what} before the headers")
	end = _header_block_end(raw, start)
	if end - start > MAX_HEADER_BLOCK:
		return raw[start:] if start else raw
	lines = raw[start:end].split(b"\n")
	obsolete = [i for i, line in enumerate(lines) if _OBSOLETE_FIELD.match(line)]
	for i in obsolete:
		name, _, rest = lines[i].partition(b":")
		lines[i] = name.rstrip(b"\t ") + b":" + rest
	if obsolete:
		names = "1 header name" if len(obsolete) == 1 else f"{len(obsolete)} header names"
		defects.append(f"{names} with space before the colon read as headers")
	bad = [i for i, line in enumerate(lines) if not _HEADER_START.match(line)]
	if bad:
		last_known = max((i for i, line in enumerate(lines) if _known(line)), default=-1)
		folded = [i for i in bad if 0 < i < last_known]
		if folded:
			for i in folded:
				lines[i] = b" " + lines[i]
			count = "1 unindented line" if len(folded) == 1 else f"{len(folded)} unindented lines"
			defects.append(f"{count} in the header block read as continuations")
			return b"\n".join(lines) + raw[end:]
	if obsolete:
		return b"\n".join(lines) + raw[end:]
	return raw[start:] if start else raw


def _junk_before_headers(raw: bytes) -> int:
	pos = len(_BOM) if raw.startswith(_BOM) else 0
	first = _line_at(raw, pos)
	if _HEADER_NAME.match(first) or (pos == 0 and first.startswith(b"From ")):
		return pos  # the stdlib parser reads an mbox "From " line in first place itself
	for _ in range(MAX_JUNK_LINES):
		line = _line_at(raw, pos)
		if _HEADER_NAME.match(line):
			break
		pos += len(line) + 1
		if pos > MAX_JUNK_BYTES or pos >= len(raw):
			return 0
	else:
		if not _HEADER_NAME.match(_line_at(raw, pos)):
			return 0
	end = _header_block_end(raw, pos)
	block = raw[pos : min(end, pos + MAX_HEADER_BLOCK)].split(b"\n")
	return pos if any(_known(line) for line in block) else 0


def _line_at(raw: bytes, pos: int) -> bytes:
	end = raw.find(b"\n", pos, pos + MAX_JUNK_BYTES + 1)
	return raw[pos : end if end >= 0 else pos + MAX_JUNK_BYTES + 1]


def _header_block_end(raw: bytes, start: int) -> int:
	"""Where the blank line ending the header block starts (its line included before it), or the end."""
	ends = [i + 1 for i in (raw.find(b"\n\n", start), raw.find(b"\n\r\n", start)) if i >= 0]
	return min(ends) if ends else len(raw)


def _known(line: bytes) -> bool:
	match = _HEADER_NAME.match(line)
	return bool(match) and match.group(1).lower() in KNOWN_HEADERS
