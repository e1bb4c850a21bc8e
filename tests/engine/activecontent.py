"""One judge of sanitised HTML for the XSS-vector and fuzz tests: does it hold anything active, or any load?

Deliberately independent of the sanitiser: its own lists of inert tags and attributes (a copy of today's
allowlist, so widening that allowlist means deciding here too), Python's html.parser to read the output,
and a second, stricter look at the raw text for any "<" that does not open or close an inert tag.
"""

from __future__ import annotations

import re
from html import unescape
from html.parser import HTMLParser

INERT_TAGS = frozenset(
	"a abbr b bdi bdo blockquote br caption center cite code col colgroup dd del details dfn div dl dt em "
	"figcaption figure font h1 h2 h3 h4 h5 h6 hr i img ins kbd li mark ol p pre q s samp small span strike "
	"strong sub summary sup table tbody td tfoot th thead tr tt u ul var".split()
)
INERT_ATTRIBUTES = frozenset(
	"align alt bgcolor border cellpadding cellspacing color colspan dir face height href lang rowspan size "
	"span src style title valign width start type cite data-remote-src rel target".split()
)
# Every attribute a browser (any browser, any age) reads as a URL to follow or load.
URL_ATTRIBUTES = frozenset(
	"href src action formaction background poster srcset xlink:href data codebase dynsrc lowsrc cite "
	"longdesc usemap profile manifest icon ping archive classid srcdoc data-remote-src".split()
)
LINK_SCHEMES = ("http", "https", "mailto")
_SCHEME = re.compile(r"^([a-z][a-z0-9+.\-]*):")
_INVISIBLE = re.compile(r"[\x00-\x20\x7f-\x9f\s]+")
_BAD_STYLE = re.compile(
	r"url\s*\(|expression|behavio|-moz-binding|import|javascript|vbscript|position|\\", re.IGNORECASE
)
_TAG_START = re.compile(r"<(/?)([^\s/>]*)")


def active_content(html: str) -> list[str]:
	"""Everything in `html` that could run, load or navigate somewhere unasked; [] when it is inert."""
	problems: list[str] = []
	for match in _TAG_START.finditer(html):
		if match.group(2).lower() not in INERT_TAGS:
			problems.append(f"markup that is not an inert tag: {html[match.start() : match.start() + 40]!r}")
	reader = _Reader(problems)
	reader.feed(html)
	reader.close()
	return problems


class _Reader(HTMLParser):
	def __init__(self, problems: list[str]):
		super().__init__(convert_charrefs=True)
		self.problems = problems

	def handle_starttag(self, tag, attrs):
		if tag not in INERT_TAGS:
			self.problems.append(f"tag <{tag}>")
		for name, value in attrs:
			self._attribute(tag, name, value or "")

	def handle_startendtag(self, tag, attrs):
		self.handle_starttag(tag, attrs)

	def handle_endtag(self, tag):
		if tag not in INERT_TAGS:
			self.problems.append(f"end tag </{tag}>")

	def handle_comment(self, data):
		self.problems.append(f"comment {data[:40]!r}")  # conditional comments are markup to old IE

	def handle_decl(self, decl):
		self.problems.append(f"declaration {decl[:40]!r}")

	def handle_pi(self, data):
		self.problems.append(f"processing instruction {data[:40]!r}")

	def unknown_decl(self, data):
		self.problems.append(f"declaration {data[:40]!r}")

	def _attribute(self, tag: str, name: str, value: str) -> None:
		where = f"<{tag} {name}={value[:60]!r}>"
		if name.startswith("on"):
			self.problems.append(f"event handler {where}")
		if name not in INERT_ATTRIBUTES:
			self.problems.append(f"attribute {where}")
		if name in URL_ATTRIBUTES:
			self._url(tag, name, value, where)
		if name == "style":
			without_important = re.sub(r"!\s*important", "", value, flags=re.I)
			if _BAD_STYLE.search(unescape(without_important)):
				self.problems.append(f"style {where}")

	def _url(self, tag: str, name: str, value: str, where: str) -> None:
		url = _INVISIBLE.sub("", unescape(value)).lower()  # what a URL parser is left with
		scheme = _SCHEME.match(url)
		if name == "src":  # loads at once: only the message's own parts, or an inline image
			if not (url.startswith("cid:") or re.match(r"data:image/(png|gif|jpe?g|webp);", url)):
				self.problems.append(f"load {where}")
		elif name == "data-remote-src":  # held back: shown only when asked, and never as anything but http(s)
			if tag != "img" or not (scheme and scheme.group(1) in ("http", "https") or url.startswith("//")):
				self.problems.append(f"held-back image that is not an http(s) image {where}")
		elif name in ("href", "cite"):
			if scheme and scheme.group(1) not in LINK_SCHEMES:
				self.problems.append(f"scheme {where}")
			if url.startswith(("\\", "/\\")):
				self.problems.append(f"odd link {where}")
		else:
			self.problems.append(f"url attribute {where}")
