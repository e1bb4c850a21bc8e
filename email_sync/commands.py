"""Bench commands: `bench --site SITE email-sync status | sync | import | doctor`.

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
			_fail(f"{len(failing)} check(s) failed: {', '.join(failing)}.")
		click.echo("Everything Email Sync needs is in place.")


commands = [email_sync]
