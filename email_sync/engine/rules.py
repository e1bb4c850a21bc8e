"""Blacklist and include/exclude filters, compiled once per run and applied to parsed messages."""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass

from email_sync.engine.model import Address, Message

EXCLUDE = "Exclude"
INCLUDE = "Include"
OPERATORS = ("contains", "equals", "starts with", "ends with", "regex")
FIELDS = ("From", "To", "Cc", "Any Recipient", "Any Address", "Subject", "Body", "Sender Domain")


class RuleError(ValueError):
	"""A filter that cannot work as written (unknown field or operator, bad regex)."""


@dataclass
class BlacklistEntry:
	entry: str  # an address, a domain, or a wildcard pattern of either
	reason: str = ""

	def matches(self, address: Address) -> bool:
		pattern = self.entry.strip().lower()
		if not pattern or not address.email:
			return False
		if "@" in pattern:
			return fnmatch.fnmatchcase(address.email, pattern)
		domain = address.domain
		if any(ch in pattern for ch in "*?["):
			return fnmatch.fnmatchcase(domain, pattern)
		return domain == pattern or domain.endswith("." + pattern)


@dataclass
class Filter:
	name: str
	kind: str  # Include or Exclude
	field: str
	operator: str
	value: str

	def __post_init__(self):
		if self.kind not in (INCLUDE, EXCLUDE):
			raise RuleError(f"Filter {self.name}: the type must be Include or Exclude, not {self.kind!r}.")
		if self.field not in FIELDS:
			raise RuleError(f"Filter {self.name}: unknown field {self.field!r}; use one of {', '.join(FIELDS)}.")
		if self.operator not in OPERATORS:
			raise RuleError(f"Filter {self.name}: unknown operator {self.operator!r}.")
		self._regex = None
		if self.operator == "regex":
			try:
				self._regex = re.compile(self.value, re.IGNORECASE)
			except re.error as e:
				raise RuleError(f"Filter {self.name}: the regular expression is invalid ({e}).") from e
		self._needle = self.value.strip().lower()

	def matches(self, message: Message) -> bool:
		return any(self._test(value) for value in self._values(message))

	def _values(self, message: Message) -> list[str]:
		sender = [message.sender.email] if message.sender else []
		if self.field == "From":
			return sender
		if self.field == "To":
			return [a.email for a in message.to]
		if self.field == "Cc":
			return [a.email for a in message.cc]
		if self.field == "Any Recipient":
			return [a.email for a in message.recipients]
		if self.field == "Any Address":
			return [*sender, *(a.email for a in message.recipients)]
		if self.field == "Subject":
			return [message.subject]
		if self.field == "Body":
			return [message.text]
		return [message.sender.domain] if message.sender else []  # Sender Domain

	def _test(self, value: str) -> bool:
		if self._regex is not None:
			return bool(self._regex.search(value or ""))
		value = (value or "").lower()
		if self.operator == "contains":
			return self._needle in value
		if self.operator == "equals":
			return value == self._needle
		if self.operator == "starts with":
			return value.startswith(self._needle)
		return value.endswith(self._needle)


@dataclass
class RuleSet:
	blacklist: list[BlacklistEntry]
	filters: list[Filter]

	def blacklisted(self, message: Message) -> tuple[BlacklistEntry, Address] | None:
		for address in message.participants:
			for entry in self.blacklist:
				if entry.matches(address):
					return entry, address
		return None

	def excluded_by(self, message: Message) -> Filter | None:
		return next((f for f in self.filters if f.kind == EXCLUDE and f.matches(message)), None)

	def included(self, message: Message) -> tuple[bool, Filter | None]:
		"""(True, filter) when an include filter matched, (True, None) when there are none at all."""
		includes = [f for f in self.filters if f.kind == INCLUDE]
		if not includes:
			return True, None
		hit = next((f for f in includes if f.matches(message)), None)
		return hit is not None, hit
