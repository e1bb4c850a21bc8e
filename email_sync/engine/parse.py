"""Raw RFC 822 bytes into a Message. Never raises: what cannot be read becomes a recorded defect.

Headers are read with the compat32 policy and decoded here, because the default policy's lazy header
objects both cost more and raise on malformed input at the moment a field is touched. Real mail is
read as its sender meant it where that can be told: a header block the stdlib parser would cut short is
repaired first, wrong charset labels are caught by a cheap check (and only then a detector), and every
part that is not the body is kept, bytes included, as an attachment.
"""

from __future__ import annotations

import base64
import binascii
import codecs
import email
import email.policy
import functools
import hashlib
import itertools
import re
from dataclasses import replace
from datetime import timezone
from html import escape
from email.message import Message as EmailMessage
from email.utils import parsedate_to_datetime
from urllib.parse import unquote

from email_sync.engine.addresses import parse_address_list
from email_sync.engine.attachments import header_param, raw_filename, safe_filename
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
DETECT_SAMPLE = 64 * 1024  # the charset detector reads at most this much of one text
MAX_DETECTIONS = 8  # detector runs per message; the rest keep the declared charset
MIN_EVIDENCE = 12  # 8-bit bytes needed to read a labelled single-byte charset as another single-byte one
MAX_RECOVERIES = 4  # epilogues read for parts sent after the closing boundary, per message


def parse_message(raw: bytes) -> Message:
	"""Read one message. Every problem found is listed in `defects`; `unreadable` is set if nothing was."""
	size = len(raw or b"")
	if not raw or not raw.strip():
		return Message(key=_hash(b"empty:" + (raw or b"")), size=size, unreadable="The message is empty.")
	repairs: list[str] = []
	try:
		repaired = repair_header_block(raw, repairs)
	except Exception as e:  # a repair must never cost the message
		repaired, repairs = raw, [f"header block could not be checked: {e}"]
	try:
		msg = email.message_from_bytes(repaired, policy=email.policy.compat32)
	except Exception as e:  # the stdlib parser is lenient; this guards against the unforeseen
		return Message(key=_hash(raw), size=size, unreadable=f"The message could not be parsed: {e}")

	defects: list[str] = repairs + [_describe(d) for d in getattr(msg, "defects", [])]
	if not msg.keys():
		return Message(key=_hash(raw), size=size, unreadable="The message has no headers.", defects=defects)

	context = _Context(msg, _first_charset(msg), defects)
	message = Message(key="", size=size, defects=defects)
	try:
		_read_headers(_HeaderReader(msg, context), message)
	except Exception as e:  # the fields read so far are kept
		defects.append(f"headers could not be read completely: {e}")

	for name, what in (("From", message.sender), ("Message-ID", message.message_id), ("Date", message.date)):
		if not what:
			defects.append(f"missing {name} header")

	try:
		_read_body(msg, message, context)
	except Exception as e:  # parts read so far are kept
		defects.append(f"body could not be read completely: {e}")
	message.auto = detect_auto_submitted(message)
	message.key = identity(message, raw)
	return message


def _read_headers(header: _HeaderReader, message: Message) -> None:
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
		",".join(f"{_identity_name(a)}:{a.size}" for a in message.attachments),
	]
	if not any(parts):
		return _hash(raw)
	return _hash("\x1f".join(parts).encode("utf-8", "surrogatepass"))


def _identity_name(attachment: Attachment) -> str:
	# The name as earlier versions recorded it, so keys of mail already stored stay the same.
	return attachment.original_filename or f"attachment.{attachment.content_type.split('/')[-1]}"


def _hash(data: bytes) -> str:
	return hashlib.sha256(data).hexdigest()[:40]


class _Context:
	"""What decoding one message shares: its defects, the charset it declares first, and a detector
	that runs a bounded number of times, on a sample of the message when one text is too short to tell."""

	def __init__(self, msg: EmailMessage | None, hint: str, defects: list[str]):
		self.msg = msg
		self.hint = hint
		self.defects = defects
		self.detections = 0
		self.recoveries = 0  # multiparts whose parts after the closing boundary were read (see _after_close)
		self._samples: tuple[bytes, bytes] | None = None

	def samples(self) -> tuple[bytes, bytes]:
		"""(every 8-bit header value and the first 8-bit text part that is not UTF-8, the header values
		alone): a short subject's bytes are rarely enough for a detector, but a mislabelled message is
		usually mislabelled throughout - unless a filter wrapped it in a report of its own charset."""
		if self._samples is None:
			headers: list[bytes] = []
			body = b""
			try:
				for _, value in self.msg.raw_items():
					value = str(value)
					if not value.isascii():
						headers.append(value.encode("utf-8", "surrogateescape"))
				for part in itertools.islice(self.msg.walk(), 100):
					if part.get_content_maintype() == "text" and not part.is_multipart():
						data = _payload(part)[:DETECT_SAMPLE]
						if not data.isascii() and not _is_utf8(data):
							body = data
							break
			except Exception:
				pass
			header_sample = b"\n".join(headers)[:DETECT_SAMPLE]
			self._samples = (b"\n".join(c for c in (header_sample, body) if c)[:DETECT_SAMPLE], header_sample)
		return self._samples


class _HeaderReader:
	"""Decodes headers whole, and only those asked for: RFC 2047 words in any charset, and raw 8-bit bytes
	as UTF-8 when they are UTF-8, else by the message's charset checked for plausibility."""

	def __init__(self, msg: EmailMessage, context: _Context):
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
			self._decoded[key] = [_undo_surrogates(v, self.context.hint, name, self.context) for v in raw]
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
	context: _Context | None = None,
) -> str:
	"""Decode RFC 2047 encoded-words (any number, any charset) and unfold the header.

	Adjacent words in one charset are joined before decoding, since senders split multi-byte characters
	across them; raw ISO-2022-JP (escape sequences, no encoded words) is decoded too."""
	if not value:
		return ""
	value = _FOLDING.sub(" ", _without_escapes(value))
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


def decode_bytes(
	data: bytes,
	charset: str | None,
	defects: list[str] | None = None,
	name: str = "",
	context: _Context | None = None,
) -> str:
	"""Text from bytes in a declared charset that may be wrong. Never raises.

	The declared charset is trusted while its reading looks like text; valid UTF-8 under a single-byte
	label (or none) is UTF-8; the detector runs only when that cheap check fails. Labels are read as the
	superset senders actually use (GB2312 as GB18030, Shift_JIS as cp932, Latin-1 as Windows-1252)."""
	try:
		return _decode(data or b"", charset or "", defects, name or "body", context)
	except Exception:
		return (data or b"").decode("utf-8", "replace")


def _decode(data: bytes, label: str, defects: list[str] | None, name: str, context: _Context | None) -> str:
	label = label.strip().strip("\"'").lower()
	declared = _codecs_for(label)
	if label and not declared and label not in _SUPERSETS and defects is not None:
		defects.append(f"unknown charset {label[:40]} in {name}")
	if data.isascii():
		return _decode_7bit(data, label, declared, defects, name)

	text = _decode_8bit(data, label, declared, defects, name, context)
	return _without_escapes(text) if "\x1b" in text else text


def _without_escapes(text: str) -> str:
	"""Raw ISO-2022-JP runs (from an escape sequence to the next non-ASCII character) decoded in place."""
	if "\x1b" not in text:
		return text
	return _JIS_RUN.sub(lambda m: decode_iso2022jp(m.group().encode("ascii")), text)


def _decode_8bit(
	data: bytes,
	label: str,
	declared: tuple[str, ...],
	defects: list[str] | None,
	name: str,
	context: _Context | None,
) -> str:
	single = not declared or _single_byte(declared[0])
	if single and _is_utf8(data):  # valid UTF-8 is no accident, and a single-byte label cannot hold it
		if label:
			_misread(defects, name, label, "utf-8")
		return data.decode("utf-8")
	if single or ("utf-8" in declared and not _is_utf8(data)):  # single: not UTF-8, as just seen
		mixed = _mixed_utf8(data)
		if mixed is not None:
			if defects is not None:
				defects.append(f"{name} mixes UTF-8 with another charset: the rest read as windows-1252")
			return mixed
	text, codec = _first_decoding(data, [c for c in declared if not c.startswith("iso2022")])
	if text is None and not single and "utf-8" not in declared and _is_utf8(data):
		_misread(defects, name, label, "utf-8")
		return data.decode("utf-8")
	if text is None and declared and declared[0].startswith("iso2022_jp"):
		text, codec = _first_decoding(data, ["euc_jp", "cp932"])  # 8-bit Japanese under a 7-bit label
		if text is not None and _oddness(text[:4000], codec) >= 0.3:
			text = None  # not Japanese after all
	if text is None:  # what earlier versions did, and the best guess for Western mail
		text, codec = _first_decoding(data, ["cp1252", "latin-1"])
	if not _implausible(text, data, codec):
		if declared and codec not in declared:
			_misread(defects, name, label, codec)
		return text
	guess, evidence = _detect(data, context)
	if guess and guess != codec and not (codec in _LATIN and guess in _LATIN):
		if codec in declared and _single_byte(guess) and evidence < MIN_EVIDENCE and not _suspects(text):
			return text  # one code page for another on a handful of letters is a coin toss: the label stands
		other = data.decode(guess, "replace")
		if not _implausible(other, data, guess) or _suspects(other) < _suspects(text):
			if guess not in declared:
				_misread(defects, name, label, guess)
			return other
	if declared and codec not in declared:
		_misread(defects, name, label, codec)
	return text


def _decode_7bit(
	data: bytes, label: str, declared: tuple[str, ...], defects: list[str] | None, name: str
) -> str:
	if b"\x1b" in data and _JIS_ESCAPE.search(data):
		if not label.startswith("iso-2022-jp"):
			_misread(defects, name, label, "iso-2022-jp")
		return decode_iso2022jp(data)
	for codec in declared:
		if codec in _SEVEN_BIT:
			try:
				return data.decode(codec)
			except (UnicodeDecodeError, LookupError):
				pass
	return data.decode("ascii")


def _misread(defects: list[str] | None, name: str, label: str, codec: str) -> None:
	if defects is not None:
		if label:
			defects.append(f"{name} declared {label[:40]} but read as {codec}")
		else:
			defects.append(f"{name} without a charset read as {codec}")


def _first_decoding(data: bytes, names: list[str]) -> tuple[str | None, str]:
	for name in names:
		try:
			return data.decode(name), name
		except (UnicodeDecodeError, LookupError):
			continue
	return None, ""


_STRAY_BYTES = re.compile("[\udc80-\udcff]+")


def _mixed_utf8(data: bytes) -> str | None:
	"""Text that is mostly UTF-8 with some bytes of a single-byte charset (a Latin-1 footer or quote added
	to a UTF-8 text, or the reverse): its UTF-8 read as UTF-8 and the stray bytes as Windows-1252. None
	unless valid UTF-8 sequences hold at least two thirds of the 8-bit bytes (Latin-1 text alone rarely
	pairs into one), and at least two characters' worth."""
	text = data.decode("utf-8", "surrogateescape")
	strays = _STRAY_BYTES.findall(text)
	stray = sum(map(len, strays))
	if not stray or _high_count(data) - stray < max(4, 2 * stray):
		return None
	return _STRAY_BYTES.sub(lambda m: _cp1252(m.group().encode("utf-8", "surrogateescape")), text)


def _cp1252(data: bytes) -> str:
	"""Windows-1252, its five unassigned bytes read as Latin-1 (both are what a stray 8-bit byte means)."""
	return "".join(bytes((b,)).decode("cp1252", "ignore") or chr(b) for b in data)


def _is_utf8(data: bytes) -> bool:
	try:
		data.decode("utf-8")
	except UnicodeDecodeError:
		return False
	return True


# Labels read as the superset that senders' software actually writes.
_SUPERSETS = {
	"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "gb_2312-80": "gb18030", "euc-cn": "gb18030",
	"cp936": "gb18030", "chinese": "gb18030", "big5": "cp950", "x-big5": "cp950", "shift_jis": "cp932",
	"shift-jis": "cp932", "x-sjis": "cp932", "sjis": "cp932", "ms_kanji": "cp932", "windows-31j": "cp932",
	"euc-kr": "cp949", "ks_c_5601-1987": "cp949", "ks_c_5601": "cp949", "ksc5601": "cp949", "korean": "cp949",
	"iso-8859-1": "cp1252", "iso_8859-1": "cp1252", "latin1": "cp1252", "latin-1": "cp1252", "l1": "cp1252",
	"us-ascii": "cp1252", "ascii": "cp1252", "ansi_x3.4-1968": "cp1252", "iso-8859-9": "cp1254",
	"tis-620": "cp874", "iso-8859-11": "cp874", "iso-8859-8-i": "iso-8859-8", "iso-8859-6-i": "iso-8859-6",
	"unknown-8bit": "", "x-unknown": "", "unknown": "", "x-user-defined": "", "default": "", "charset": "",
}  # fmt: skip
# Codecs that are no text encoding of mail, whatever a header claims.
_NOT_MAIL = frozenset("unicode_escape raw_unicode_escape idna punycode undefined mbcs oem".split())
_LATIN = frozenset(
	"""ascii cp1252 iso8859-1 iso8859-2 iso8859-3 iso8859-4 iso8859-9 iso8859-10 iso8859-13 iso8859-14
	iso8859-15 iso8859-16 cp1250 cp1254 cp1257 cp1258 mac-roman mac-latin2 cp437 cp850 cp858""".split()
)
_SEVEN_BIT = frozenset(
	"utf-7 iso2022_jp iso2022_jp_1 iso2022_jp_2 iso2022_jp_3 iso2022_jp_ext iso2022_kr hz".split()
)


@functools.lru_cache(maxsize=256)
def _codecs_for(label: str) -> tuple[str, ...]:
	"""The codecs to read a label with, its superset first; () for no label, an unknown one, or one that
	says the charset is unknown (unknown-8bit)."""
	names = []
	if label in _SUPERSETS and not _SUPERSETS[label]:
		return ()
	for name in (_SUPERSETS.get(label, label), label):
		if not name:
			continue
		try:
			codec = codecs.lookup(name)
		except LookupError:
			continue
		if codec.name not in _NOT_MAIL and getattr(codec, "_is_text_encoding", True):
			names.append(codec.name)
	return tuple(dict.fromkeys(names))


@functools.lru_cache(maxsize=256)
def _single_byte(codec: str) -> bool:
	"""True when every byte is one character (Latin, Cyrillic, Greek... code pages), false for UTF-8,
	the CJK multi-byte charsets and the 7-bit escape ones."""
	try:
		text = bytes(range(0x80, 0x100)).decode(codec, "replace")
	except LookupError:
		return False
	return len(text) == 128 and text.count("\ufffd") < 64


# Characters text almost never holds but a wrong decoding produces: controls (C0 but tab, newlines, form
# feed and escape; all of C1), replacement characters and the private use area.
_SUSPECT = re.compile("[\x00-\x08\x0e-\x1a\x1c-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff]")
# Runs of 8-bit bytes: how CJK, Cyrillic, Greek... text looks to a Latin code page, where real Western text
# has its accented letters one or two at a time between ASCII ones.
_HIGH_RUN = re.compile(rb"[\x80-\xff]{3,}")
_HIGH_BYTES = bytes(range(0x80, 0x100))
_SAMPLE_CHARS = 16 * 1024


def _suspects(text: str) -> int:
	return len(_SUSPECT.findall(text[:_SAMPLE_CHARS]))


def _implausible(text: str, data: bytes, codec: str) -> bool:
	"""The cheap check: does this reading look like text? Linear, on a sample."""
	sample = text[:_SAMPLE_CHARS]
	if _suspects(sample) > 1 + len(sample) // 200:
		return True
	if codec in _LATIN:
		chunk = data[:DETECT_SAMPLE]
		high = len(chunk) - len(chunk.translate(None, _HIGH_BYTES))
		if high >= 4 and 2 * sum(map(len, _HIGH_RUN.findall(chunk))) > high:
			return True
	return False


# What charset-normalizer may answer that mail really uses (it also knows DOS, EBCDIC and Mac pages).
_MAIL_CODECS = frozenset(
	"""utf-8 gb18030 cp950 big5hkscs cp932 euc_jp euc_jis_2004 cp949 johab cp1250 cp1251 cp1252 cp1253
	cp1254 cp1255 cp1256 cp1257 cp1258 koi8-r koi8-u iso8859-2 iso8859-5 iso8859-7 iso8859-8 iso8859-6
	iso8859-13 iso8859-15 cp874 cp866""".split()
)
# Characters in a reading that mean the charset was wrong: controls, replacement characters, private use,
# Korean jamo standing alone, half-width katakana, box drawing, Hangul glued to Chinese characters,
# Cyrillic or Greek glued to Latin letters (but mu and omega, which units glue: 5μg, 10kΩ), and a symbol
# glued between two letters.
_MOJIBAKE = re.compile(
	"[\x00-\x08\x0e-\x1f\x7f-\x9f\ufffd\ue000-\uf8ff\u3130-\u318f\uff61-\uff9f\u2500-\u259f]"
	"|[\uac00-\ud7a3][\u4e00-\u9fff]|[\u4e00-\u9fff][\uac00-\ud7a3]"
	"|[\u0400-\u04ff][A-Za-z\u00c0-\u024f]|[A-Za-z\u00c0-\u024f][\u0400-\u04ff]"
	"|[\u0384-\u03a8\u03aa-\u03bb\u03bd-\u03ce][A-Za-z\u00c0-\u024f]"
	"|[A-Za-z\u00c0-\u024f][\u0384-\u03a8\u03aa-\u03bb\u03bd-\u03ce]"
	"|(?<=[^\\W\\d_])[\u00a1-\u00bf\u00d7\u00f7\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122](?=[^\\W\\d_])"
)
# Too few 8-bit bytes for a statistical detector: these readings are scored instead.
_SHORT_CANDIDATES = ("utf-8", "cp949", "gb18030", "cp932", "euc_jp", "cp950", "cp1251", "koi8-r", "cp1253")
_SHORT = 64  # 8-bit bytes


def _detect(data: bytes, context: _Context | None) -> tuple[str, int]:
	"""The most plausible mail charset for `data`, or "" (detector not installed, over budget, no answer),
	and how many 8-bit bytes the answer rests on.

	charset-normalizer ranks the candidates; its answers are re-ranked by how odd their text reads, and for
	short texts (a subject, a file name) the usual charsets are scored directly, with the rest of the
	message's 8-bit bytes added to the sample, because statistics on a dozen bytes mean little (and
	without them when they make every reading odd)."""
	if context is not None:
		if context.detections >= MAX_DETECTIONS:
			return "", 0
		context.detections += 1
	try:
		from charset_normalizer import from_bytes
	except ImportError:
		return "", 0
	sample = data[:DETECT_SAMPLE]
	if len(sample) < len(data) and sample.rfind(b"\n") > DETECT_SAMPLE // 2:
		sample = sample[: sample.rfind(b"\n")]  # never cut a character in two
	tries = [sample]
	if context is not None and _high_count(sample) < _SHORT:
		# With the rest of the message first; then with its header values only (a filter's report around
		# a message may be in another charset); then alone.
		extras = [extra for extra in context.samples() if extra and extra not in sample]
		tries = [(sample + b"\n" + extra)[:DETECT_SAMPLE] for extra in extras]
		tries = [*dict.fromkeys(t for t in tries if t != sample), sample]
	for candidate in tries:
		found = _rank(candidate, from_bytes)
		if found:
			return found, _high_count(candidate)
	return "", 0


def _rank(sample: bytes, from_bytes) -> str:
	short = _high_count(sample) < _SHORT
	try:
		found = [str(m.encoding) for m in itertools.islice(from_bytes(sample), 6)]
	except Exception:
		found = []
	# Long texts: the detector's first clean answer. Otherwise (short, or no clean answer) the least odd
	# reading of all, the usual charsets first among equals.
	names = [*_SHORT_CANDIDATES, *found] if short else [*found, *_SHORT_CANDIDATES]
	best, best_key, best_odd = "", None, 1.0
	for order, name in enumerate(names):
		codec = (_codecs_for(name.lower().replace("_", "-")) or [""])[0]
		if codec not in _MAIL_CODECS:
			continue
		try:
			text = sample.decode(codec, "strict" if short else "replace")
		except UnicodeDecodeError:
			continue
		odd = _oddness(text[:4000], codec)
		key = (0, 0.0, order) if not short and order < len(found) and odd <= 0.05 else (1, odd, order)
		if best_key is None or key < best_key:
			best, best_key, best_odd = codec, key, odd
	return best if best_odd < 0.3 else ""


def _high_count(data: bytes) -> int:
	return len(data) - len(data.translate(None, _HIGH_BYTES))


# Which national standard a CJK codec reads, to judge its Chinese characters by that standard's common level.
_FAMILY = {
	"gb18030": "gb", "cp950": "big5", "big5hkscs": "big5", "cp932": "jis", "euc_jp": "jis",
	"euc_jis_2004": "jis", "cp949": "ksc", "johab": "ksc",
}  # fmt: skip
_COMMON_LEVEL = {"gb": ("gb2312", 0xB0, 0xD7), "big5": ("big5", 0xA4, 0xC6), "jis": ("shift_jis", 0x88, 0x98)}


def _oddness(text: str, codec: str) -> float:
	"""Share of a reading's non-ASCII letters that real text rarely has: the marks above, a capital right
	after a small letter, Chinese characters outside the common level of the codec's own standard, kana in
	a Chinese reading, Japanese with no kana at all, Chinese characters in Korean (modern Korean mail rarely
	has any), Hangul outside KS X 1001."""
	family = _FAMILY.get(codec, "")
	odd = float(len(_MOJIBAKE.findall(text)))
	letters = han = kana = 0
	previous = ""
	for ch in text:
		if ch > "\x7f":
			if ch.isalpha():
				letters += 1
				if "\u3041" <= ch <= "\u30ff":
					kana += 1
				elif _is_han(ch):
					han += 1
					odd += 0.5 if family == "ksc" else _rare_character(ch, family)
				elif "\uac00" <= ch <= "\ud7a3":
					odd += _rare_character(ch, "ksc")
			if ch.isupper() and previous.islower():
				odd += 1
		previous = ch
	if family in ("gb", "big5"):
		odd += kana
	elif family == "jis" and kana * 20 < letters:  # short all-kanji words exist; longer Japanese has kana
		odd += (0.2 if letters < 12 else 0.5) * han
	return odd / max(letters, 1)


def _is_han(ch: str) -> bool:
	return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf" or "\uf900" <= ch <= "\ufaff"


@functools.lru_cache(maxsize=16384)
def _rare_character(ch: str, family: str) -> bool:
	"""A Hangul syllable outside KS X 1001, or a Chinese character outside the common (first) level of the
	family's standard (of all three when no family): what wrong decodings are made of."""
	if family == "ksc":
		try:
			return len(ch.encode("euc-kr")) != 2  # others are 8-byte "make-up" sequences, seldom sent
		except UnicodeEncodeError:
			return True
	for name in [family] if family in _COMMON_LEVEL else list(_COMMON_LEVEL):
		codec, low, high = _COMMON_LEVEL[name]
		try:
			if low <= ch.encode(codec)[0] <= high:
				return False
		except UnicodeEncodeError:
			continue
	return True


def _undo_surrogates(value: str, charset_hint: str, name: str = "", context: _Context | None = None) -> str:
	"""compat32 keeps raw 8-bit header bytes as surrogate escapes: decode them as UTF-8 when they are,
	else by the message's charset (checked, like a body)."""
	if value.isascii() and "\x1b" not in value:
		return value
	data = value.encode("utf-8", "surrogateescape")
	if _is_utf8(data) and b"\x1b" not in data:
		return data.decode("utf-8")
	defects = context.defects if context is not None else None
	return decode_bytes(data, charset_hint or "", defects, name, context)


def _first_charset(msg: EmailMessage) -> str:
	try:
		for part in itertools.islice(msg.walk(), 200):
			charset = _part_charset(part)
			if charset:
				return charset
	except Exception:
		pass
	return ""


def _part_charset(part: EmailMessage) -> str:
	try:
		return part.get_content_charset() or ""
	except Exception:  # 8-bit bytes in the header: read the parameter from the raw value
		return header_param(_raw_header(part, "content-type"), "charset")[0].decode("ascii", "ignore").lower()


def _raw_header(part: EmailMessage, name: str) -> str:
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


def _describe(defect) -> str:
	return re.sub(r"(?<!^)(?=[A-Z])", " ", type(defect).__name__).lower()


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


def _read_body(msg: EmailMessage, message: Message, context: _Context) -> None:
	"""The text and HTML views of the body, and every other part as an attachment.

	Sibling text and HTML parts that are not alternatives (a text body then an HTML signature, an HTML
	body then a text footer) are both shown, in order, in both views; inside multipart/alternative each
	view takes its own best alternative, looking into related or mixed alternatives."""
	text_view, html_view = _walk(msg, message, context, 0)
	message.text = _text_view(text_view, context.defects)
	message.html = _html_view(html_view, context.defects)
	if message.html and any(a.content_id and not a.inline for a in message.attachments):
		_mark_inline(message)


def _walk(part: EmailMessage, message: Message, context: _Context, depth: int) -> _Views:
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


def _after_close(part: EmailMessage, context: _Context) -> list[EmailMessage]:
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


def _without_boundary(part: EmailMessage, payload, message: Message, context: _Context, depth: int) -> _Views:
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


def _read_leaf(part: EmailMessage, ctype: str, message: Message, context: _Context) -> _Views:
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
	disposition = _raw_header(part, "content-disposition").split(";")[0].strip().lower()
	filename = _filename(part, context)
	if ctype in ("text/plain", "text/html") and disposition != "attachment" and not filename:
		data = _payload(part)
		charset = _part_charset(part) or (_meta_charset(data) if ctype == "text/html" else "")
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


def _forwarded(part: EmailMessage, ctype: str, context: _Context) -> Attachment:
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
		subject = decode_words(_undo_surrogates(_raw_header(inner, "subject"), context.hint), context.hint)
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
	value = _raw_header(part, "content-transfer-encoding").lower().split(";")[0].split("(")[0]
	return _ENCODINGS.get(_NOT_IN_ENCODING.sub("", value), "")


def _content_id(part: EmailMessage) -> str:
	return _undo_surrogates(_raw_header(part, "content-id"), "").strip().strip("<>").strip()


def _filename(part: EmailMessage, context: _Context) -> str:
	"""The attachment's name as its sender wrote it: RFC 2231 in its declared charset, RFC 2047 words,
	raw 8-bit bytes as UTF-8, else the part's (or message's) charset, else what the detector says."""
	data, charset = raw_filename(_raw_header(part, "content-disposition"), _raw_header(part, "content-type"))
	if not data:
		return ""
	hint = _part_charset(part) or context.hint
	if charset:
		name = decode_bytes(data, charset, context.defects, "filename", context)
	elif _is_utf8(data):
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


# ISO-2022-JP as Windows and Japanese phones write it. The escape sequences it switches character sets with:
_JIS_ESCAPE = re.compile(rb"\x1b(?:\$[@AB]|\$\([@ABCDOPQ]|\([BHIJ])")
_JIS_MODES = (  # longest first
	(b"$(D", "jis0212"), (b"$(O", "jis2004"), (b"$(Q", "jis2004"), (b"$(P", "jis2004"), (b"$(C", "ksc"),
	(b"$(@", "jis"), (b"$(B", "jis"), (b"$@", "jis"), (b"$B", "jis"), (b"$A", "gb2312"),
	(b"(B", "ascii"), (b"(J", "ascii"), (b"(H", "ascii"), (b"(I", "kana"),
)  # fmt: skip
_JIS_PAIR = re.compile(rb"[\x21-\x7e]{2}")
_JIS_RUN = re.compile("\x1b[\x00-\x7f]*")
_KANA = bytes.maketrans(bytes(range(0x21, 0x60)), bytes(range(0xA1, 0xE0)))
_OTHER_ISO2022 = {
	"jis0212": (b"\x1b$(D", "iso2022_jp_1"),
	"jis2004": (b"\x1b$(Q", "iso2022_jp_2004"),
	"ksc": (b"\x1b$(C", "iso2022_jp_2"),
	"gb2312": (b"\x1b$A", "iso2022_jp_2"),
}


def decode_iso2022jp(data: bytes) -> str:
	"""ISO-2022-JP with the vendor extensions real Japanese mail carries: NEC row 13 (①, Ⅰ, ㍉) and the
	IBM extensions (rows 89-92), which no stdlib ISO-2022-JP codec reads. Double-byte runs are turned into
	Shift_JIS arithmetically and read as cp932, as Windows does (CP50220); JIS X 0212/0213, GB 2312 and
	KS C runs go to the stdlib codecs; 8-bit bytes are read as Shift_JIS. Escape sequences never remain."""
	try:
		return data.decode("iso2022_jp")  # the common case, in C
	except UnicodeDecodeError:
		pass
	out: list[str] = []
	mode = "ascii"
	for index, chunk in enumerate(data.split(b"\x1b")):
		if index:
			for designator, new_mode in _JIS_MODES:
				if chunk.startswith(designator):
					mode, chunk = new_mode, chunk[len(designator) :]
					break
		if mode == "jis":
			chunk = _JIS_PAIR.sub(lambda m: _jis_to_sjis(m.group()), chunk)
		elif mode == "kana":
			chunk = chunk.translate(_KANA)
		elif mode in _OTHER_ISO2022:
			prefix, codec = _OTHER_ISO2022[mode]
			out.append((prefix + chunk).decode(codec, "replace"))
			continue
		out.append(chunk.decode("cp932", "replace"))
	return "".join(out)


@functools.lru_cache(maxsize=16384)  # at most 94 x 94 pairs
def _jis_to_sjis(pair: bytes) -> bytes:
	j1, j2 = pair[0], pair[1]
	s1 = ((j1 - 0x21) >> 1) + 0x81
	if s1 > 0x9F:
		s1 += 0x40
	if j1 & 1:
		s2 = j2 + 0x1F + (j2 >= 0x60)
	else:
		s2 = j2 + 0x7E
	return bytes((s1, s2))


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
		defects.append(f"{len(obsolete)} header name(s) with space before the colon read as headers")
	bad = [i for i, line in enumerate(lines) if not _HEADER_START.match(line)]
	if bad:
		last_known = max((i for i, line in enumerate(lines) if _known(line)), default=-1)
		folded = [i for i in bad if 0 < i < last_known]
		if folded:
			for i in folded:
				lines[i] = b" " + lines[i]
			defects.append(f"{len(folded)} unindented line(s) in the header block read as continuations")
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
