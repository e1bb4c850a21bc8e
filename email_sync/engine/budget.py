"""What one message may cost to read: a deadline and a size cap for its HTML, so no email can stall a mailbox.

The work that takes a Budget (sanitising, HTML to text) calls `check()` every few thousand tokens and stops
with BudgetExceeded when the time is up; its caller falls back to something cheaper and records a defect.
"""

from __future__ import annotations

import time

SECONDS = 1.0
MAX_HTML = 300 * 1024  # characters of HTML sanitised or converted to text; the rest is cut


class BudgetExceeded(Exception):
	"""The time given to one message ran out."""


class Budget:
	__slots__ = ("seconds", "max_html", "deadline")

	def __init__(self, seconds: float = SECONDS, max_html: int = MAX_HTML):
		self.seconds = seconds
		self.max_html = max_html
		self.deadline = time.monotonic() + seconds  # monotonic: a clock change must not end or extend it

	def check(self) -> None:
		if time.monotonic() > self.deadline:
			raise BudgetExceeded(f"exceeded the {self.seconds:g} s budget")

	def cut(self, html: str, defects: list[str] | None = None) -> str:
		"""`html` within the size cap: a longer one is cut just after a tag, and a defect says so (once)."""
		if len(html) <= self.max_html:
			return html
		end = html.rfind(">", 0, self.max_html) + 1  # after a ">": no tag left half-written at the end
		if end < self.max_html // 2:  # no tag near the cap (one huge text or attribute): cut where it is
			end = self.max_html
		if defects is not None:
			kilobytes = -(-len(html) // 1024)  # rounded up: never "300 KB cut to 300 KB"
			note = f"HTML body of {kilobytes} KB cut to {self.max_html // 1024} KB"
			if note not in defects:  # the text conversion and the sanitiser may both cut the same body
				defects.append(note)
		return html[:end]
