"""Published XSS and remote-load vectors come out inert: nothing runs, nothing loads, a second pass agrees.

The vectors are in data/xss_vectors.txt (its header names where they were written after); the judge is
activecontent.py, shared with the fuzz tests.
"""

import re
from pathlib import Path

import pytest
from activecontent import active_content

from email_sync.engine.htmltext import html_to_text
from email_sync.engine.sanitize import sanitize_email_html

DATA = Path(__file__).parent / "data" / "xss_vectors.txt"
_PLACEHOLDER = re.compile(r"\{U\+([0-9A-F]{4,6})\}")  # {U+0000} and the like: one code point


def load_vectors() -> list[str]:
	records = re.split(r"^#---\n", DATA.read_text(encoding="utf-8"), flags=re.M)[1:]  # [0] is the header
	vectors = [_PLACEHOLDER.sub(lambda m: chr(int(m.group(1), 16)), r.removesuffix("\n")) for r in records]
	return [v for v in vectors if v]


VECTORS = load_vectors()


def test_there_are_enough_vectors():
	assert len(VECTORS) >= 300
	assert len(set(VECTORS)) == len(VECTORS), "a vector is listed twice"
	assert any("\x00" in v for v in VECTORS), "{U+0000} placeholders are read"


@pytest.mark.parametrize("vector", VECTORS, ids=[f"{i:03d}" for i in range(len(VECTORS))])
def test_vector_is_inert_and_stable(vector):
	safe, remote = sanitize_email_html(vector)
	assert active_content(safe) == [], (vector, safe)
	again, remote_again = sanitize_email_html(safe)
	assert (again, remote_again) == (safe, remote), "sanitising the output again changed it"
	html_to_text(vector)  # never raises


def test_the_judge_is_not_blind():
	"""The checker itself catches what it must, so a passing suite means something."""
	for bad in (
		"<script>alert(1)</script>",
		'<p onclick="x">x</p>',
		'<a href="java&#x09;script:alert(1)">x</a>',
		'<img src="https://t.example/p.gif">',
		'<img src="//t.example/p.gif">',
		'<div style="background: url(x)">x</div>',
		'<blockquote cite="javascript:x">x</blockquote>',
		"<iframe></iframe>",
		"<!-- x -->",
		'<p style="color: \\72 ed">x</p>',
		'<img data-remote-src="javascript:x">',
		'<table background="https://t.example/b.png"></table>',
	):
		assert active_content(bad), bad
	assert active_content('<p style="color: red !important"><a href="mailto:a@b.example">a</a></p>') == []
