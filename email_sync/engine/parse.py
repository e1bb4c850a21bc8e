"""Raw RFC 822 bytes into a Message. Never raises: what cannot be read becomes a recorded defect.

Headers are read with the compat32 policy and decoded here, because the default policy's lazy header
objects both cost more and raise on malformed input at the moment a field is touched. Real mail is
read as its sender meant it where that can be told: a header block the stdlib parser would cut short is
repaired first (headers.py), wrong charset labels are caught by a cheap check and only then a detector
(charsets.py), and every part that is not the body is kept, bytes included, as an attachment (mime.py).
"""

from __future__ import annotations

import email
import email.policy
import hashlib
import re

from email_sync.engine.autosubmit import detect_auto_submitted
from email_sync.engine.charsets import DecodeContext, decode_bytes, decode_iso2022jp
from email_sync.engine.headers import (
	KNOWN_HEADERS,
	RULE_HEADERS,
	HeaderReader,
	decode_words,
	first_charset,
	read_headers,
	repair_header_block,
)
from email_sync.engine.mime import MAX_HTML_FOR_TEXT, html_to_text, message_samples, read_body
from email_sync.engine.model import Attachment, Message

# Other modules import these from here.
__all__ = [
	"KNOWN_HEADERS",
	"MAX_HTML_FOR_TEXT",
	"RULE_HEADERS",
	"decode_bytes",
	"decode_iso2022jp",
	"decode_words",
	"html_to_text",
	"identity",
	"parse_message",
	"repair_header_block",
]


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

	context = DecodeContext(first_charset(msg), defects, lambda: message_samples(msg))
	message = Message(key="", size=size, defects=defects)
	try:
		read_headers(HeaderReader(msg, context), message)
	except Exception as e:  # the fields read so far are kept
		defects.append(f"headers could not be read completely: {e}")

	for name, what in (("From", message.sender), ("Message-ID", message.message_id), ("Date", message.date)):
		if not what:
			defects.append(f"missing {name} header")

	try:
		read_body(msg, message, context)
	except Exception as e:  # parts read so far are kept
		defects.append(f"body could not be read completely: {e}")
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


def _describe(defect) -> str:
	return re.sub(r"(?<!^)(?=[A-Z])", " ", type(defect).__name__).lower()
