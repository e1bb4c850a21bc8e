"""One sync run of one account: provider -> engine -> writer, batch by batch, with its log and health.

This is the background job (see tasks.py). It never raises: a failure is recorded on the account and in
the Sync Log with what to do about it, and the account cools off (or stops, after max tries).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable

import frappe
from frappe.utils import add_to_date, now_datetime

from email_sync.engine import ERROR, FILED, NEEDS_REVIEW, SKIPPED, parse_message, plan_messages
from email_sync.providers import ProviderError
from email_sync.sync.context import account_config, load_context, load_cursor, load_settings, provider_for
from email_sync.sync.fetch_errors import with_fetch_errors
from email_sync.sync import notify
from email_sync.sync.issues import IssueRouter
from email_sync.sync.tasks import enqueue_continuation
from email_sync.sync.writer import Item, write_batch

PROGRESS_EVENT = "email_sync_progress"
DEFAULT_TIME_BUDGET = 120  # seconds a run may take before it yields to the other accounts' jobs


def sync_account(account: str, trigger: str = "Scheduler", progress: Callable | None = None) -> dict:
	"""Sync `account` now. Returns the run's counts; also recorded in an Email Sync Log row.
	`progress(counts, remaining)` is called after each committed batch (the bench command's progress)."""
	if not _acquire(account):
		return {"status": "Skipped", "reason": "A sync of this account is already running."}
	try:
		return _run(account, trigger, progress)
	finally:
		_release(account)


def _run(account_name: str, trigger: str, progress: Callable | None = None) -> dict:
	account = frappe.get_doc("Email Sync Account", account_name)
	log = _start_log(account_name, trigger)
	counts: Counter = Counter()
	started = time.monotonic()
	yielded = False
	try:
		config = account_config(account)
		settings = load_settings()
		snippet_length = int(settings.snippet_length or 200)
		budget = float(settings.run_time_budget or DEFAULT_TIME_BUDGET)
		context = router = None  # read on the first batch with mail: a run with nothing new reads neither
		with provider_for(account, config) as provider:
			for batch in provider.fetch(load_cursor(account)):
				if batch.messages and context is None:
					context, router = load_context(account, config), IssueRouter(account, settings)
				counts["fetched"] += len(batch.messages)
				plans = []
				if batch.messages:
					plans = plan_messages(
						((parse_message(m.raw), m.from_sent_folder) for m in batch.messages), context
					)
					plans = with_fetch_errors(batch.messages, plans)  # downloads the provider gave up on
				items = [Item(fetched, plan) for fetched, plan in zip(batch.messages, plans, strict=True)]
				then = router.route if router else None
				counts.update(write_batch(account_name, items, batch.cursor, snippet_length, then=then))
				if context:
					learn_new_contacts(context.directory, plans)
				_publish_progress(account_name, counts, batch.remaining)
				if progress:
					progress(counts, batch.remaining)
				if batch.remaining != 0 and time.monotonic() - started > budget:
					yielded = True  # every batch so far is committed with its cursor: the next run goes on
					break
		counts["issues_created"] = len(router.created) if router else 0
	except ProviderError as e:
		frappe.db.rollback()
		_record_failure(account_name, log, counts, e.code, e.message, e.fix, started)
	except Exception as e:
		frappe.db.rollback()
		error_log = frappe.log_error(title=f"Email Sync failed for {account_name}")
		_record_failure(
			account_name,
			log,
			counts,
			"unexpected_error",
			f"Unexpected error: {e!r}",
			f"See Error Log {error_log.name}; the sync will try again after the cool-off.",
			started,
		)
	else:
		_record_success(account_name, log, counts, started, yielded)
		if yielded:
			# Queued behind every job waiting now, so one large mailbox never holds up the other accounts.
			enqueue_continuation(account_name)
		# History waiting in Needs Review is no news: only the run's newer emails are worth a notification.
		if router and router.new_needing_review:
			notify.notify(
				notify.NEEDS_REVIEW,
				f"1 email synced from {account_name} needs review"
				if router.new_needing_review == 1
				else f"{router.new_needing_review} emails synced from {account_name} need review",
				"Email Sync Account",
				account_name,
			)
			frappe.db.commit()
	_publish_progress(account_name, counts, 0, done=True)
	return dict(counts)


def learn_new_contacts(directory, plans) -> None:
	new = {c.email: c.customer for plan in plans for c in [*plan.new_contacts, *plan.added_addresses]}
	if not new:
		return
	for email, contact in frappe.db.sql(
		"select lower(email_id), parent from `tabContact Email` where email_id in %(emails)s", {"emails": list(new)}
	):
		directory.learn(email, contact, [new[email]])


def _acquire(account: str) -> bool:
	# A database lock, not a flag: it is released by itself if the worker dies mid-run.
	return bool(frappe.db.sql("select get_lock(%s, 0)", (_lock_name(account),))[0][0])


def _release(account: str) -> None:
	frappe.db.sql("select release_lock(%s)", (_lock_name(account),))


def _lock_name(account: str) -> str:
	return f"email_sync:{frappe.local.site}:{account}"[:64]


SYNC_TRIGGERS = ("Scheduler", "Manual", "Push", "Continued")  # the runs that hold the account's lock


def _start_log(account: str, trigger: str) -> str:
	# A run whose worker was killed, or whose database connection was cut, never finished its log. This run
	# holds the account's lock, so no other run of it is alive: those logs say what became of them.
	frappe.db.sql(
		"""update `tabEmail Sync Log` set status = 'Failed', error_code = 'interrupted', error = %s, fix = %s
		where account = %s and status = 'Running' and triggered_by in %s""",
		(
			"The run stopped before it finished: its worker was stopped or lost its database connection.",
			"Nothing to do: every batch it committed stands, and the next run went on from there.",
			account,
			SYNC_TRIGGERS,
		),
	)
	log = frappe.get_doc(
		{
			"doctype": "Email Sync Log",
			"account": account,
			"status": "Running",
			"triggered_by": trigger,
			"started": now_datetime(),
		}
	).insert(ignore_permissions=True)
	frappe.db.commit()
	return log.name


def _log_counts(counts: Counter, started: float) -> dict:
	return {
		"fetched": counts["fetched"],
		"filed": counts[FILED],
		"skipped": counts[SKIPPED],
		"needs_review": counts[NEEDS_REVIEW],
		"failed": counts[ERROR],
		"already_synced": counts["already_synced"],
		"finished": now_datetime(),
		"duration": round(time.monotonic() - started, 2),
	}


def _record_success(account: str, log: str, counts: Counter, started: float, yielded: bool = False) -> None:
	status = "Partial" if counts[ERROR] else "Success"
	frappe.db.set_value(
		"Email Sync Log", log, {"status": status, "yielded": int(yielded), **_log_counts(counts, started)}
	)
	values = {"last_success": now_datetime(), "last_sync": now_datetime(), "consecutive_failures": 0}
	values["next_sync_after"] = None
	if frappe.db.get_value("Email Sync Account", account, "status") == "Error":
		values["status"] = "Active"  # a successful run (e.g. Sync Now after a fix) revives the account
	frappe.db.set_value("Email Sync Account", account, values, update_modified=False)
	frappe.db.commit()


def _record_failure(account: str, log: str, counts, code: str, message: str, fix: str, started: float):
	frappe.db.set_value(
		"Email Sync Log",
		log,
		{"status": "Failed", "error_code": code, "error": message, "fix": fix, **_log_counts(counts, started)},
	)
	row = frappe.db.get_value(
		"Email Sync Account",
		account,
		["consecutive_failures", "error_count", "max_tries", "cool_off_minutes", "status"],
		as_dict=True,
	)
	failures = (row.consecutive_failures or 0) + 1
	values = {
		"consecutive_failures": failures,
		"error_count": (row.error_count or 0) + 1,
		"last_error": message,
		"last_error_code": code,
		"last_error_fix": fix,
		"last_sync": now_datetime(),
		"next_sync_after": add_to_date(now_datetime(), minutes=row.cool_off_minutes or 10),
	}
	if failures >= (row.max_tries or 3) and row.status == "Active":
		values["status"] = "Error"
		values["last_error_fix"] = f"{fix} Automatic sync stopped after {failures} failed tries: fix the cause, then click Sync Now."
	frappe.db.set_value("Email Sync Account", account, values, update_modified=False)
	notify.notify(notify.SYNC_ERROR, f"Sync of {account} failed: {message}", "Email Sync Account", account, values["last_error_fix"])
	frappe.db.commit()


def _publish_progress(account: str, counts: Counter, remaining: int | None, done: bool = False) -> None:
	frappe.publish_realtime(
		PROGRESS_EVENT,
		{
			"account": account,
			"fetched": counts["fetched"],
			"filed": counts[FILED],
			"skipped": counts[SKIPPED],
			"needs_review": counts[NEEDS_REVIEW],
			"failed": counts[ERROR],
			"remaining": remaining,
			"done": done,
		},
		doctype="Email Sync Account",
		docname=account,
	)
