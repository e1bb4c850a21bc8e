"""Hostile email HTML comes out inert; ordinary email HTML keeps its look."""

import pytest

from email_sync.engine.sanitize import sanitize_email_html, text_to_html

HOSTILE = [
	'<script>alert(1)</script>',
	'<img src=x onerror="alert(1)">',
	'<a href="javascript:alert(1)">click</a>',
	'<a href=" JaVaScRiPt:alert(1)">click</a>',
	'<svg><script>alert(1)</script></svg>',
	'<iframe src="https://evil.example"></iframe>',
	'<form action="https://evil.example"><input name=p><button>Go</button></form>',
	'<style>body{display:none}</style>',
	'<link rel=stylesheet href="https://evil.example/x.css">',
	'<meta http-equiv="refresh" content="0;url=https://evil.example">',
	'<base href="https://evil.example/">',
	'<div style="background:url(https://evil.example/t.png)">x</div>',
	'<div style="position:fixed;top:0;left:0;width:100%">overlay</div>',
	'<div style="width: expression(alert(1))">x</div>',
	'<object data="x.swf"></object><embed src="x.swf">',
	'<p onclick="alert(1)" onmouseover=alert(2)>hi</p>',
	'<img src="data:text/html;base64,PHNjcmlwdD4=">',
	'<math><mi xlink:href="javascript:alert(1)">x</mi></math>',
	'<<script>script>alert(1)<</script>/script>',
	'<textarea><script>alert(1)</script></textarea>',
]


@pytest.mark.parametrize("html", HOSTILE)
def test_hostile_markup_is_inert(html):
	safe, _ = sanitize_email_html(html)
	lowered = safe.lower()
	for bad in ("<script", "onerror", "onclick", "onmouseover", "javascript:", "<iframe", "<form", "<input",
		"<button", "<style", "<link", "<meta", "<base", "url(", "expression", "position", "<object", "<embed",
		"<svg", "data:text"):
		assert bad not in lowered, (html, safe)


def test_remote_images_are_held_back_and_counted():
	safe, remote = sanitize_email_html(
		'<img src="https://tracker.example/p.gif" width=1><img src="//cdn.example/logo.png">'
		'<img src="cid:logo@x"><img src="data:image/png;base64,iVBORw0KGgo=">'
	)
	assert remote == 2
	assert 'data-remote-src="https://tracker.example/p.gif"' in safe and ' src="https://' not in safe
	assert 'src="cid:logo@x"' in safe and 'src="data:image/png;base64,' in safe


def test_sanitising_twice_changes_nothing():
	once, remote = sanitize_email_html('<p style="color: red">x</p><img src="https://t.example/p.gif"><a href="https://a.example">a</a>')
	twice, remote_again = sanitize_email_html(once)
	assert twice == once and remote == remote_again == 1


def test_ordinary_email_keeps_its_look():
	html = (
		'<html><head><title>t</title><style>p{}</style></head><body>'
		'<table width="600" cellpadding="4"><tr><td style="color: #333; font-size: 14px; padding: 8px">'
		'<p>Dear <b>Ana</b>,</p><p>See <a href="https://acme.example/order/7">order 7</a> &amp; reply.</p>'
		'</td></tr></table></body></html>'
	)
	safe, remote = sanitize_email_html(html)
	assert remote == 0
	assert '<td style="color: #333; font-size: 14px; padding: 8px">' in safe
	assert '<a href="https://acme.example/order/7" rel="noopener noreferrer" target="_blank">order 7</a>' in safe
	assert "&amp; reply" in safe and "<title>" not in safe and ">t<" not in safe


def test_broken_markup_is_balanced():
	safe, _ = sanitize_email_html("<div><p><b>unclosed <i>tags</div> after")
	assert safe == "<div><p><b>unclosed <i>tags</i></b></p></div> after"


def test_text_to_html_escapes():
	assert text_to_html("a <b>\nc") == "a &lt;b&gt;<br>c"


def test_unclosed_head_does_not_swallow_the_body():
	safe, _ = sanitize_email_html("<html><head><meta charset=utf-8><title>x</title><body><p>kept</p>")
	assert safe == "<p>kept</p>"


def test_entities_and_stray_brackets_survive_as_text():
	safe, _ = sanitize_email_html("5 < 6 &amp; 7 > 3 &lt;b&gt; <3 <!-- note --> <!DOCTYPE html>")
	assert safe == "5 &lt; 6 &amp; 7 &gt; 3 &lt;b&gt; &lt;3  "
