"""Which conversation a message belongs to: its reply headers, and ticket ids people keep in subjects."""

from __future__ import annotations

import re

from email_sync.engine.model import Message

# "[ISS-2026-00012]", "ISS-2026-00012", "Ticket #123", "Issue #123", "Ticket: 123", "[#123]"
_NAMED = re.compile(r"\b(ISS-\d{4}-\d{3,})\b", re.IGNORECASE)
_NUMBERED = re.compile(r"(?:\b(?:ticket|issue|case)\s*(?:#|no\.?|nr\.?|:)\s*|\[#)(\d{1,10})\b\]?", re.IGNORECASE)
_REPLY_PREFIX = re.compile(r"^\s*((re|aw|sv|vs|antw|ref|fwd?|wg|tr|rv|enc)\s*(\[\d+\])?\s*:\s*)+", re.IGNORECASE)


def thread_message_ids(message: Message) -> list[str]:
	"""Message-IDs this message answers, nearest first: In-Reply-To, then References from the end."""
	ids = [message.in_reply_to] if message.in_reply_to else []
	ids += [r for r in reversed(message.references) if r not in ids]
	return ids


def ticket_references(subject: str) -> list[str]:
	"""Issue names ("ISS-2026-00012") and bare numbers ("123") named in a subject, in order."""
	refs = [m.upper() for m in _NAMED.findall(subject or "")]
	refs += [n for n in _NUMBERED.findall(subject or "") if n not in refs]
	return refs


def base_subject(subject: str) -> str:
	"""The subject without Re:/Fwd:/AW: prefixes, as people see the conversation's title."""
	return _REPLY_PREFIX.sub("", subject or "").strip()
