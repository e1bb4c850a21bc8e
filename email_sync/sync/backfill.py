"""Older mail brought in from the mailbox by date (backfill); an uploaded file is sync/upload_import.py.

It goes through the same pipeline as a sync (identity, decisions, writer), so mail is filed exactly once
however often it is brought in, and it is history: filed on its Customers and Contacts, but it opens no
Issue, sends no acknowledgement and notifies nobody (IssueRouter with imported=True). It neither reads nor moves
the account's sync cursor: the mailbox is listed by date through the provider's `fetch_range`.

One job per account at a time (its job id, and a database lock), bounded like a sync: after the run time
budget it stops after the batch in hand and queues its continuation with the listing's position. Each
backfill keeps one Email Sync Log row (sync/older_mail_log.py).
"""

from __future__ import annotations

import time
from datetime import date

import frappe
from frappe import _
from frappe.utils import format_date, getdate, today

from email_sync.engine import ERROR, parse_message, plan_messages
from email_sync.providers import ProviderError
from email_sync.sync.context import account_config, load_context, load_settings, provider_for
from email_sync.sync.fetch_errors import with_fetch_errors
from email_sync.sync.issues import IssueRouter
from email_sync.sync.older_mail_log import (
	counts_so_far,
	finish_log,
	publish,
	save_progress,
	start_log,
	summary,
)
from email_sync.sync.runner import DEFAULT_TIME_BUDGET, learn_new_contacts
from email_sync.sync.tasks import enqueue_long, other_job_id
from email_sync.sync.writer import Item, write_batch

# -- the account's covered range ---------------------------------------------------------------------------


def covered_from(account) -> date:
	"""The oldest day from which the account's mail has been read: mail before it is not on the site yet."""
	return getdate(account.get("history_from") or account.get("sync_start_date") or today())


def job_id(account: str, continued: bool = False) -> str:
	return f"email_sync::backfill::{account}" + ("::continued" if continued else "")


def start_backfill(account_name: str, since, folder: str | None = None) -> dict:
	"""Queue bringing in the mail from `since` up to the day the account's mail is already read from.
	`folder`: one of the folders the account syncs, or all of them. Raises a message when there is nothing to
	bring in or a backfill of the account is already running."""
	from frappe.utils.background_jobs import is_job_enqueued

	account = frappe.get_doc("Email Sync Account", account_name)
	since, before = getdate(since), covered_from(account)
	if since >= before:
		frappe.throw(
			_("Mail since {0} is already read: pick an earlier date.").format(format_date(before)),
			title=_("Nothing older to bring in"),
		)
	if since > getdate(today()):
		frappe.throw(_("Pick a date in the past."))
	if is_job_enqueued(job_id(account_name)) or is_job_enqueued(job_id(account_name, True)):
		frappe.throw(_("Older mail is already being brought in for this account: wait for it to finish."))
	enqueue_long(
		"email_sync.sync.backfill.run_backfill",
		job_id(account_name),
		after_commit=True,
		account=account_name,
		since=str(since),
		before=str(before),
		folder=folder or None,
	)
	return {"job_id": job_id(account_name), "since": str(since), "before": str(before)}


def queue_backfill_if_free(account_name: str, since) -> bool:
	"""From a save that moved the Sync Start Date earlier: queue the backfill, or say why not (no exception)."""
	try:
		start_backfill(account_name, since)
	except frappe.ValidationError:
		frappe.clear_last_message()
		frappe.msgprint(
			_("Older mail is already being brought in for this account; use Import older mail once it is done."),
			indicator="orange",
		)
		return False
	return True


# -- the backfill job ---------------------------------------------------------------------------------------


def run_backfill(
	account: str,
	since: str,
	before: str,
	folder: str | None = None,
	position: dict | None = None,
	log: str | None = None,
) -> dict:
	"""Bring in the account's mail received in [since, before). Never raises: a failure is in the log row."""
	# A continuation may start while the run that queued it is still letting go of the lock: it waits a little.
	if not _acquire(account, wait=30 if log else 0):
		return {"status": "Skipped", "reason": "Older mail is already being brought in for this account."}
	try:
		return _backfill(account, getdate(since), getdate(before), folder, position, log)
	finally:
		_release(account)


def _backfill(account_name, since: date, before: date, folder, position, log) -> dict:
	account = frappe.get_doc("Email Sync Account", account_name)
	label = _("Backfill from {0}").format(format_date(since)) + (f" ({folder})" if folder else "")
	log = log or start_log(account_name, "Backfill", label)
	counts = counts_so_far(log)
	started = time.monotonic()
	settings = load_settings()
	budget = float(settings.run_time_budget or DEFAULT_TIME_BUDGET)
	snippet_length = int(settings.snippet_length or 200)
	yielded = False
	try:
		config = account_config(account)
		context = load_context(account, config)
		router = IssueRouter(account, settings, imported=True)  # older mail is history, whatever its date
		with provider_for(account, config) as provider:
			folders = [folder] if folder else None
			for batch in provider.fetch_range(since, before, folders, position):
				counts["fetched"] += len(batch.messages)
				plans = plan_messages(((parse_message(m.raw), m.from_sent_folder) for m in batch.messages), context)
				plans = with_fetch_errors(batch.messages, plans)
				items = [Item(fetched, plan) for fetched, plan in zip(batch.messages, plans, strict=True)]
				counts.update(write_batch(account_name, items, None, snippet_length, then=router.route))
				learn_new_contacts(context.directory, plans)
				position = batch.cursor
				publish(account_name, "backfill", counts, batch.remaining)
				if batch.remaining != 0 and time.monotonic() - started > budget:
					yielded = True  # every batch so far is committed: the continuation goes on from `position`
					break
	except ProviderError as e:
		frappe.db.rollback()
		finish_log(log, label, counts, "Failed", error=(e.code, e.message, e.fix))
		publish(account_name, "backfill", counts, 0, done=True, summary=summary(label, counts), failed=e.message)
		return {"status": "Failed", "error": e.message, **counts}
	except Exception as e:  # noqa: BLE001 - a job never raises: the failure goes to the log row and Error Log
		frappe.db.rollback()
		error_log = frappe.log_error(title=f"Email Sync could not bring in older mail for {account_name}")
		error = ("unexpected_error", f"Unexpected error: {e!r}", f"See Error Log {error_log.name}.")
		finish_log(log, label, counts, "Failed", error=error)
		publish(account_name, "backfill", counts, 0, done=True, summary=summary(label, counts), failed=error[1])
		return {"status": "Failed", "error": error[1], **counts}
	if yielded:
		save_progress(log, label, counts)
		enqueue_long(
			"email_sync.sync.backfill.run_backfill",
			other_job_id(job_id(account_name, True), job_id(account_name)),
			account=account_name,
			since=str(since),
			before=str(before),
			folder=folder,
			position=position,
			log=log,
		)
		return {"status": "Continued", **counts}
	if not folder:
		# Every folder is read back to `since`: that is now what the account covers.
		current = frappe.db.get_value("Email Sync Account", account_name, ["history_from", "sync_start_date"], as_dict=True)
		if since < covered_from(current):
			frappe.db.set_value("Email Sync Account", account_name, "history_from", since, update_modified=False)
	status = finish_log(log, label, counts, "Partial" if counts[ERROR] else "Success")
	publish(account_name, "backfill", counts, 0, done=True, summary=summary(label, counts))
	return {"status": status, **counts}


def _acquire(account: str, wait: int = 0) -> bool:
	# A database lock, released by itself if the worker dies: a continuation and a second request never overlap.
	return bool(frappe.db.sql("select get_lock(%s, %s)", (_lock_name(account), wait))[0][0])


def _release(account: str) -> None:
	frappe.db.sql("select release_lock(%s)", (_lock_name(account),))


def _lock_name(account: str) -> str:
	return f"email_sync:older:{frappe.local.site}:{account}"[:64]


