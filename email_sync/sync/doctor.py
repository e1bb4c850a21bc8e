"""What a site needs for syncs to run, checked one by one: each check says what is wrong and what to do.

Read-only: nothing here changes the site. Used by `bench --site SITE email-sync doctor`.
"""

from __future__ import annotations

from dataclasses import dataclass

import frappe

QUEUE = "long"  # where sync jobs run (tasks.py)
DISPATCHER = "email_sync.sync.dispatcher.dispatch"  # scheduled every minute (hooks.py)
# The dispatcher is due every minute; a busy default queue may hold a run up for a few. Longer: nothing runs it.
DISPATCHER_STALE_MINUTES = 10


@dataclass
class Check:
	name: str
	ok: bool
	detail: str
	fix: str = ""


def run_checks() -> list[Check]:
	"""Every check, in the order a fix should be attempted: Redis before workers, workers before accounts."""
	redis = redis_check()
	checks = [scheduler_check(), redis]
	checks.append(workers_check() if redis.ok else Check("Workers", False, "Not checked: Redis is unreachable.",
		"Fix Redis first."))  # fmt: skip
	checks.append(listener_check())
	return checks + account_checks()


def scheduler_check() -> Check:
	from frappe.utils.scheduler import is_scheduler_disabled, is_scheduler_inactive

	if is_scheduler_disabled(verbose=False):
		return Check("Scheduler", False, "The scheduler is disabled: no account syncs by itself.",
			f"bench --site {frappe.local.site} enable-scheduler")  # fmt: skip
	if is_scheduler_inactive(verbose=False):
		return Check("Scheduler", False, "The scheduler is paused or the site is in maintenance mode.",
			"Turn off maintenance_mode and pause_scheduler in the site config.")  # fmt: skip
	return dispatcher_check()


def dispatcher_check(now=None) -> Check:
	"""Enabled is only the site's flag: whether a scheduler process (and a worker on the default queue) runs
	shows in when Email Sync's per-minute dispatcher last ran."""
	from frappe.utils import now_datetime

	job = frappe.db.get_value("Scheduled Job Type", {"method": DISPATCHER}, ["last_execution", "creation"], as_dict=True)
	if not job:
		return Check("Scheduler", False, "Email Sync's dispatcher is not among the site's scheduled jobs.",
			f"bench --site {frappe.local.site} migrate")  # fmt: skip
	minutes = int(((now or now_datetime()) - (job.last_execution or job.creation)).total_seconds() // 60)
	if minutes <= DISPATCHER_STALE_MINUTES:
		return Check("Scheduler", True, "Enabled, and running.")
	since = f"has not run for {minutes} minutes" if job.last_execution else f"has never run ({minutes} minutes since install)"
	return Check("Scheduler", False,
		f"Enabled, but Email Sync's dispatcher {since}: no scheduler process runs for this bench (or no worker takes "
		"the default queue), so accounts only sync on Sync Now.",
		"Start the scheduler and workers: bench start (its schedule and worker lines), or bench schedule and "
		"bench worker under your supervisor setup.")  # fmt: skip


def redis_check() -> Check:
	from frappe.utils.background_jobs import get_redis_conn

	try:
		get_redis_conn().ping()
	except Exception as e:  # noqa: BLE001 - any failure to reach it is the finding
		return Check("Redis", False, f"The job queue's Redis is unreachable: {e}",
			"Start Redis (bench start, or your supervisor setup) and check redis_queue in common_site_config.json.")  # fmt: skip
	return Check("Redis", True, "Reachable.")


def workers_check() -> Check:
	from frappe.utils.background_jobs import generate_qname, get_workers

	name = generate_qname(QUEUE)  # the queue's full name on this bench
	workers = [w for w in get_workers() if name in w.queue_names()]
	if not workers:
		return Check("Workers", False, f"No worker listens on the {QUEUE} queue: syncs are queued but never run.",
			f"Start workers for the {QUEUE} queue (bench start, or bench worker --queue {QUEUE}).")  # fmt: skip
	return Check("Workers", True, f"{len(workers)} on the {QUEUE} queue.")


def listener_check() -> Check:
	"""Whether `email-sync listen` runs for the IMAP accounts on Real-time (its heartbeat in the Redis cache)."""
	from email_sync.sync.listener import heartbeat, realtime_imap_accounts

	accounts = realtime_imap_accounts()
	try:
		beat = heartbeat()
	except Exception as e:  # noqa: BLE001 - whatever the cache says, the check reports it
		return Check(LISTENER, False, f"Not checked: the Redis cache is unreachable: {e}",
			"Start Redis (bench start, or your supervisor setup) and check redis_cache in common_site_config.json.")  # fmt: skip
	if not accounts:
		return Check(LISTENER, True, "No IMAP account is on Real-time: no listener needed.")
	count = f"{len(accounts)} real-time IMAP account{'s' if len(accounts) != 1 else ''}"
	if not beat:
		return Check(LISTENER, False, f"Not running for {count}: they are polled every minute instead of "
			"syncing as mail arrives.", f"Start it: bench --site {frappe.local.site} email-sync listen (a line in "
			"the Procfile, or a supervisor program: see Bench commands in the README).")  # fmt: skip
	states = beat.get("accounts") or {}
	failing = [f"{name}: {states[name]['detail']}" for name in accounts
		if states.get(name, {}).get("state") != "watching" and states.get(name, {}).get("detail")]  # fmt: skip
	where = "; ".join(f"pid {b.get('pid')} on {b.get('host')}" for b in beat["listeners"])
	if failing:
		return Check(LISTENER, False, f"Running ({where}) for {count}, but cannot watch: {'; '.join(failing)}",
			"Fix the account (Test Connection shows the same error); the listener retries by itself.")  # fmt: skip
	watching = sum(1 for name in accounts if states.get(name, {}).get("state") == "watching")
	waiting = "" if watching == len(accounts) else f" ({len(accounts) - watching} being connected)"
	return Check(LISTENER, True, f"Running ({where}) for {count}{waiting}.")


LISTENER = "IMAP listener"


def account_checks() -> list[Check]:
	rows = frappe.get_all(
		"Email Sync Account",
		filters={"status": ("in", ["Active", "Error"])},
		fields=["name", "status", "consecutive_failures", "last_error", "last_error_fix"],
		order_by="name asc",
	)
	checks = []
	for row in rows:
		if row.status == "Error" or row.consecutive_failures:
			detail = f"{row.status}: {row.last_error or 'the last sync failed'}"
			checks.append(Check(f"Account {row.name}", False, detail, row.last_error_fix or "Fix the cause, then sync."))
		else:
			checks.append(Check(f"Account {row.name}", True, "Last sync succeeded."))
	return checks
