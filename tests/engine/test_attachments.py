"""Attachment names made safe to store, and the policy that decides which attachments an account keeps."""

import json

import pytest

from email_sync.engine.attachments import DEFAULT_BLOCKED, MB, AttachmentPolicy, decide, safe_filename
from email_sync.engine.model import Attachment, Message


@pytest.mark.parametrize(
	"name,expected",
	[
		("report.pdf", "report.pdf"),
		("Angebot Nr. 5 – März.pdf", "Angebot Nr. 5 – März.pdf"),
		("../../x.txt", "x.txt"),
		("C:\\TEMP\\y.png", "y.png"),
		("\\\\server\\share\\z.doc", "z.doc"),
		("/etc/passwd", "passwd"),
		("%2e%2e%2f%2e%2e%2fsecret.txt", "secret.txt"),
		("My%20Report.pdf", "My Report.pdf"),
		("100%.pdf", "100%.pdf"),
		("in\x00voice\x07.pdf", "invoice.pdf"),
		("invoice\u202egpj.exe", "invoicegpj.exe"),  # the override would show it as "invoiceexe.jpg"
		("zero\u200bwidth.txt", "zerowidth.txt"),
		("tab\tand\nnewline.txt", "tab and newline.txt"),
		('what?<are>"these"|*.txt', "what__are__these___.txt"),
		("report: final.pdf", "report_ final.pdf"),
		("CON", "_CON"),
		("con.txt", "_con.txt"),
		("LPT1.log", "_LPT1.log"),
		("COM9.tar.gz", "_COM9.tar.gz"),
		("CONTRACT.pdf", "CONTRACT.pdf"),
		(".htaccess", "attachment.htaccess"),
		("..hidden.txt", "hidden.txt"),
		("trailing.exe. . ", "trailing.exe"),
		("e\u0301te\u0301.txt", "été.txt"),  # NFC
		("   spaced    out   .pdf", "spaced out.pdf"),
	],
)
def test_safe_filename(name, expected):
	assert safe_filename(name) == expected


@pytest.mark.parametrize(
	"name,content_type,expected",
	[
		("", "application/pdf", "attachment.pdf"),
		("...", "image/jpeg", "attachment.jpg"),
		(". . .", "text/plain", "attachment.txt"),
		("", "text/calendar", "attachment.ics"),
		("", "application/x-unknown", "attachment"),
		("", "", "attachment"),
		("/", "message/rfc822", "attachment.eml"),
		("\u202e\x00", "application/octet-stream", "attachment.bin"),
	],
)
def test_safe_filename_is_never_empty(name, content_type, expected):
	assert safe_filename(name, content_type) == expected


@pytest.mark.parametrize("stem", ["x" * 500, "é" * 300, "漢" * 200, "😀" * 100])
def test_long_names_keep_their_extension_and_fit_file_systems(stem):
	safe = safe_filename(stem + ".docx")
	assert safe.endswith(".docx")
	assert len(safe) <= 140 and len(safe.encode("utf-8")) <= 240
	assert safe[:-5] and set(safe[:-5]) == {stem[0]}


@pytest.mark.parametrize(
	"name",
	[
		*["../../x.txt", "\x00", "\u202e", ".", "..", "a" * 10000, "%2e%2e%2f", "nul", "\\", " "],
		*["\ud800x.txt", ":" * 5],
	],
)
def test_safe_filename_invariants(name):
	safe = safe_filename(name, "application/pdf")
	assert safe and not safe.startswith(".") and not safe.endswith((".", " "))
	assert not any(c in safe for c in '/\\:<>"|?*\x00\u202e')
	assert len(safe) <= 140 and len(safe.encode("utf-8")) <= 240


def test_safe_filename_is_linear():
	import time

	start = time.perf_counter()
	safe_filename("a." * 100_000 + "\\" * 100_000 + "%2e" * 50_000)
	assert time.perf_counter() - start < 1


def att(name="report.pdf", size=1000, content_type="application/pdf", original=None, **kw):
	return Attachment(safe_filename(name), content_type, size, original_filename=original or name, **kw)


@pytest.mark.parametrize(
	"attachment,reason",
	[
		(att(), ""),
		(att("setup.exe"), "Not stored: .exe files are blocked."),
		(att("SETUP.EXE"), "Not stored: .exe files are blocked."),
		(att("invoice.pdf.exe"), "Not stored: .exe files are blocked."),
		(att("invoice.exe.pdf"), ""),
		(att("x.exe."), "Not stored: .exe files are blocked."),
		(att("x.exe . "), "Not stored: .exe files are blocked."),
		(att("invoice\u202efdp.js"), "Not stored: .js files are blocked."),
		(att("run.ps1"), "Not stored: .ps1 files are blocked."),
		(att("disk.iso"), "Not stored: .iso files are blocked."),
		(att("photo.jpg", content_type="application/x-msdownload"), "Not stored: .exe files are blocked."),
		(att("data", content_type="application/x-msdos-program"), "Not stored: .exe files are blocked."),
		(att("install", content_type="application/x-sh"), "Not stored: .sh files are blocked."),
		(att("page", content_type="application/hta"), "Not stored: .hta files are blocked."),
		(att("x.pdf", original="..\\x.scr"), "Not stored: .scr files are blocked."),
		(
			att("big.pdf", size=int(31.2 * MB)),
			"Not stored: 31.2 MB is over this account's 25 MB limit per attachment.",
		),
		(att("exact.pdf", size=25 * MB), ""),
		(att("Fwd.exe.eml", content_type="message/rfc822", is_forwarded_message=True), ""),
	],
)
def test_decide_with_the_default_policy(attachment, reason):
	assert decide(attachment, AttachmentPolicy()) == reason


def test_decide_modes():
	big = att("big.pdf", size=300 * MB)
	assert decide(big, AttachmentPolicy(mode="All")) == ""
	assert decide(att("a.exe"), AttachmentPolicy(mode="All")) == "Not stored: .exe files are blocked."
	assert decide(att(), AttachmentPolicy(mode="None")) == "Not stored: this account stores no attachments."
	assert decide(big, AttachmentPolicy(max_bytes=int(2.5 * MB))) == (
		"Not stored: 300 MB is over this account's 2.5 MB limit per attachment."
	)


def test_decide_counts_the_content_when_size_is_missing():
	attachment = Attachment("a.pdf", "application/pdf", 0, content=b"x" * (2 * MB))
	assert decide(attachment, AttachmentPolicy(max_bytes=MB)).startswith("Not stored: 2 MB is over")


@pytest.mark.parametrize(
	"mode,max_mb,blocked,expected",
	[
		("All", 10, "", ("All", 10 * MB, DEFAULT_BLOCKED)),
		("up to limit", "5", None, ("Up to limit", 5 * MB, DEFAULT_BLOCKED)),
		("NONE", 25, "exe", ("None", 25 * MB, {"exe"})),
		("", None, ".exe, .BAT;js\n*.ps1  com", ("Up to limit", 25 * MB, {"exe", "bat", "js", "ps1", "com"})),
		("weird", "x", " , ", ("Up to limit", 25 * MB, DEFAULT_BLOCKED)),
		("Up to limit", 0, "", ("Up to limit", 25 * MB, DEFAULT_BLOCKED)),
		("Up to limit", -3, "", ("Up to limit", 25 * MB, DEFAULT_BLOCKED)),
		("Up to limit", 0.5, "", ("Up to limit", MB // 2, DEFAULT_BLOCKED)),
	],
)
def test_policy_from_settings(mode, max_mb, blocked, expected):
	policy = AttachmentPolicy.from_settings(mode, max_mb, blocked)
	got = (policy.mode, policy.max_bytes, set(policy.blocked_extensions))
	assert got == (expected[0], expected[1], set(expected[2]))


def test_an_administrator_list_replaces_the_default():
	policy = AttachmentPolicy.from_settings("All", 25, "exe")
	assert decide(att("disk.iso"), policy) == ""
	assert decide(att("a.exe"), policy) == "Not stored: .exe files are blocked."


def test_default_list_covers_executables_and_scripts():
	for ext in "exe com bat cmd msi scr pif cpl js jse vbs vbe wsf wsh ps1 psm1 jar hta lnk reg dll iso".split():
		assert ext in DEFAULT_BLOCKED


def test_content_stays_out_of_equality_repr_hash_and_json():
	one = Attachment("a.pdf", "application/pdf", 3, content=b"abc", original_filename="a.pdf")
	two = Attachment("a.pdf", "application/pdf", 3, content=b"xyz", original_filename="a.pdf")
	assert one == two and hash(one) == hash(two)
	assert "abc" not in repr(one)
	message = Message(key="k", attachments=[one])
	data = message.to_json()
	assert data["attachments"] == [
		{
			"filename": "a.pdf",
			"content_type": "application/pdf",
			"size": 3,
			"content_id": "",
			"inline": False,
			"is_forwarded_message": False,
			"original_filename": "a.pdf",
			"has_content": True,
		}
	]
	assert "abc" not in json.dumps(data)
	assert message.attachments[0].content == b"abc"  # serialising took nothing away
