"""A message's HTML costs at most its budget: too long is cut, too slow falls back to the plain text."""

import time

import pytest

from email_sync.engine import htmltext, parse
from email_sync.engine.budget import Budget, BudgetExceeded
from email_sync.engine.htmltext import html_to_text
from email_sync.engine.parse import parse_message
from email_sync.engine.sanitize import safe_html_for_storage, sanitize_email_html

BIG = "<p>" + "<b>word</b> " * 200_000 + "</p>"  # 2.4 MB


def spent() -> Budget:
	return Budget(seconds=-1)


def test_a_spent_budget_stops_the_sanitiser_and_the_converter():
	with pytest.raises(BudgetExceeded):
		sanitize_email_html(BIG, spent())
	with pytest.raises(BudgetExceeded):
		html_to_text(BIG, spent())


def test_a_spent_budget_stops_a_single_huge_tag():
	with pytest.raises(BudgetExceeded):
		sanitize_email_html("<a " + "x = 1 " * 100_000 + ">", spent())


def test_small_html_never_looks_at_the_clock():
	assert sanitize_email_html("<p>hi</p>", spent()) == ("<p>hi</p>", 0)


def test_long_html_is_cut_after_a_tag_and_says_so():
	defects: list[str] = []
	html = "<p>" + "<b>x</b>" * 1000 + "</p>"  # 8007 characters
	cut = Budget(max_html=2048).cut(html, defects)
	assert len(cut) <= 2048 and cut.endswith(">") and html.startswith(cut)
	assert defects == ["HTML body of 8 KB cut to 2 KB"]
	Budget(max_html=2048).cut(html, defects)
	assert len(defects) == 1  # the same cut is noted once


def test_storage_keeps_the_sanitised_html_within_the_cap():
	defects: list[str] = []
	html, remote = safe_html_for_storage(BIG + '<img src="https://t.example/p.gif">', "text", defects)
	assert html.startswith("<p><b>word</b> ") and len(html) < 400 * 1024
	assert remote == 0  # the image was past the cap
	assert defects == ["HTML body of 2344 KB cut to 300 KB"]


def test_storage_falls_back_to_the_text_when_the_time_is_up():
	defects: list[str] = []
	html, remote = safe_html_for_storage(BIG, "Dear Ana,\n<see> below", defects, Budget(seconds=-1))
	assert (html, remote) == ("Dear Ana,<br>&lt;see&gt; below", 0)
	assert defects[-1] == "HTML not kept: sanitising it exceeded the -1 s budget; the plain text is stored"


def test_storage_never_raises(monkeypatch):
	def broken(*args):
		raise ValueError("unforeseen")

	monkeypatch.setattr("email_sync.engine.sanitize.sanitize_email_html", broken)
	defects: list[str] = []
	assert safe_html_for_storage("<p>x</p>", "x", defects) == ("x", 0)
	assert "could not be sanitised (ValueError: unforeseen)" in defects[0]
	assert safe_html_for_storage(None, None) == ("", 0)


def test_text_falls_back_to_a_rough_strip_when_the_time_is_up(monkeypatch):
	def slow(html, budget=None):
		raise BudgetExceeded("exceeded the 1 s budget")

	monkeypatch.setattr(htmltext, "html_to_text", slow)
	defects: list[str] = []
	assert parse.html_to_text("<p>Dear <b>Ana</b> &amp; co<p>bye", defects) == "Dear Ana & co bye"
	assert defects == ["HTML converted to text roughly: converting it exceeded the 1 s budget"]


def test_rough_strip_is_linear():
	start = time.perf_counter()
	htmltext.strip_tags("<a" * 500_000 + "<b>" * 100_000)
	assert time.perf_counter() - start < 1.0


def test_a_huge_html_only_message_parses_quickly_with_a_defect():
	body = "<html><body>" + "<p>Line of the newsletter &amp; more.</p>\n" * 60_000 + "</body></html>"
	headers = "From: a@b.example\r\nSubject: big\r\nContent-Type: text/html; charset=utf-8\r\n\r\n"
	raw = (headers + body).encode()
	start = time.perf_counter()
	message = parse_message(raw)
	assert time.perf_counter() - start < 1.0
	assert message.text.startswith("Line of the newsletter & more.\n\nLine of")
	assert "HTML body of 2461 KB cut to 300 KB" in message.defects
	assert message.html == body  # the message keeps its HTML whole; only what is read from it is cut
