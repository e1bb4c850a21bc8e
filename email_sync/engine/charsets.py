"""Bytes in a declared charset that may be wrong, read as text. Never raises.

Labels are read as the superset senders' software writes; a reading is checked by a cheap test of
whether it looks like text, and only when that fails does a detector run, a bounded number of times a
message, on a sample of the whole message when one text is too short to tell. ISO-2022-JP is read with
the vendor extensions no stdlib codec knows.
"""

from __future__ import annotations

import codecs
import functools
import itertools
import re
from collections.abc import Callable

DETECT_SAMPLE = 64 * 1024  # the charset detector reads at most this much of one text
MAX_DETECTIONS = 8  # detector runs per message; the rest keep the declared charset
MIN_EVIDENCE = 12  # 8-bit bytes needed to read a labelled single-byte charset as another single-byte one


class DecodeContext:
	"""What decoding one message shares: its defects, the charset it declares first, and a detector
	that runs a bounded number of times, on a sample of the message when one text is too short to tell.
	The sample is gathered by `sampler`, once, when first needed (see mime.message_samples)."""

	def __init__(self, hint: str, defects: list[str], sampler: Callable[[], tuple[bytes, bytes]] | None = None):
		self.hint = hint
		self.defects = defects
		self.detections = 0
		self.recoveries = 0  # multiparts whose parts after the closing boundary were read (see mime)
		self._sampler = sampler
		self._samples: tuple[bytes, bytes] | None = None

	def samples(self) -> tuple[bytes, bytes]:
		"""(the message's 8-bit header values and first 8-bit text that is not UTF-8, the header values alone)"""
		if self._samples is None:
			self._samples = self._sampler() if self._sampler is not None else (b"", b"")
		return self._samples


def decode_bytes(
	data: bytes,
	charset: str | None,
	defects: list[str] | None = None,
	name: str = "",
	context: DecodeContext | None = None,
) -> str:
	"""Text from bytes in a declared charset that may be wrong. Never raises.

	The declared charset is trusted while its reading looks like text; valid UTF-8 under a single-byte
	label (or none) is UTF-8; the detector runs only when that cheap check fails. Labels are read as the
	superset senders actually use (GB2312 as GB18030, Shift_JIS as cp932, Latin-1 as Windows-1252)."""
	try:
		return _decode(data or b"", charset or "", defects, name or "body", context)
	except Exception:
		return (data or b"").decode("utf-8", "replace")


def _decode(
	data: bytes, label: str, defects: list[str] | None, name: str, context: DecodeContext | None
) -> str:
	label = label.strip().strip("\"'").lower()
	declared = _codecs_for(label)
	if label and not declared and label not in _SUPERSETS and defects is not None:
		defects.append(f"unknown charset {label[:40]} in {name}")
	if data.isascii():
		return _decode_7bit(data, label, declared, defects, name)

	text = _decode_8bit(data, label, declared, defects, name, context)
	return without_escapes(text) if "\x1b" in text else text


def without_escapes(text: str) -> str:
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
	context: DecodeContext | None,
) -> str:
	single = not declared or _single_byte(declared[0])
	if single and is_utf8(data):  # valid UTF-8 is no accident, and a single-byte label cannot hold it
		if label:
			_misread(defects, name, label, "utf-8")
		return data.decode("utf-8")
	if single or ("utf-8" in declared and not is_utf8(data)):  # single: not UTF-8, as just seen
		mixed = _mixed_utf8(data)
		if mixed is not None:
			if defects is not None:
				defects.append(f"{name} mixes UTF-8 with another charset: the rest read as windows-1252")
			return mixed
	text, codec = _first_decoding(data, [c for c in declared if not c.startswith("iso2022")])
	if text is None and not single and "utf-8" not in declared and is_utf8(data):
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


def is_utf8(data: bytes) -> bool:
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


def _detect(data: bytes, context: DecodeContext | None) -> tuple[str, int]:
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
