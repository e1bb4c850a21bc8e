"""Bench commands: `bench --site SITE email-sync status | sync | import | doctor | listen | erase`.

Each connects to the site, does its work in the foreground and exits 0 when it succeeded, or non-zero with
the reason (and what to do) on stderr. The work itself lives in email_sync/sync/: these only print.
"""

from __future__ import annotations

import sys
from contextlib import contextmanager

import click
from frappe.commands import get_site, pass_context

COUNTS = (("fetched", "fetched"), ("Filed", "filed"), ("Skipped", "skipped"), ("Needs Review", "needs review"),
	("Error", "failed"), ("already_synced", "already synced"))  # fmt: skip


@contextmanager
def _site(context):
	import frappe

	frappe.init(site=get_site(context))
	frappe.connect()
	frappe.set_user("Administrator")
	try:
		yield
	finally:
		frappe.destroy()


def _fail(reason: str):
	raise click.ClickException(reason)  # exit status 1, "Error: reason" on stderr


def _counts(counts: dict) -> str:
	# "fetched" only means something for a sync; an import counts what it read instead
	return ", ".join(f"{counts.get(key, 0)} {label}" for key, label in COUNTS if key in counts or key != "fetched")


def _table(headers: list[str], rows: list[list[str]]) -> str:
	widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
	lines = ["  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in [headers, *rows]]
	lines.insert(1, "  ".join("-" * w for w in widths))
	return "\n".join(lines)


def _interactive() -> bool:
	# A live counter only on a terminal: in a log or a pipe it would be noise.
	return sys.stdout.isatty()


def _account_or_fail(name: str) -> str:
	import frappe

	found = frappe.db.get_value("Email Sync Account", name, "name") or frappe.db.get_value(
		"Email Sync Account", {"email_address": name.strip().lower()}, "name"
	)
	if not found:
		_fail(f"No Email Sync Account {name!r}. `email-sync status` lists them.")
	return found


@click.group("email-sync")
def email_sync():
	"""Email Sync: accounts' health, syncs and imports now, and what a site needs for syncing."""


@email_sync.command("status")
@pass_context
def status(context):
	"""A table of accounts: status, health, last success, the last error and its fix."""
	import frappe
	from frappe.utils import now_datetime

	from email_sync.engine.schedule import health

	with _site(context):
		accounts = frappe.get_all(
			"Email Sync Account",
			fields=["name", "provider", "status", "frequency", "last_success", "consecutive_failures",
				"last_error", "last_error_fix"],
			order_by="name asc",
		)  # fmt: skip
		if not accounts:
			click.echo("No Email Sync Accounts on this site.")
			return
		now, rows = now_datetime(), []
		for a in accounts:
			light, reason, fix = health(a.status, a.consecutive_failures or 0, a.last_success, a.frequency, now,
				a.last_error or "", a.last_error_fix or "")  # fmt: skip
			success = f"{a.last_success:%Y-%m-%d %H:%M}" if a.last_success else "never"
			rows.append([a.name, a.provider, a.status, light, success, reason, fix])
		click.echo(_table(["Account", "Provider", "Status", "Health", "Last success", "Reason", "Fix"], rows))
		_listener_line()


def _listener_line() -> None:
	"""Under the table: whether real-time IMAP accounts have their listener (the doctor's check)."""
	from email_sync.sync.doctor import listener_check
	from email_sync.sync.listener import realtime_imap_accounts

	if not realtime_imap_accounts():
		return
	check = listener_check()
	click.echo(f"\nIMAP listener: {check.detail}")
	if not check.ok:
		click.echo(f"What to do: {check.fix}")


@email_sync.command("sync")
@click.argument("account", required=False)
@click.option("--all", "all_accounts", is_flag=True, help="Every Active account (and those in Error).")
@pass_context
def sync(context, account=None, all_accounts=False):
	"""Sync ACCOUNT (its name or address), or --all, now and in the foreground; prints the counts."""
	import frappe

	if bool(account) == all_accounts:
		_fail("Name one account, or pass --all.")
	with _site(context):
		if all_accounts:
			names = frappe.get_all("Email Sync Account", filters={"status": ("in", ["Active", "Error"])},
				pluck="name", order_by="name asc")  # fmt: skip
			if not names:
				_fail("No Active account to sync: set an account's status to Active first.")
		else:
			names = [_account_or_fail(account)]
		failed = [name for i, name in enumerate(names, 1) if not _sync_one(name, i, len(names))]
		if failed:
			_fail(f"{len(failed)} of {len(names)} accounts did not sync: {', '.join(failed)}.")


def _sync_one(name: str, i: int, total: int) -> bool:
	"""Sync one account with a live counter on a terminal, print its counts; False when it did not sync."""
	import frappe

	from email_sync.sync.runner import sync_account

	label = f"[{i}/{total}] {name}" if total > 1 else name

	def progress(counts, remaining):
		to_go = f", {remaining} to go" if remaining else ""
		click.echo(f"\r{label}: {counts['fetched']} fetched{to_go}", nl=False)

	counts = sync_account(name, trigger="Manual", progress=progress if _interactive() else None)
	if _interactive():
		click.echo("\r\033[K", nl=False)  # the live line gives way to the result
	if counts.get("status") == "Skipped":
		click.echo(f"{name}: not synced: {counts['reason']}", err=True)
		return False
	click.echo(f"{name}: {_counts(counts)}")
	row = frappe.db.get_value("Email Sync Account", name, ["consecutive_failures", "last_error", "last_error_fix"],
		as_dict=True)  # fmt: skip
	if row.consecutive_failures:
		click.echo(f"{name}: failed: {row.last_error} {row.last_error_fix}", err=True)
		return False
	return True


@email_sync.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option("--account", required=True, help="The Email Sync Account (name or address) to file the mail for.")
@click.option("--batch-size", default=200, show_default=True, help="Messages written per transaction.")
@pass_context
def import_mail(context, paths, account, batch_size=200):
	"""File .eml files, mbox files and Maildir folders for ACCOUNT, as history (no Issues, no notifications).

	Importing the same mail twice adds nothing; the account's sync position is not changed."""
	from email_sync.sync.importer import ImportSourceError, count_messages, import_files

	with _site(context):
		name = _account_or_fail(account)
		try:
			total = count_messages(list(paths))
		except (ImportSourceError, OSError) as e:
			_fail(f"Cannot read {e}")
		if not total:
			_fail("No messages in the given files or folders.")
		with click.progressbar(length=total, label=f"Importing {total} messages") as bar:
			done = [0]

			def progress(read: int):
				bar.update(read - done[0])
				done[0] = read

			counts = import_files(name, list(paths), batch_size=max(1, batch_size), progress=progress)
		click.echo(f"{name}: {counts['read']} read, {_counts(counts)}")


@email_sync.command("doctor")
@pass_context
def doctor(context):
	"""Check the scheduler, Redis, workers on the long queue and every account; says what to do for each failure."""
	from email_sync.sync.doctor import run_checks

	with _site(context):
		checks = run_checks()
		for check in checks:
			click.echo(f"[{'ok' if check.ok else 'FAIL'}] {check.name}: {check.detail}")
			if not check.ok and check.fix:
				click.echo(f"       What to do: {check.fix}")
		failing = [c.name for c in checks if not c.ok]
		if failing:
			_fail(f"{_plural(len(failing), 'check')} failed: {', '.join(failing)}.")
		click.echo("Everything Email Sync needs is in place.")


@email_sync.command("listen")
@click.option("--reidle-minutes", default=25.0, show_default=True,
	help="Renew each IDLE this often (servers drop clients idle for 29 minutes).")  # fmt: skip
@click.option("--refresh-seconds", default=60.0, show_default=True,
	help="Read the accounts again this often (added, deactivated, changed).")  # fmt: skip
@click.option("--account", "accounts", multiple=True,
	help="Watch only this account (repeatable): to share a site's accounts between listeners.")  # fmt: skip
@pass_context
def listen(context, reidle_minutes=25.0, refresh_seconds=60.0, accounts=()):
	"""Real-time for IMAP: an IDLE connection per Active IMAP account on Real-time; new mail queues its sync.

	Runs until stopped (Ctrl+C or SIGTERM); run one per site, from the Procfile or a supervisor program."""
	import signal
	import threading
	from datetime import datetime

	from email_sync.sync.listener import Listener

	stop = threading.Event()
	for sig in (signal.SIGINT, signal.SIGTERM):
		signal.signal(sig, lambda *_: stop.set())

	def log(line: str) -> None:
		click.echo(f"{datetime.now():%Y-%m-%d %H:%M:%S} {line}")

	with _site(context):
		only = [_account_or_fail(a) for a in accounts] or None
		listener = Listener(reidle_after=max(0.05, reidle_minutes) * 60, refresh_every=max(1.0, refresh_seconds),
			only=only, log=log)  # fmt: skip
		log(f"Listening for new mail in {get_site(context)}'s real-time IMAP accounts (Ctrl+C to stop).")
		listener.run(stop)
		log("Stopped: every connection logged out.")


@email_sync.command("erase")
@click.option("--address", help="Erase everything synced from, to or copied to this address.")
@click.option("--contact", help="Erase everything synced with this Contact (its name): all its addresses.")
@click.option("--blacklist", is_flag=True, help="Also blacklist the addresses, so later mail with them is skipped.")
@click.option("--delete-issues", is_flag=True, help="Also delete the Issues these emails opened (they stay otherwise).")
@click.option("--yes", is_flag=True, help="Erase without asking (for scripts).")
@pass_context
def erase(context, address=None, contact=None, blacklist=False, delete_issues=False, yes=False):
	"""Erase on request (GDPR): shows what will go, asks, erases it and leaves an Email Sync Erasure Log."""
	import frappe

	from email_sync.sync import erasure

	if bool(address) == bool(contact):
		_fail("Name either --address or --contact.")
	with _site(context):
		if contact:
			if not frappe.db.exists("Contact", contact):
				_fail(f"No Contact {contact!r}: give its name (ID), as in the Contact's URL.")
			scope = erasure.find(erasure.addresses_of_contact(contact), contact)
		else:
			if not erasure.normalised([address]):
				_fail(f"{address!r} is not an email address.")
			scope = erasure.find([address])
			if not scope.synced:
				_fail(f"Email Sync holds nothing for {address.strip()}: no synced email is from, to or copied to it. "
					"Check the spelling (the whole address).")  # fmt: skip
		whom = f"Contact {contact} ({', '.join(scope.addresses) or 'no address'})" if contact else scope.addresses[0]
		if not scope.synced and not blacklist:
			click.echo(f"Nothing to erase: Email Sync holds no email with {whom}.")
			return
		click.echo(f"Everything Email Sync synced with {whom}:")
		click.echo(_erasure_preview(erasure.preview(scope), blacklist, delete_issues))
		if not yes:
			click.confirm("Erase it?", abort=True)
		result = erasure.erase(scope, blacklist=blacklist, delete_issues=delete_issues, user=frappe.session.user)
		frappe.db.commit()
		click.echo(f"Erased {_plural(result['synced_emails'], 'synced email')}, "
			f"{_plural(result['communications'], 'email')} on timelines, {_plural(result['files'], 'file')}, "
			f"{_plural(result['comments'], 'comment')} and notifications, {_plural(result['issues'], 'Issue')}"
			f"{'; blacklisted ' + ', '.join(result['blacklisted']) if result['blacklisted'] else ''}. "
			f"Recorded in Email Sync Erasure Log {result['log']}.")  # fmt: skip


def _plural(n: int, noun: str) -> str:
	"""'1 file', '3 files': the nouns here all take an s."""
	return f"1 {noun}" if n == 1 else f"{n or 0} {noun}s"


def _erasure_preview(preview: dict, blacklist: bool, delete_issues: bool) -> str:
	span = f", {preview['first']:%Y-%m-%d} to {preview['last']:%Y-%m-%d}" if preview["first"] else ""
	mailboxes = ", ".join(f"{name} {count}" for name, count in sorted(preview["accounts"].items()))
	lines = [
		f"  {_plural(preview['synced_emails'], 'synced email')}{span}" + (f" (mailboxes: {mailboxes})" if mailboxes else ""),
		f"  {_plural(preview['communications'], 'email')} on timelines, {_plural(preview['files'], 'file')}, "
		+ f"{_plural(preview['comments'], 'comment')} and notifications",
		f"  {_plural(preview['issues'], 'Issue')} opened from them: " + ("deleted" if delete_issues else "they stay"),
	]
	if preview["kept_communications"]:
		lines.append(f"  {_plural(preview['kept_communications'], 'email')} that Email Sync did not make (or other mail holds) stay")
	if blacklist:
		lines.append("  the addresses go on the Email Sync Blacklist: later mail with them is skipped")
	if preview["subjects"]:
		lines.append("  newest: " + "; ".join(preview["subjects"][:5]))
	return "\n".join(lines)


commands = [email_sync]
