"""Attachments as mail names them, as a file system may store them, and which ones an account keeps.

Names in mail are untrusted: they may carry paths, control characters, reserved device names or a
misleading right-to-left override. `safe_filename` makes one a plain base name; `decide` applies the
account's policy to the original name as well as the safe one, so no spelling slips an executable through.
"""

from __future__ import annotations

import mimetypes
import re
import unicodedata
from dataclasses import dataclass, field
from urllib.parse import unquote_to_bytes

MAX_NAME_CHARS = 140
MAX_NAME_BYTES = 240  # most file systems allow 255 bytes; room is left for a de-duplicating suffix
MB = 1024 * 1024

DEFAULT_BLOCKED = frozenset(
	"""exe com bat cmd msi scr pif cpl js jse vbs vbe wsf wsh ps1 psm1 jar hta lnk reg dll sys apk app dmg iso
	img msix appx gadget inf scf url chm sh""".split()
)
# Content types that name an executable or a script whatever the file is called.
BLOCKED_TYPES = {
	"application/x-msdownload": "exe",
	"application/x-msdos-program": "exe",
	"application/x-dosexec": "exe",
	"application/x-executable": "exe",
	"application/vnd.microsoft.portable-executable": "exe",
	"application/x-ms-installer": "msi",
	"application/x-msi": "msi",
	"application/x-bat": "bat",
	"application/x-sh": "sh",
	"application/x-shellscript": "sh",
	"application/hta": "hta",
	"application/javascript": "js",
	"application/x-javascript": "js",
	"text/javascript": "js",
	"text/vbscript": "vbs",
	"application/java-archive": "jar",
	"application/x-java-archive": "jar",
	"application/x-ms-shortcut": "lnk",
	"application/vnd.android.package-archive": "apk",
	"application/x-iso9660-image": "iso",
	"application/x-apple-diskimage": "dmg",
}
MODES = ("All", "Up to limit", "None")

# Characters no common file system accepts in a name (Windows is the strictest).
_ILLEGAL = dict.fromkeys(map(ord, '<>:"/\\|?*'), "_")
_RESERVED = frozenset(
	["CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"]
	+ [f"{p}{n}" for p in ("COM", "LPT") for n in [*"123456789", "¹", "²", "³"]]
)
_EXTENSION = re.compile(r"\.[^.\s]{1,16}$")
_SPACES = re.compile(r"\s+")
_PERCENT = re.compile(r"%[0-9A-Fa-f]{2}")
_EXTRA_TYPES = {
	"text/calendar": ".ics",
	"message/delivery-status": ".txt",
	"text/rfc822-headers": ".txt",
	"application/msword": ".doc",
	"application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
	"application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
	"application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
}
_mime_types: mimetypes.MimeTypes | None = None
# MIME parameters: quoted strings never contain a quote, so each alternative starts on its own character and
# a failed quote is never retried (linear on any input). Backslash escapes are undone afterwards.
_PARAM_TOKEN = re.compile(r'"[^"]*"|;|[^";]+|"')
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_CONTINUATION = re.compile(r"^(.+?)\*(\d{1,3})(\*?)$")
MAX_PARAMETER_TEXT = 64 * 1024


def safe_filename(name: str, content_type: str = "") -> str:
	"""A base name any common file system stores as is: never empty, never hidden, at most 140 characters
	and 240 UTF-8 bytes, the extension kept. Percent-escapes are undone first so `%2e%2e%2f` is a path too."""
	name = str(name or "")
	if len(name) > 4096:  # keep the start and the extension; nothing useful is longer
		name = name[:2048] + name[-64:]
	if _PERCENT.search(name):
		try:
			name = unquote_to_bytes(name).decode("utf-8")
		except UnicodeDecodeError:
			pass  # not percent-encoding after all; the % signs are harmless
	name = unicodedata.normalize("NFC", name)
	name = name.replace("\\", "/").rsplit("/", 1)[-1]
	name = "".join(_clean_char(ch) for ch in name).translate(_ILLEGAL)
	name = _SPACES.sub(" ", name).strip(" ")
	bare = name.lstrip(". ").rstrip(" .")
	if name.startswith(".") and bare and "." not in bare and len(bare) <= 8:
		stem, ext = "", "." + bare  # ".pdf": a name that is only an extension
	else:
		stem, ext = _split_extension(bare)
	if stem.split(".")[0].strip().upper() in _RESERVED:
		stem = "_" + stem
	if not stem and not ext:
		ext = _guess_extension(content_type)
	return _bounded(stem or "attachment", ext)


def raw_filename(disposition: str, content_type: str) -> tuple[bytes, str]:
	"""(the attachment's name as sent, the charset RFC 2231 declares for it or "") from the raw
	Content-Disposition and Content-Type values: `filename` first, then `name`; extended (`filename*=`)
	and continued (`filename*0*=`) forms before the plain one. Raw 8-bit bytes (carried as surrogate
	escapes) come back as they were sent; decoding them is the caller's business. (b"", "") if none."""
	for value, param in ((disposition, "filename"), (content_type, "name")):
		found = header_param(value, param)
		if found[0]:
			return found
	return b"", ""


def header_param(value: str, name: str) -> tuple[bytes, str]:
	"""One parameter of a MIME header value as (bytes, RFC 2231 charset), assembled from its RFC 2231
	continuations and percent-escapes when it has them. (b"", "") when absent."""
	params = _params(value)
	name = name.lower()
	if name + "*" in params:
		return _extended(params[name + "*"], True)
	continued = params.get("*continued*", {}).items()
	pieces = sorted((int(n), v, star) for (p, n, star), v in continued if p == name)
	if pieces:
		charset = ""
		chunks = []
		for index, (_, piece, star) in enumerate(pieces):
			if star:
				data, declared = _extended(piece, index == 0)
				charset = charset or declared
			else:
				data = _bytes(piece)
			chunks.append(data)
		return b"".join(chunks), charset
	if name in params:
		return _bytes(params[name]), ""
	return b"", ""


def _params(value: str) -> dict:
	segments: list[list[str]] = [[]]
	for token in _PARAM_TOKEN.findall(str(value or "")[:MAX_PARAMETER_TEXT]):
		if token == ";":
			segments.append([])
		else:
			segments[-1].append(token)
	params: dict = {"*continued*": {}}
	for segment in segments[1:]:
		key, eq, val = "".join(segment).partition("=")
		key = key.strip().lower()
		if not eq or not key:
			continue
		val = val.strip()
		if len(val) > 1 and val[0] == val[-1] == '"':
			val = _QUOTED_PAIR.sub(r"\1", val[1:-1])
		elif val.startswith('"'):
			val = val[1:]  # an unclosed quote
		continued = _CONTINUATION.match(key)
		if continued:
			params["*continued*"][(continued[1], continued[2], bool(continued[3]))] = val
		else:
			params.setdefault(key, val)
	return params


def _extended(value: str, first: bool) -> tuple[bytes, str]:
	"""RFC 2231 `charset'language'percent-encoded`; only the first piece of a continuation names a charset."""
	charset = ""
	if first and value.count("'") >= 2:
		charset, _, rest = value.split("'", 2)
		value = rest
	return unquote_to_bytes(_bytes(value)), charset.strip()


def _bytes(value: str) -> bytes:
	return value.encode("utf-8", "surrogateescape")


def _clean_char(ch: str) -> str:
	category = unicodedata.category(ch)
	if category in ("Cc", "Zl", "Zp"):
		return " " if ch in "\t\n\r\x0b\x0c" or category != "Cc" else ""
	if category in ("Cf", "Cs", "Cn", "Co"):  # format (bidi overrides, zero-width), surrogates, unassigned
		return ""
	return " " if category == "Zs" else ch


def _split_extension(name: str) -> tuple[str, str]:
	match = _EXTENSION.search(name)
	if not match:
		return name, ""
	return name[: match.start()].rstrip(" ."), match.group()


def _bounded(stem: str, ext: str) -> str:
	stem = stem[: max(1, MAX_NAME_CHARS - len(ext))]
	limit = MAX_NAME_BYTES - len(ext.encode("utf-8"))
	stem = stem.encode("utf-8")[:limit].decode("utf-8", "ignore")
	stem = stem.rstrip(" .") or "attachment"
	return unicodedata.normalize("NFC", stem + ext)


def _guess_extension(content_type: str) -> str:
	global _mime_types
	content_type = (content_type or "").split(";")[0].strip().lower()
	if not content_type:
		return ""
	if content_type in _EXTRA_TYPES:
		return _EXTRA_TYPES[content_type]
	if _mime_types is None:
		_mime_types = mimetypes.MimeTypes()  # the built-in table only, so every machine names alike
	return _mime_types.guess_extension(content_type, strict=False) or (
		".txt" if content_type.startswith("text/") else ""
	)


@dataclass(frozen=True)
class AttachmentPolicy:
	"""Which attachments an account stores. Blocked types apply in every mode; the size limit only to
	"Up to limit"."""

	mode: str = "Up to limit"  # one of MODES
	max_bytes: int = 25 * MB
	blocked_extensions: frozenset[str] = field(default=DEFAULT_BLOCKED)

	@classmethod
	def from_settings(cls, mode: str | None, max_mb, blocked_text: str | None) -> AttachmentPolicy:
		"""Lenient about what a settings form holds: an unknown mode is "Up to limit", a missing, zero or
		unreadable limit is 25 MB, and an empty blocked list means the default one. A list given replaces
		the default, so an administrator can allow a type."""
		mode = next((m for m in MODES if m.lower() == str(mode or "").strip().lower()), "Up to limit")
		try:
			limit = float(max_mb)
		except (TypeError, ValueError):
			limit = 0
		if not limit > 0 or limit != limit:
			limit = 25
		blocked = parse_extensions(blocked_text)
		return cls(mode, int(limit * MB), blocked if blocked else DEFAULT_BLOCKED)


def parse_extensions(text: str | None) -> frozenset[str]:
	"""Extensions from a comma, semicolon, space or newline separated list, with or without dots."""
	words = re.split(r"[\s,;]+", str(text or ""))
	return frozenset(w.strip().lstrip("*").strip(".").lower() for w in words if w.strip().strip("*."))


def decide(att, policy: AttachmentPolicy) -> str:
	""""" when the attachment is stored; otherwise one sentence a user can read saying why not."""
	if policy.mode == "None":
		return "Not stored: this account stores no attachments."
	blocked = blocked_extension(att, policy.blocked_extensions)
	if blocked:
		return f"Not stored: .{blocked} files are blocked."
	size = max(att.size or 0, len(getattr(att, "content", b"") or b""))
	if policy.mode == "Up to limit" and size > policy.max_bytes:
		return (
			f"Not stored: {_megabytes(size)} MB is over this account's "
			f"{_megabytes(policy.max_bytes)} MB limit per attachment."
		)
	return ""


def blocked_extension(att, blocked: frozenset[str]) -> str:
	"""The blocked extension the attachment has by name (original or safe) or by content type, else ""."""
	if getattr(att, "is_forwarded_message", False):
		return ""  # a forwarded email is stored as .eml whatever its subject says
	for name in (getattr(att, "original_filename", ""), att.filename):
		ext = _last_extension(name)
		if ext and ext in blocked:
			return ext
	by_type = BLOCKED_TYPES.get((att.content_type or "").split(";")[0].strip().lower(), "")
	return by_type if by_type in blocked else ""


def _last_extension(name: str) -> str:
	# Hidden characters and trailing dots or spaces are what Windows ignores when it runs a file.
	name = "".join(ch for ch in str(name or "") if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
	name = name.replace("\\", "/").rsplit("/", 1)[-1].rstrip(" .")
	base, dot, ext = name.rpartition(".")
	return ext.strip().lower() if dot and base.strip(" .") else ""


def _megabytes(size: int) -> str:
	value = size / MB
	return str(int(value)) if value == int(value) else f"{value:.1f}"
