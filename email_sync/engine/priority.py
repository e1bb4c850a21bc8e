"""Priority from keywords in the subject and body, by a table the admin edits (first match wins)."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_TABLE = [
	("urgent", "High"),
	("emergency", "High"),
	("asap", "High"),
	("broken", "Medium"),
	("not working", "Medium"),
	("error", "Medium"),
	("question", "Low"),
	("when", "Low"),
	("how", "Low"),
]


@dataclass
class PriorityVerdict:
	priority: str
	keyword: str = ""

	@property
	def reason(self) -> str:
		return f"'{self.keyword}' means {self.priority}" if self.keyword else ""


def priority_for(subject: str, text: str, table: list[tuple[str, str]], default: str = "") -> PriorityVerdict:
	"""The priority of the table's first keyword found as a whole word in the subject or the body.

	The table's order is its precedence (the defaults list High words first): "how … urgent" is High."""
	haystack = f"{subject or ''}\n{(text or '')[:5000]}".lower()
	for keyword, priority in table:
		keyword = keyword.strip().lower()
		if keyword and re.search(rf"(?<!\w){re.escape(keyword)}(?!\w)", haystack):
			return PriorityVerdict(priority, keyword)
	return PriorityVerdict(default)
