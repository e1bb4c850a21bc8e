"""The bench commands, run as bench runs them (a subprocess from the sites folder) against the real site."""

import mailbox
import os
import re
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import frappe
import pytest
from factories import deliver, mail, make_account, make_party, new_mailbox, synced, unique


def command(*args: str) -> list[str]:
	return [sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "--site", frappe.local.site, "email-sync", *args]


def bench(*args: str, input: str = "") -> subprocess.CompletedProcess:
	frappe.db.commit()  # what the test wrote must be visible to the command's own connection
	result = subprocess.run(command(*args), check=False, cwd=os.getcwd(), capture_output=True, text=True, timeout=300,
		input=input)  # fmt: skip
	frappe.db.rollback()  # see what the command committed
	return result


@pytest.fixture
def party():
	return make_party("Cli", "Rae")


def test_status_lists_accounts_with_health_and_fix(dovecot):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	frappe.db.set_value("Email Sync Account", account, {"status": "Error", "last_error": "Login refused",
		"last_error_fix": "Check the password."})  # fmt: skip
	result = bench("status")
	assert result.returncode == 0, result.stderr
	assert "Health" in result.stdout and "Last success" in result.stdout
	line = next(line for line in result.stdout.splitlines() if line.startswith(account))
	assert "Error" in line and "red" in line and "Login refused" in line and "Check the password." in line
	frappe.db.set_value("Email Sync Account", account, "status", "Paused")  # off the next runs' doctor
	frappe.db.commit()


def test_sync_files_mail_now_and_prints_counts(dovecot, party):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	deliver(dovecot, box, [mail(f"rae@{party.domain}", box.name, subject="Hello from the CLI")])
	result = bench("sync", box.name)  # by address as well as by name
	assert result.returncode == 0, result.stderr
	assert f"{account}: 1 fetched, 1 filed" in result.stdout
	assert [row.subject for row in synced(account, status="Filed")] == ["Hello from the CLI"]


def test_sync_reports_progress_after_each_batch(dovecot, party):
	from email_sync.sync.runner import sync_account

	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, batch_size=2)
	deliver(dovecot, box, [mail(f"rae@{party.domain}", box.name, subject=f"Part {i}") for i in range(5)])
	seen = []
	sync_account(account, progress=lambda counts, remaining: seen.append(counts["fetched"]))
	assert seen[:3] == [2, 4, 5]


def test_sync_says_why_it_cannot(dovecot):
	unknown = bench("sync", "nobody@nowhere.example")
	assert unknown.returncode == 1 and "No Email Sync Account" in unknown.stderr
	neither = bench("sync")
	assert neither.returncode == 1 and "Name one account, or pass --all" in neither.stderr
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, password="wrong")
	failed = bench("sync", account)
	assert failed.returncode == 1 and "did not sync" in failed.stderr
	assert "failed:" in failed.stderr  # the reason and what to do, from the account


def write_sources(tmp_path, party, to: str) -> list[str]:
	date = datetime(2026, 10, 1, 9, tzinfo=timezone.utc)
	eml = tmp_path / "one.eml"
	eml.write_bytes(mail(f"rae@{party.domain}", to, subject="From an eml file", date=date))
	box = mailbox.mbox(str(tmp_path / "archive.mbox"))
	for i in range(3):
		box.add(mail(f"rae@{party.domain}", to, subject=f"From an mbox {i}", date=date))
	box.close()
	maildir = mailbox.Maildir(str(tmp_path / "Maildir"))
	maildir.add(mail(f"rae@{party.domain}", to, subject="From a Maildir", date=date))
	maildir.add(mail(f"rae@{party.domain}", to, subject="Nobody we know", date=date).replace(
		f"rae@{party.domain}".encode(), b"stranger@elsewhere.example"))  # fmt: skip
	return [str(eml), str(tmp_path / "archive.mbox"), str(tmp_path / "Maildir")]


def test_import_files_eml_mbox_and_maildir_once_without_moving_the_cursor(dovecot, party, tmp_path):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, create_issues=1)
	frappe.db.set_value("Email Sync Account", account, "sync_cursor", '{"kept": true}')
	paths = write_sources(tmp_path, party, box.name)

	first = bench("import", *paths, "--account", account, "--batch-size", "2")
	assert first.returncode == 0, first.stderr
	assert f"{account}: 6 read, 5 filed, 0 skipped, 1 needs review, 0 failed, 0 already synced" in first.stdout
	rows = synced(account)
	assert len(rows) == 6 and {r.subject for r in rows} >= {"From an eml file", "From a Maildir", "From an mbox 2"}
	# imported mail is history: filed on its Contact, but no Issue even on an account that creates them
	assert not frappe.get_all("Synced Email", filters={"account": account, "issue": ("is", "set")})
	assert frappe.db.get_value("Email Sync Account", account, "sync_cursor") == '{"kept": true}'

	again = bench("import", *paths, "--account", account)
	assert again.returncode == 0, again.stderr
	assert "6 read, 0 filed, 0 skipped, 0 needs review, 0 failed, 6 already synced" in again.stdout
	assert len(synced(account)) == 6


def test_import_says_why_it_cannot(dovecot, tmp_path):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	missing = bench("import", str(tmp_path / "nothing.mbox"), "--account", account)
	assert missing.returncode == 1 and "no such file or folder" in missing.stderr
	(tmp_path / "empty").mkdir()
	empty = bench("import", str(tmp_path / "empty"), "--account", account)
	assert empty.returncode == 1 and "No messages" in empty.stderr
	no_account = bench("import", str(tmp_path / "empty"))
	assert no_account.returncode == 2 and "--account" in no_account.stderr


def test_doctor_checks_scheduler_redis_workers_and_accounts(dovecot):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	frappe.db.set_value("Email Sync Account", account, {"status": "Error", "last_error": "Login refused",
		"last_error_fix": "Check the password."})  # fmt: skip
	result = bench("doctor")
	for check in ("Scheduler", "Redis", "Workers"):
		assert f"] {check}: " in result.stdout
	assert f"[FAIL] Account {account}: Error: Login refused" in result.stdout
	assert "What to do: Check the password." in result.stdout
	assert result.returncode == 1 and re.search(r"\b(1 check|\d+ checks) failed", result.stderr)
	frappe.db.set_value("Email Sync Account", account, "status", "Paused")
	frappe.db.commit()


# -- listen ----------------------------------------------------------------------------------------------


def test_listen_runs_until_stopped_and_doctor_and_status_say_whether_it_runs(dovecot):
	from email_sync.sync.listener import heartbeat

	# .test, not .example: a test session starting elsewhere pauses Active .example accounts (conftest)
	box = dovecot.add_user(name=f"{unique('listen')}@mail.listener.test")
	account = make_account(dovecot, box, frequency="Real-time")
	try:
		before = bench("doctor")
		assert re.search(r"\[FAIL\] IMAP listener: Not running for \d+ real-time IMAP accounts?: they are polled", before.stdout)
		assert f"bench --site {frappe.local.site} email-sync listen" in before.stdout
		assert "IMAP listener: Not running" in bench("status").stdout

		listener = subprocess.Popen(command("listen", "--account", account, "--refresh-seconds", "1"), cwd=os.getcwd(),
			stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
		try:
			deadline = time.monotonic() + 60
			while time.monotonic() < deadline:
				if ((heartbeat() or {}).get("accounts") or {}).get(account, {}).get("state") == "watching":
					break
				time.sleep(0.2)
			assert heartbeat()["accounts"][account]["state"] == "watching"
			assert "[ok] IMAP listener: Running (pid" in bench("doctor").stdout
			assert "IMAP listener: Running (pid" in bench("status").stdout
			deliver(dovecot, box, [mail("someone@elsewhere.example", box.name, subject="Live")])
			time.sleep(3)
		finally:
			listener.send_signal(signal.SIGTERM)  # as supervisor stops it
			output, _ = listener.communicate(timeout=30)
		assert listener.returncode == 0, output
		assert f"{account}: watching INBOX on {dovecot.host}" in output
		assert f"{account}: new mail: sync queued" in output
		assert output.rstrip().endswith("Stopped: every connection logged out.")
		assert not heartbeat()
	finally:
		frappe.db.set_value("Email Sync Account", account, "status", "Paused")
		frappe.db.commit()


def test_listen_refuses_an_unknown_account():
	result = bench("listen", "--account", "nobody@nowhere.example")
	assert result.returncode == 1 and "No Email Sync Account" in result.stderr


# -- erase -----------------------------------------------------------------------------------------------


def synced_with(account: str, sender: str) -> list:
	return frappe.get_all("Synced Email", filters={"account": account, "sender": sender}, pluck="name")


def test_erase_shows_what_goes_asks_then_erases_and_logs_who(dovecot, party):
	from email_sync.sync.runner import sync_account

	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	rae, other = f"rae@{party.domain}", f"someone-else@{party.domain}"
	deliver(dovecot, box, [mail(rae, box.name, subject="Erase me 1"), mail(rae, box.name, subject="Erase me 2"),
		mail(other, box.name, subject="Keep me")])  # fmt: skip
	sync_account(account)
	frappe.db.commit()
	assert len(synced_with(account, rae)) == 2

	declined = bench("erase", "--address", rae, input="n\n")
	assert declined.returncode == 1 and "Aborted" in declined.stderr
	assert f"Everything Email Sync synced with {rae}:" in declined.stdout
	assert "2 synced emails" in declined.stdout and "Erase me 2" in declined.stdout
	assert len(synced_with(account, rae)) == 2  # nothing went

	done = bench("erase", "--address", rae.upper(), "--blacklist", "--yes")
	assert done.returncode == 0, done.stderr
	assert "Erased 2 synced emails, 2 emails on timelines" in done.stdout
	assert f"blacklisted {rae}" in done.stdout
	assert not synced_with(account, rae) and len(synced_with(account, other)) == 1
	log = frappe.get_last_doc("Email Sync Erasure Log", filters={"addresses": rae})
	assert log.name in done.stdout and log.erased_by == "Administrator" and log.synced_emails == 2
	assert frappe.db.exists("Email Sync Blacklist", rae)


def test_erase_a_contact_after_confirming(dovecot, party):
	from email_sync.sync.runner import sync_account

	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	deliver(dovecot, box, [mail(f"rae@{party.domain}", box.name, subject="About the contact")])
	sync_account(account)
	frappe.db.commit()
	result = bench("erase", "--contact", party.contact, input="y\n")
	assert result.returncode == 0, result.stderr
	assert f"Contact {party.contact} (rae@{party.domain})" in result.stdout and "Erased 1 synced email, 1 email on timelines" in result.stdout
	assert not synced_with(account, f"rae@{party.domain}")
	assert frappe.get_last_doc("Email Sync Erasure Log", filters={"contact": party.contact}).erased_by == "Administrator"


def test_erase_says_why_it_cannot(party):
	neither = bench("erase")
	assert neither.returncode == 1 and "Name either --address or --contact" in neither.stderr
	both = bench("erase", "--address", "a@b.example", "--contact", party.contact)
	assert both.returncode == 1 and "Name either" in both.stderr
	unknown = bench("erase", "--address", f"{unique('nobody')}@nowhere.example", "--yes")
	assert unknown.returncode == 1 and "Email Sync holds nothing for" in unknown.stderr
	not_an_address = bench("erase", "--address", "not-an-address", "--yes")
	assert not_an_address.returncode == 1 and "is not an email address" in not_an_address.stderr
	no_contact = bench("erase", "--contact", unique("No Such Contact "), "--yes")
	assert no_contact.returncode == 1 and "No Contact" in no_contact.stderr
	nothing = bench("erase", "--contact", party.contact, "--yes")  # a Contact with no synced mail
	assert nothing.returncode == 0 and "Nothing to erase" in nothing.stdout
