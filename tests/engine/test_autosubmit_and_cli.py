"""Auto-submitted detection, and the command admins use to see how a problem mail is read."""

import json
import mailbox
import subprocess
import sys

import pytest

from email_sync.engine import parse_message


def headers(*lines: str, sender="ana@acme.com", subject="Hello") -> bytes:
	return ("\r\n".join([f"From: {sender}", f"Subject: {subject}", *lines]) + "\r\n\r\nbody").encode()


@pytest.mark.parametrize(
	"data,kind",
	[
		(headers("Auto-Submitted: auto-replied"), "auto-reply"),
		(headers("Auto-Submitted: auto-generated"), "auto-generated"),
		(headers("Precedence: bulk"), "bulk"),
		(headers("Precedence: auto_reply"), "auto-reply"),
		(headers("List-Id: <announce.lists.acme.com>"), "list"),
		(headers("List-Unsubscribe: <mailto:u@acme.com>"), "bulk"),
		(headers("X-Autoreply: yes"), "auto-reply"),
		(headers("X-Auto-Response-Suppress: OOF"), "auto-reply"),
		(headers('Content-Type: multipart/report; report-type=delivery-status; boundary="b"'), "bounce"),
		(headers(sender="MAILER-DAEMON@mx.acme.com"), "noreply"),
		(headers(sender="no-reply@acme.com"), "noreply"),
		(headers(sender="donotreply+billing@acme.com"), "noreply"),
		(headers("Return-Path: <>"), "bounce"),
		(headers(subject="Automatic reply: Order 1001"), "auto-reply"),
		(headers(subject="Out of Office: back Monday"), "auto-reply"),
		(headers(subject="Réponse automatique : absent"), "auto-reply"),
	],
)
def test_machine_mail_is_recognised_with_its_reason(data, kind):
	auto = parse_message(data).auto
	assert auto.is_auto and auto.kind == kind and auto.reason


@pytest.mark.parametrize(
	"data",
	[
		headers("Auto-Submitted: no"),
		headers(sender="noreen@acme.com"),
		headers(subject="Re: out of office supplies order"),
		headers("Precedence: normal"),
	],
)
def test_people_are_not_machines(data):
	assert not parse_message(data).auto.is_auto


def run_cli(*args):
	return subprocess.run([sys.executable, "-m", "email_sync.engine", *args], capture_output=True, text=True)


def test_cli_reads_eml_and_mbox_one_json_line_per_message(tmp_path):
	eml = tmp_path / "one.eml"
	eml.write_bytes(
		b"From: =?utf-8?q?Jos=C3=A9?= <jose@acme.com>\r\nSubject: hi\r\nMessage-ID: <1@acme.com>\r\n"
		b"Auto-Submitted: auto-replied\r\n\r\nbody one"
	)
	box = mailbox.mbox(tmp_path / "two.mbox")
	box.add(b"From: a@b.com\r\nSubject: first\r\n\r\nfirst body\r\n")
	box.add(b"To: c@d.com\r\nSubject: second, no sender\r\n\r\nsecond body\r\n")
	box.flush()
	box.close()

	result = run_cli(str(eml), str(tmp_path / "two.mbox"))
	assert result.returncode == 0, result.stderr
	lines = [json.loads(line) for line in result.stdout.splitlines()]
	assert [(line["file"].rsplit("/", 1)[1], line["index"]) for line in lines] == [
		("one.eml", 0),
		("two.mbox", 0),
		("two.mbox", 1),
	]
	first = lines[0]
	assert first["sender"] == {"email": "jose@acme.com", "name": "José"}
	assert first["auto"]["is_auto"] and first["auto"]["kind"] == "auto-reply"
	assert first["text"] == "body one" and first["attachments"] == []
	assert lines[1]["subject"] == "first" and "first body" in lines[1]["text"]
	assert "missing From header" in lines[2]["defects"]


def test_cli_reports_unreadable_files_and_goes_on(tmp_path):
	good = tmp_path / "ok.eml"
	good.write_bytes(b"From: a@b.com\r\n\r\nx")
	result = run_cli(str(tmp_path / "missing.eml"), str(good))
	assert result.returncode == 2
	assert "missing.eml: cannot read" in result.stderr
	assert json.loads(result.stdout)["sender"]["email"] == "a@b.com"
