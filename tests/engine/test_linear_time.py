"""No input can stall a mailbox: markup that makes regular expressions or html.parser go quadratic is read in
linear time, by the sanitiser and by the HTML-to-text conversion alike.

Each input is one a sender could put in an email; every one of them took seconds to a minute before.
The bound is generous (a 2-core CI runner, other tests running): linear code takes a few hundredths.
"""

import time

import pytest

from email_sync.engine.htmltext import html_to_text
from email_sync.engine.sanitize import sanitize_email_html

LIMIT = 1.0  # seconds, per call


def realistic_html(size: int = 2 * 1024 * 1024) -> str:
	"""A newsletter-like body: nested tables, inline styles, links with query strings, images, entities."""
	row = (
		'<tr><td style="color: #333; font-size: 14px; padding: 8px" class="c"><p>Dear <b>Ana</b>, see '
		'<a href="https://acme.example/order/7?utm_source=mail&amp;utm_medium=x">order 7</a> &amp; reply.</p>'
		'<img src="https://t.example/p.gif" width="1" height="1" alt=""><!-- tracking -->'
		'<span style="display: none">caf&eacute; &nbsp;&zwnj;</span><br/></td>'
		"<td><ul><li>one</li><li>two <i>2</i></li></ul></td></tr>\n"
	)
	head = '<!DOCTYPE html><html><head><meta charset="utf-8"><style>p{margin:0}</style></head><body><table>'
	return head + row * (size // len(row)) + "</table></body></html>"


PATHOLOGICAL = {
	"unterminated tag name": "<a" + "b" * 30000,
	"unterminated tags": "<a " * 10_000,
	"unterminated p tags": "<p " * 10_000,
	"unterminated quoted attributes": '<a x="' * 10_000,
	"unterminated single-quoted hrefs": "<a href='" * 10_000,
	"unterminated unquoted attributes": "<a x=" * 10_000,
	"unterminated unquoted attributes, 1 MB": "<a x=" * 200_000,
	"one tag, attribute flood": "<a " + " ".join(f"x{i}=y" for i in range(100_000)) + ">",
	"one tag, same attribute flood": "<img " + "x=1 " * 200_000 + ">",
	"unterminated tag, attribute flood": "<img " + "alt='a' " * 200_000,
	"quoted '>' flood": '<a title="' + ">" * 300_000 + '">x</a>' * 10_000,
	"unmatched closes after opens": "<b>" * 20_000 + "</i>" * 20_000,
	"unmatched closes, more": "<b>" * 50_000 + "</i>" * 50_000,
	"closes of what is open far down": "<i>" + "<b>" * 50_000 + "</i><i>" * 20_000,
	"deep nesting": "<div>" * 100_000,
	"deep nesting, closed": "<div>" * 100_000 + "</div>" * 100_000,
	"unclosed scripts": "<script>" * 10_000,
	"script ends that never match": "<script></scrip" * 20_000,
	"raw text tags, each closed far away": ("<style>" * 1000 + "</style>") * 100,
	"unterminated comments": "<!--" * 10_000,
	"comment openers and fake closes": "<!-- --!" * 50_000,
	"empty comments": "<!---->" * 100_000,
	"cdata openers": "<![CDATA[" * 10_000,
	"declaration openers": "<!DOCTYPE" * 10_000,
	"processing instructions": "<?xml " * 10_000,
	"bogus end tags": "</ " * 30_000,
	"bare brackets": "<" * 500_000,
	"brackets and letters": "<<a<b<c" * 50_000,
	"entity run": "&amp;" * 500_000,
	"numeric entity run": "&#x3c;&#60;" * 200_000,
	"unterminated entities": "&" + "a" * 1_000_000,
	"entities in an attribute": '<a title="' + "&lt;" * 300_000 + '">x</a>',
	"whitespace flood": " \t\n" * 500_000,
	"pre with spaces": "<pre>" + " " * 1_000_000 + "</pre>",
	"tables flood": "<table><tr><td>" * 30_000,
	"lists flood": "<ul><li>" * 50_000,
	"links flood": '<a href="https://x.example/">x' * 50_000,
	"2 MB realistic": realistic_html(),
}


def fastest(convert, html: str, tries: int = 3) -> float:
	"""Wall-clock seconds of the fastest of a few runs, stopping at the first within LIMIT: a busy machine
	can slow one run, but only quadratic code is slow every time."""
	best = float("inf")
	for _ in range(tries):
		start = time.perf_counter()
		convert(html)
		best = min(best, time.perf_counter() - start)
		if best < LIMIT:
			break
	return best


@pytest.mark.parametrize("name", PATHOLOGICAL)
@pytest.mark.parametrize("convert", [sanitize_email_html, html_to_text], ids=["sanitise", "text"])
def test_pathological_html_is_read_in_linear_time(name, convert):
	elapsed = fastest(convert, PATHOLOGICAL[name])
	assert elapsed < LIMIT, f"{convert.__name__} took {elapsed:.2f} s on {name!r}"


@pytest.mark.parametrize("convert", [sanitize_email_html, html_to_text], ids=["sanitise", "text"])
def test_time_grows_linearly(convert):
	"""Four times the input costs about four times the time, not sixteen: growth, not just one size."""

	def cost(n: int) -> float:
		html = ("<a " * n) + ('<b x="' * n) + ("<i>" * n + "</u>" * n) + ("<!--" * n)
		best = float("inf")
		for _ in range(3):
			start = time.perf_counter()
			convert(html)
			best = min(best, time.perf_counter() - start)
		return best

	small, large = cost(5_000), cost(20_000)
	assert large < max(small * 10, 0.05), (small, large)
