"""HTML to readable plain text, in time linear in its length.

html2text (on html.parser) takes seconds to minutes on some broken markup any sender can send; this reads
with the sanitiser's tokenizer instead, so it sees tags exactly as the sanitiser does. The output is meant
for people and for matching rules: paragraphs as blank lines, "- " list items, "> " quotes, table cells
joined by " | ", links as "text (url)" when the url says more than the text. Images and emphasis are left out.
"""

from __future__ import annotations

import re
from html import unescape

from email_sync.engine.budget import Budget
from email_sync.engine.sanitize import DROP_CONTENT, EMPTY_ELEMENTS, START, TEXT, attribute_value, tokens

PARAGRAPHS = frozenset("p h1 h2 h3 h4 h5 h6 blockquote pre dl hr address figure fieldset".split())
LINES = frozenset(
	"div li tr dt dd table caption figcaption section article header footer nav main aside center details "
	"summary legend form body html".split()
)
# Forms and buttons are dropped from the safe HTML (they could post somewhere), but their words are mail.
_DROPPED = DROP_CONTENT - {"form", "button"}
_SPACES = re.compile(r"[ \t\n\r\f]+")
_BLANK_LINES = re.compile(r"\n{3,}")
# Invisible characters (preheader padding, soft hyphens) go; no-break spaces are spaces.
_INVISIBLE = {ord(c): None for c in "\u00ad\u034f\u200b\u200c\u200d\u2060\ufeff"} | {0xA0: " "}
_LINK_SCHEMES = re.compile(r"^\s*(https?:|mailto:)", re.I)


def html_to_text(html: str, budget: Budget | None = None) -> str:
	"""Plain text of `html`. Raises BudgetExceeded only, when `budget` runs out."""
	writer = _Writer()
	for kind, name, attributes, self_closing in tokens(html or "", budget):
		if kind is TEXT:
			writer.text(name)
		elif kind is START:
			writer.start(name, attributes, self_closing)
		else:
			writer.end(name)
	writer.end_link()
	lines = "".join(writer.out).split("\n")
	return _BLANK_LINES.sub("\n\n", "\n".join(line.rstrip() for line in lines)).strip()


def strip_tags(html: str) -> str:
	"""A rough text of `html` for when there is no time for more: tags out, spaces collapsed. Linear."""
	text = re.sub(r"<[^<>]*>", " ", html or "")  # [^<>]: a failed match never rescans past the next "<"
	return _SPACES.sub(" ", unescape(text).translate(_INVISIBLE)).strip()


class _Writer:
	def __init__(self):
		self.out: list[str] = []
		self.started = False  # nothing written yet: no newlines before the first words
		self.want = 0  # newlines wanted before the next words: 1 a line break, 2 a blank line
		self.newlines = 0  # newlines at the end of what is written
		self.space = False  # a space before the next words, unless they start a line
		self.separator = ""  # " | " before the next words, unless they start a line
		self.marker = ""  # list item marker before the next words
		self.cell_start = False  # in a table cell with no words yet: its blocks add no lines
		self.dropping = 0
		self.pre = 0
		self.quote = 0
		self.lists: list[list] = []  # [tag, next number]
		self.rows: list[int] = []  # cells so far in the current row, one per open table
		self.link: tuple[str, int] | None = None  # (url, where its text starts in out)

	def text(self, raw: str) -> None:
		if self.dropping:
			return
		text = unescape(raw).translate(_INVISIBLE)
		if self.pre:
			self._pre(text)
			return
		text = _SPACES.sub(" ", text)
		if text.startswith(" "):
			self.space = True
		words = text.strip(" ")
		if words:
			self._write(words)
			self.space = text.endswith(" ")

	def start(self, tag: str, attributes: dict[str, str], self_closing: bool = False) -> None:
		if tag in _DROPPED:
			if not self_closing and tag not in EMPTY_ELEMENTS:  # as the sanitiser drops
				self.dropping += 1
			return
		if self.dropping:
			return
		if tag == "br":
			self._line_break()
		elif tag == "a":
			self.end_link()
			url = attribute_value(attributes.get("href", "")).strip()
			if _LINK_SCHEMES.match(url):
				self.link = (url, len(self.out))
		elif tag in ("td", "th"):
			if self.rows:
				if self.rows[-1]:
					self.want = 0
					self.separator = " | "
				self.rows[-1] += 1
			self.cell_start = True
		elif tag == "tr":
			self._end_cell()
			self._block(1)
			if self.rows:
				self.rows[-1] = 0
		elif tag == "table":
			self._end_cell()
			self._block(1)
			self.rows.append(0)
		elif tag in ("ul", "ol"):
			self._block(1 if self.lists else 2)
			start = attributes.get("start", "1").strip()
			start = int(start) if start.isascii() and start.isdigit() and len(start) < 9 else 1
			self.lists.append([tag, start])
		elif tag == "li":
			self._block(1)
			kind, number = self.lists[-1] if self.lists else ("ul", 0)
			self.marker = "  " * max(0, len(self.lists) - 1) + ("- " if kind == "ul" else f"{number}. ")
			if self.lists:
				self.lists[-1][1] += 1
		elif tag == "hr":
			self._block(2)
			self._write("---")
			self._block(2)
		else:
			self._block_tag(tag)
			if tag == "pre":
				self.pre += 1
			elif tag == "blockquote":
				self.quote += 1

	def end(self, tag: str) -> None:
		if tag in DROP_CONTENT:  # any end of a dropped element ends the drop, as in the sanitiser
			self.dropping = max(0, self.dropping - 1)
			return
		if self.dropping:
			return
		if tag == "a":
			self.end_link()
		elif tag in ("td", "th"):
			self._end_cell()
		elif tag in ("tr", "table"):
			self._end_cell()
			if tag == "table" and self.rows:
				self.rows.pop()
			self._block(1)
		elif tag in ("ul", "ol"):
			if self.lists:
				self.lists.pop()
			self._block(1 if self.lists else 2)
		else:
			self._block_tag(tag)
			if tag == "pre":
				self.pre = max(0, self.pre - 1)
			elif tag == "blockquote":
				self.quote = max(0, self.quote - 1)

	def end_link(self) -> None:
		if self.link is None:
			return
		url, at = self.link
		self.link = None
		text = "".join(self.out[at:]).strip()
		if text and _bare(text) != _bare(url):
			self.space = True
			self._write(f"({url})")

	def _end_cell(self) -> None:
		# An empty cell's separator and "no lines yet" end with it: the next row starts on its own line.
		self.cell_start = False
		self.separator = ""

	def _block_tag(self, tag: str) -> None:
		if tag in PARAGRAPHS:
			self._block(2)
		elif tag in LINES:
			self._block(1)

	def _block(self, newlines: int) -> None:
		if not self.cell_start:
			self.want = max(self.want, newlines)
			self.space = False

	def _line_break(self) -> None:
		if self.started:
			self._newlines()
			self.out.append("\n")
			self.newlines += 1
			self.space = False
			self.separator = ""

	def _newlines(self) -> None:
		missing = self.want - self.newlines
		if missing > 0:
			self.out.append("\n" * missing)
			self.newlines += missing
		self.want = 0

	def _write(self, words: str) -> None:
		if self.started:
			self._newlines()
		else:
			self.want = 0  # no newlines before the first words
		if self.newlines or not self.started:  # at the start of a line
			words = "> " * self.quote + self.marker + words
		elif self.separator:
			words = self.separator + words
		elif self.space:
			words = " " + words
		self.out.append(words)
		self.started = True
		self.newlines = 0
		self.space = self.cell_start = False
		self.separator = self.marker = ""

	def _pre(self, text: str) -> None:
		text = text.replace("\r\n", "\n").replace("\r", "\n")
		if not text:
			return
		body = text.rstrip("\n")
		if body:
			self._write(body)
		if len(text) > len(body):
			self.want = 0
			self.out.append("\n" * (len(text) - len(body)))
			self.newlines += len(text) - len(body)
			self.started = True


def _bare(url: str) -> str:
	"""A url or link text without what readers skip: scheme, "www.", a final "/" and case."""
	url = url.strip().lower()
	for prefix in ("mailto:", "https://", "http://", "www."):
		if url.startswith(prefix):
			url = url[len(prefix) :]
	return url.rstrip("/")
