"""HTML mail read as plain text: what a person would read, laid out as they would expect."""

import pytest

from email_sync.engine.htmltext import html_to_text, strip_tags


@pytest.mark.parametrize(
	"html,text",
	[
		("<p>Dear team,</p><p>The <b>invoice</b> is here.</p>", "Dear team,\n\nThe invoice is here."),
		("a<br>b<br/><br>c", "a\nb\n\nc"),
		("<div>Hi Ana,</div><div><br></div><div>Thanks</div>", "Hi Ana,\n\nThanks"),  # Gmail's blank line
		("<div>one</div><div>two</div>", "one\ntwo"),
		("<ul><li>one</li><li>two<ol><li>a</li><li>b</li></ol></li></ul>after", "- one\n- two\n  1. a\n  2. b\n\nafter"),
		('<ol start="3"><li>c</li></ol>', "3. c"),
		('<a href="https://x.example/i">here</a>', "here (https://x.example/i)"),
		('<a href="https://www.x.example/">www.x.example</a>', "www.x.example"),
		('<a href="mailto:ana@acme.example">ana@acme.example</a>', "ana@acme.example"),
		('<a href="javascript:alert(1)">click</a>', "click"),
		('<a href="https://x.example/"><img src="cid:logo"></a>', ""),
		("<table><tr><th>Item</th><th>Qty</th></tr><tr><td>Widget</td><td>2</td></tr></table>", "Item | Qty\nWidget | 2"),
		("<table><tr><td><p>a</p></td><td></td><td><p>b</p></td></tr></table>", "a | b"),
		("<blockquote>quoted<br>reply</blockquote>mine", "> quoted\n> reply\n\nmine"),
		("<pre>  two\n    spaces</pre>", "two\n    spaces"),
		("<h1>Title</h1>body", "Title\n\nbody"),
		("x<hr>y", "x\n\n---\n\ny"),
		("<head><title>t</title><style>p{}</style></head><script>x()</script><p>kept</p>", "kept"),
		("<svg><text>drawn</text></svg>shown<embed src=x>also", "shownalso"),
		("<form>Name: <button>Send</button></form>", "Name: Send"),
		("caf&eacute; &amp; &lt;tag&gt; &#x1F600; a&nbsp;&nbsp;b", "café & <tag> 😀 a b"),
		("  lots   of\n\n  space  ", "lots of space"),
		("pre&zwnj;&#8203;header&shy;", "preheader"),
		("<p>a</p>\n\n\n<p>\n</p><p>b</p>", "a\n\nb"),
		("5 < 6 and 7 > 3", "5 < 6 and 7 > 3"),
		("<p>unclosed <b>tags <i>everywhere", "unclosed tags everywhere"),
	],
)
def test_text(html, text):
	assert html_to_text(html) == text


def test_strip_tags_is_rough_but_readable():
	assert strip_tags("<p>Dear <b>Ana</b> &amp; co<p>bye") == "Dear Ana & co bye"
	assert strip_tags("a <3 b") == "a <3 b"
