"""Email HTML made safe to show inside the desk: an allowlist, nothing else survives.

No scripts, event handlers, forms, frames, styles sheets or base/meta/link tags; links only to http(s) and
mailto; inline styles only for harmless properties, never with url(); remote images held back as
`data-remote-src` (a tracking pixel reports nothing until the reader asks to see images).
A hand-written tokenizer feeds it, linear in time on any input: a regular expression or html.parser takes
minutes on a few hundred kilobytes of unclosed tags, and any sender can send those. Everything is rebuilt
from the allowlist and escaped, so it never passes markup through.
"""

from __future__ import annotations

import functools
import re
from html import escape, unescape
from html.entities import html5 as _ENTITIES

from email_sync.engine.budget import Budget, BudgetExceeded

ALLOWED_TAGS = frozenset(
	"a abbr b bdi bdo blockquote br caption center cite code col colgroup dd del details dfn div dl dt em "
	"figcaption figure font h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s samp small span strike "
	"strong sub summary sup table tbody td tfoot th thead tr tt u ul var".split()
)
VOID_TAGS = frozenset({"br", "hr", "img", "col"})
# Everything inside these goes, text included.
DROP_CONTENT = frozenset(
	"script style title template noscript iframe frame frameset object embed applet svg math "
	"textarea select option button form xml".split()
)
ALLOWED_ATTRIBUTES = frozenset(
	"align alt bgcolor border cellpadding cellspacing color colspan dir face height href lang rowspan size "
	"span src style title valign width start type cite".split()
)
SAFE_STYLE_PROPERTIES = frozenset(
	"""color background-color font font-family font-size font-style font-weight font-variant text-align
	text-decoration text-indent text-transform letter-spacing word-spacing line-height white-space
	vertical-align margin margin-top margin-right margin-bottom margin-left padding padding-top
	padding-right padding-bottom padding-left border border-top border-right border-bottom border-left
	border-color border-style border-width border-collapse border-spacing border-radius width max-width
	min-width height max-height min-height display list-style-type direction word-break overflow-wrap""".split()
)
_UNSAFE_VALUE = re.compile(r"url\s*\(|expression|javascript|vbscript|@import|\\|behavio|-moz-binding|fixed|sticky", re.I)
_SAFE_HREF = re.compile(r"^\s*(https?:|mailto:|#)", re.I)
# Elements that never have content in HTML: one of these cannot start a dropped region.
EMPTY_ELEMENTS = VOID_TAGS | frozenset("embed frame area base input link meta param source wbr".split())


def sanitize_email_html(html: str, budget: Budget | None = None) -> tuple[str, int]:
	"""(safe HTML, number of remote images held back). Raises BudgetExceeded only, when `budget` runs out."""
	cleaner = _Cleaner()
	cleaner.feed(html or "", budget)
	return "".join(cleaner.out), cleaner.remote_images


def text_to_html(text: str) -> str:
	return escape(text or "").replace("\n", "<br>")


def safe_html_for_storage(
	html: str, text: str, defects: list[str] | None = None, budget: Budget | None = None
) -> tuple[str, int]:
	"""(HTML fit to store and show for one message, number of remote images held back). Never raises.

	The HTML is cut to the budget's size cap (a defect "HTML body of N KB cut to M KB" says so) and
	sanitised within the budget's deadline (default: a new Budget, 1 s). When the deadline passes, or the
	unforeseen happens, the plain text stands in: `text_to_html(text)` with 0 remote images, and a defect
	says the HTML was not kept. Defects are appended to `defects` when it is given.
	"""
	budget = budget or Budget()
	try:
		return sanitize_email_html(budget.cut(html or "", defects), budget)
	except BudgetExceeded as e:
		note = f"HTML not kept: sanitising it {e}; the plain text is stored"
	except Exception as e:  # the sanitiser raises nothing else; a stored message must not depend on that
		note = f"HTML not kept: it could not be sanitised ({type(e).__name__}: {e}); the plain text is stored"
	if defects is not None:
		defects.append(note)
	return text_to_html(text), 0


# The tokenizer: a reader, not a validator. It follows the HTML5 tokenizer where that decides what is a tag
# (quoted values may hold ">", raw-text elements end only at their end tag), and every token it yields is
# rebuilt from the allowlist and escaped, so reading something unlike a browser can lose content but never
# smuggle any through. Linear time: every search starts where the last one stopped, or is remembered.
TEXT, START, END = "text", "start", "end"
RAW_TEXT = frozenset(
	"script style textarea title xmp iframe noembed noframes noscript plaintext template".split()
)
_CHECK_EVERY = 4096  # tokens (or attributes) between two looks at the clock
_LETTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_ASCII_LOWER = str.maketrans("ABCDEFGHIJKLMNOPQRSTUVWXYZ", "abcdefghijklmnopqrstuvwxyz")
_TAG_NAME = re.compile(r"[^\t\n\f\r />]*")
# Separators, then an attribute name and "=" if any. Nothing in it can backtrack more than one whitespace run.
_ATTRIBUTE = re.compile(r"[\t\n\f\r /]*(?:([^\t\n\f\r />][^\t\n\f\r />=]*)[\t\n\f\r ]*(=[\t\n\f\r ]*)?)?")
_UNQUOTED = re.compile(r"[^\t\n\f\r >]*")
# Text up to the next "<", and the common, well-formed tag there if it is one, in one match. The tag part
# cannot consume a "<" (nor a ">" inside quotes), so attempts from two "<" never scan the same text, and it
# reads a tag exactly as _read_tag would; any other tag goes there.
_TEXT_THEN_TAG = re.compile(
	r"""([^<]*)(?:<(/?)([A-Za-z][^\t\n\f\r />"'<=]*)((?:[\t\n\f\r ]+[^\t\n\f\r />"'<=]+"""
	r"""(?:=(?:"[^"<>]*"|'[^'<>]*'|[^\t\n\f\r >"'<=`]+))?)*)[\t\n\f\r ]*(/?)>)?"""
)
_PLAIN_ATTRIBUTE = re.compile(r"""([^\t\n\f\r />"'<=]+)(?:=(?:"([^"]*)"|'([^']*)'|([^\t\n\f\r >]+)))?""")
_UNCLOSABLE = re.compile(r"<[!?]|</[^A-Za-z>]")  # what runs to the end of the input when no ">" is left
_CHARACTER_REFERENCE = re.compile(r"&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)")


def tokens(html: str, budget: Budget | None = None):
	"""Yield (kind, name or text, attributes, self_closing) for `html`, in time linear in its length.

	kind is TEXT (name is the raw text, character references not yet decoded), START (attributes: a dict of
	lower-cased name to raw value, first one wins) or END. Comments, doctypes and raw-text elements (script,
	style, title, ...) yield nothing. Raises BudgetExceeded when `budget` runs out.
	"""
	return _Tokenizer(html, budget).run()


def attribute_value(raw: str) -> str:
	"""An attribute value with its character references decoded as a browser does in attributes."""
	if "&" not in raw:
		return raw
	return _CHARACTER_REFERENCE.sub(functools.partial(_decode_reference, raw), raw)


def _decode_reference(raw: str, match: re.Match) -> str:
	reference = match.group(1)
	if reference[0] == "#" or (reference[-1] == ";" and reference in _ENTITIES):
		return unescape(match.group())
	# Without ";" only a legacy name counts, and not before "=" ("?a=1&copy=2" is a query string).
	if reference[-1] != ";" and reference in _ENTITIES and raw[match.end() : match.end() + 1] != "=":
		return _ENTITIES[reference]
	return match.group()


def _lower(name: str) -> str:
	# ASCII only, as browsers do: "\u212a".lower() is "k", and "<\u212abd>" is no <kbd>.
	return name.lower() if name.isascii() else name.translate(_ASCII_LOWER)


def _plain_attributes(text: str) -> dict[str, str]:
	attributes: dict[str, str] = {}
	for match in _PLAIN_ATTRIBUTE.finditer(text):
		name, double, single, bare = match.groups()
		if not name.islower():
			name = _lower(name)
		if name not in attributes:
			attributes[name] = double if double is not None else single if single is not None else bare or ""
	return attributes


@functools.cache
def _raw_text_end(tag: str) -> re.Pattern:
	return re.compile(rf"</{re.escape(tag)}(?=[\t\n\f\r />])", re.I)


class _Tokenizer:
	def __init__(self, html: str, budget: Budget | None):
		self.html = html
		self.budget = budget
		self.counted = 0
		# Quotes are trusted to close until one runs to the end of the input. After that, tags end at
		# the first ">": scanning for quotes again from every later "<" over the same tail is quadratic.
		self.quotes_close = True
		self.found: dict[str, int] = {}  # what -> position of its next occurrence (-1: none left)

	def _next(self, what: str, position: int, search) -> int:
		"""Where `what` next occurs at or after `position`, searching each stretch of the input once."""
		at = self.found.get(what)
		if at is None or (0 <= at < position):
			at = self.found[what] = search(position)
		return at

	def _next_gt(self, position: int) -> int:
		return self._next(">", position, lambda p: self.html.find(">", p))

	def run(self):
		html, length = self.html, len(self.html)
		position = text_start = 0
		text_then_tag = _TEXT_THEN_TAG.match
		while position < length:
			self.counted += 1
			if self.counted % _CHECK_EVERY == 0 and self.budget is not None:
				self.budget.check()
			match = text_then_tag(html, position)
			lt = match.end(1)  # the "<" that ends this text, or the end of the input
			if match.group(3) is not None:
				name = match.group(3)
				attributes = _plain_attributes(match.group(4)) if match.group(4) else {}
				tag = name if name.islower() else _lower(name), attributes, bool(match.group(5)), match.end()
				char = match.group(2)
			else:
				if lt + 1 >= length:
					break
				if self._next_gt(lt) < 0:  # no ">" left: no tag can end, and a comment would run to the end
					opener = _UNCLOSABLE.search(html, lt)
					position = length
					if opener:
						if opener.start() > text_start:
							yield TEXT, html[text_start : opener.start()], None, False
						text_start = length
					break
				char = html[lt + 1]
				if char in _LETTERS or (char == "/" and html[lt + 2 : lt + 3] in _LETTERS):
					tag = self._read_tag(lt)
					if tag is None:  # no end: the "<" is text, as is what follows it
						position = lt + 1
						continue
				else:
					tag = None
			if tag is not None:
				if lt > text_start:
					yield TEXT, html[text_start:lt], None, False
				name, attributes, self_closing, position = tag
				if char == "/":
					yield END, name, None, False
				elif name in RAW_TEXT:  # content is not markup: skip to its end tag, whatever is inside
					position = self._skip_raw_text(name, position)
				else:
					yield START, name, attributes, self_closing
				text_start = position
				continue
			end = self._markup_end(lt, char)
			if end < 0:  # "<" before a space, a digit, ...: text
				position = lt + 1
				continue
			if lt > text_start:
				yield TEXT, html[text_start:lt], None, False
			position = text_start = end
		if text_start < length:
			yield TEXT, html[text_start:], None, False

	def _markup_end(self, lt: int, char: str) -> int:
		"""Where the comment, doctype, processing instruction or bogus end tag at `lt` ends; -1: text."""
		html, length = self.html, len(self.html)
		if char == "!" and html.startswith("<!--", lt):
			if html.startswith(">", lt + 4) or html.startswith("->", lt + 4):  # <!--> and <!--->
				return html.index(">", lt + 4) + 1
			ends = [
				at + len(closer)
				for closer in ("-->", "--!>")
				if (at := self._next(closer, lt + 4, functools.partial(html.find, closer))) >= 0
			]
			return min(ends) if ends else length
		if char == "/" and lt + 2 >= length:
			return -1
		if char == "/" and html[lt + 2] == ">":
			return lt + 3  # "</>" is nothing at all
		if char in "!?/":
			gt = self._next_gt(lt + 2)
			return gt + 1 if gt >= 0 else length
		return -1

	def _skip_raw_text(self, name: str, position: int) -> int:
		html = self.html

		def search(start: int) -> int:
			close = _raw_text_end(name).search(html, start)
			return close.start() if close else -1

		close = self._next("</" + name, position, search)
		if close < 0:
			return len(html)
		end_tag = self._read_tag(close)
		return end_tag[3] if end_tag else len(html)

	def _read_tag(self, lt: int):
		"""(name, attributes, self_closing, end) of the start or end tag at `lt`, or None if it never ends."""
		html = self.html
		name_at = lt + 2 if html[lt + 1] == "/" else lt + 1
		limit = len(html) if self.quotes_close else self._next_gt(name_at)
		if limit < 0:
			return None
		match = _TAG_NAME.match(html, name_at, limit)  # within the limit: a name may run to the end
		name, position = _lower(match.group()), match.end()
		attributes: dict[str, str] = {}
		seen = 0
		while True:
			match = _ATTRIBUTE.match(html, position, limit)
			start, position = match.start(), match.end()
			if position >= limit:
				break
			attribute = match.group(1)
			if attribute is None:  # at ">"
				return name, attributes, position > start and html[position - 1] == "/", position + 1
			seen += 1
			if self.budget is not None and seen % _CHECK_EVERY == 0:
				self.budget.check()
			value = ""
			if match.group(2) is not None:
				quote = html[position]
				if quote == '"' or quote == "'":
					close = html.find(quote, position + 1, limit)
					if close < 0:
						if self.quotes_close:
							break
						close = limit
					value, position = html[position + 1 : close], min(close + 1, limit)
				elif quote != ">":
					match = _UNQUOTED.match(html, position, limit)
					value, position = match.group(), match.end()
			attributes.setdefault(_lower(attribute), value)
		if self.quotes_close:  # the end of the input came first: inside a quote, or no ">" at all
			self.quotes_close = False
			return None
		# Quotes no longer trusted: the tag ends at the first ">", which is `limit`.
		return name, attributes, html[limit - 1] == "/" and limit - 1 > name_at, limit + 1


class _Cleaner:
	def __init__(self):
		self.out: list[str] = []
		self.open: list[str] = []
		self.open_count: dict[str, int] = {}  # so that closing what was never opened costs nothing
		self.dropping = 0
		self.remote_images = 0

	def feed(self, html: str, budget: Budget | None = None) -> None:
		for kind, name, attributes, self_closing in tokens(html, budget):
			if kind is TEXT:
				if not self.dropping:
					self.out.append(escape(unescape(name), quote=False))
			elif kind is START:
				self._start(name, attributes, self_closing)
			else:
				self._end(name)
		while self.open:
			self.out.append(f"</{self.open.pop()}>")

	def _start(self, tag: str, attributes: dict[str, str], self_closing: bool) -> None:
		if tag in DROP_CONTENT:
			if not self_closing and tag not in EMPTY_ELEMENTS:
				self.dropping += 1
			return
		if self.dropping or tag not in ALLOWED_TAGS:
			return
		self.out.append(f"<{tag}{self._attributes(tag, attributes)}>" if attributes else f"<{tag}>")
		if tag not in VOID_TAGS:  # "<b/>" opens a <b> in HTML: kept open, so the output stays balanced
			self.open.append(tag)
			self.open_count[tag] = self.open_count.get(tag, 0) + 1

	def _end(self, tag: str) -> None:
		if tag in DROP_CONTENT:
			self.dropping = max(0, self.dropping - 1)
			return
		if self.dropping or not self.open_count.get(tag):
			return
		while True:  # close anything left open inside it, so the markup stays balanced
			inner = self.open.pop()
			self.open_count[inner] -= 1
			self.out.append(f"</{inner}>")
			if inner == tag:
				break

	def _attributes(self, tag: str, attributes: dict[str, str]) -> str:
		kept: dict[str, str] = {}
		extra = ""
		for name, raw in attributes.items():
			if name == "data-remote-src" and tag == "img":
				name = "src"  # held back by an earlier pass: stays held back, and is counted again
			if name not in ALLOWED_ATTRIBUTES:
				continue
			value = attribute_value(raw)
			if name == "href" or name == "cite":  # cite is a URL too, if one no browser follows
				if not _SAFE_HREF.match(value):
					continue
				if name == "href":
					extra = ' rel="noopener noreferrer" target="_blank"'
			elif name == "src":
				if tag != "img":
					continue
				if re.match(r"^\s*(https?:)?//", value, re.I):
					name = "data-remote-src"
				elif not re.match(r"^\s*(cid:|data:image/(png|gif|jpe?g|webp);)", value, re.I):
					continue
			elif name == "style":
				value = _safe_style(value)
				if not value:
					continue
			if name in kept:  # the first one wins, as in a browser (and a second pass reads the same)
				continue
			kept[name] = value
			if name == "data-remote-src":
				self.remote_images += 1
		return "".join(f' {n}="{escape(v, quote=True)}"' for n, v in kept.items()) + extra


def _safe_style(style: str) -> str:
	declarations = []
	for declaration in style.split(";"):
		prop, _, value = declaration.partition(":")
		prop, value = prop.strip().lower(), value.strip()
		if prop in SAFE_STYLE_PROPERTIES and value and not _UNSAFE_VALUE.search(value):
			declarations.append(f"{prop}: {value}")
	return "; ".join(declarations)
