"""Email HTML made safe to show inside the desk: an allowlist, nothing else survives.

No scripts, event handlers, forms, frames, styles sheets or base/meta/link tags; links only to http(s) and
mailto; inline styles only for harmless properties, never with url(); remote images held back as
`data-remote-src` (a tracking pixel reports nothing until the reader asks to see images).
Built on the standard library's HTML parser, so it never raises on broken markup.
"""

from __future__ import annotations

import re
from html import escape
from html.parser import HTMLParser

ALLOWED_TAGS = frozenset(
	"a abbr b bdi bdo blockquote br caption center cite code col colgroup dd del details dfn div dl dt em "
	"figcaption figure font h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s samp small span strike "
	"strong sub summary sup table tbody td tfoot th thead tr tt u ul var".split()
)
VOID_TAGS = frozenset({"br", "hr", "img", "col"})
# Everything inside these goes, text included.
DROP_CONTENT = frozenset(
	"script style head title template noscript iframe frame frameset object embed applet svg math "
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


def sanitize_email_html(html: str) -> tuple[str, int]:
	"""(safe HTML, number of remote images held back)."""
	cleaner = _Cleaner()
	try:
		cleaner.feed(html or "")
		cleaner.close()
	except Exception:  # HTMLParser is lenient; keep what was cleaned so far rather than fail
		pass
	cleaner.close_open_tags()
	return "".join(cleaner.out), cleaner.remote_images


def text_to_html(text: str) -> str:
	return escape(text or "").replace("\n", "<br>")


class _Cleaner(HTMLParser):
	def __init__(self):
		super().__init__(convert_charrefs=True)
		self.out: list[str] = []
		self.open: list[str] = []
		self.dropping = 0
		self.remote_images = 0

	def handle_starttag(self, tag, attrs):
		if tag in DROP_CONTENT:
			if tag not in VOID_TAGS:
				self.dropping += 1
			return
		if self.dropping or tag not in ALLOWED_TAGS:
			return
		self.out.append(f"<{tag}{self._attributes(tag, attrs)}>")
		if tag not in VOID_TAGS:
			self.open.append(tag)

	def handle_startendtag(self, tag, attrs):
		if tag in DROP_CONTENT or self.dropping or tag not in ALLOWED_TAGS:
			return
		self.out.append(f"<{tag}{self._attributes(tag, attrs)}>")

	def handle_endtag(self, tag):
		if tag in DROP_CONTENT:
			self.dropping = max(0, self.dropping - 1)
			return
		if self.dropping or tag not in self.open:
			return
		while self.open:  # close anything left open inside it, so the markup stays balanced
			inner = self.open.pop()
			self.out.append(f"</{inner}>")
			if inner == tag:
				break

	def handle_data(self, data):
		if not self.dropping:
			self.out.append(escape(data, quote=False))

	def close_open_tags(self):
		while self.open:
			self.out.append(f"</{self.open.pop()}>")

	def _attributes(self, tag: str, attrs) -> str:
		kept, extra = [], []
		for name, value in attrs:
			name, value = name.lower(), value or ""
			if name == "data-remote-src" and tag == "img":
				name = "src"  # held back by an earlier pass: stays held back, and is counted again
			if name not in ALLOWED_ATTRIBUTES:
				continue
			if name == "href":
				if not _SAFE_HREF.match(value):
					continue
				extra = [("rel", "noopener noreferrer"), ("target", "_blank")]
			elif name == "src":
				if tag != "img":
					continue
				if re.match(r"^\s*(https?:)?//", value, re.I):
					self.remote_images += 1
					name = "data-remote-src"
				elif not re.match(r"^\s*(cid:|data:image/(png|gif|jpe?g|webp);)", value, re.I):
					continue
			elif name == "style":
				value = _safe_style(value)
				if not value:
					continue
			kept.append((name, value))
		return "".join(f' {n}="{escape(v, quote=True)}"' for n, v in kept + extra)


def _safe_style(style: str) -> str:
	declarations = []
	for declaration in style.split(";"):
		prop, _, value = declaration.partition(":")
		prop, value = prop.strip().lower(), value.strip()
		if prop in SAFE_STYLE_PROPERTIES and value and not _UNSAFE_VALUE.search(value):
			declarations.append(f"{prop}: {value}")
	return "; ".join(declarations)
