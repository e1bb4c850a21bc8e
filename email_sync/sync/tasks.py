"""The one place that enqueues sync jobs: at most one queued or running job per account.

An account has two job ids. A run that used up its time budget queues its continuation under the id it is
not running as: a job id that is still running counts as queued, so the same id would be dropped.
Also the jobs around syncing: push upkeep, and notices by SMS and chat.
"""

from datetime import datetime, timedelta, timezone

import frappe
from frappe.utils.background_jobs import create_job_id, get_job, is_job_enqueued
from rq.job import JobStatus

JOB_TIMEOUT = 60 * 60  # seconds; a run yields long before (its time budget) and each batch commits as it goes


def job_id(account: str) -> str:
	return f"email_sync::{account}"


def continuation_id(account: str) -> str:
	return f"email_sync::{account}::continued"


def enqueue_sync(account: str, trigger: str = "Scheduler") -> str:
	"""Queue a run of `account`, unless one is queued or running already (it will pick up the new mail)."""
	for job in (job_id(account), continuation_id(account)):
		_forget_if_orphaned(job)
	if is_job_enqueued(continuation_id(account)):
		return continuation_id(account)
	_enqueue(account, trigger, job_id(account), after_commit=True)
	return job_id(account)


ORPHANED_AFTER = timedelta(minutes=3)  # a running job's worker beats every 30 s or so


def _forget_if_orphaned(job: str) -> None:
	"""A job whose worker was killed stays 'started' until RQ's housekeeping notices, up to about ten minutes
	later, and until then the account could not be queued again. A started job that has not beaten for
	minutes has no worker: forget it. (Were it alive after all, the account's run lock keeps a second run off.)"""
	found = get_job(job)
	if found is None or found.get_status() != JobStatus.STARTED or not found.last_heartbeat:
		return
	beat = found.last_heartbeat  # naive UTC in RQ 1, aware in RQ 2
	if datetime.now(timezone.utc) - (beat if beat.tzinfo else beat.replace(tzinfo=timezone.utc)) > ORPHANED_AFTER:
		found.delete()


def enqueue_continuation(account: str) -> None:
	"""From inside a run that yielded: the next run of the account, at the back of the queue."""
	_enqueue(account, "Continued", other_job_id(job_id(account), continuation_id(account)))


def other_job_id(job: str, other: str) -> str:
	"""The id to queue a continuation under: `job`, or `other` when this is job `job` running (a job id that
	is still running counts as queued, so the same id would be dropped)."""
	from rq import get_current_job

	current = get_current_job()
	return other if current is not None and current.id == create_job_id(job) else job


def enqueue_push_upkeep(account: str, event: str) -> None:
	"""Act on a Graph lifecycle event of the account's push subscription (realtime.handle_lifecycle) in a job,
	so that the guest endpoint answers Graph at once."""
	frappe.enqueue(
		"email_sync.sync.realtime.handle_lifecycle",
		queue="short",
		job_id=f"email_sync::push::{account}::{event}",
		deduplicate=True,
		enqueue_after_commit=True,
		account=account,
		lifecycle_event=event,  # not `event`: frappe.enqueue takes that one for itself
	)


def enqueue_notice(notice: dict) -> None:
	"""Send an SMS or chat notice (channels.deliver) from a job, once the transaction that raised it commits
	(never from inside a sync's batch; dropped if it rolls back). Never raises, not even at commit: a queue
	that cannot be reached costs the notice and leaves an Error Log, never the sync."""

	def enqueue():
		try:
			frappe.enqueue("email_sync.sync.channels.deliver", queue="default", notice=notice)
		except Exception:
			frappe.log_error(title="Email Sync could not queue a notification")

	frappe.db.after_commit.add(enqueue)


def _enqueue(account: str, trigger: str, job: str, after_commit: bool = False) -> None:
	enqueue_long("email_sync.sync.runner.sync_account", job, after_commit, account=account, trigger=trigger)


def enqueue_long(method: str, job: str, after_commit: bool = False, **kwargs) -> None:
	"""Queue a job that reads mail (a sync, a backfill, an upload import) on the long queue under `job`,
	dropped if that id is queued or running already."""
	frappe.enqueue(
		method,
		queue="long",
		timeout=JOB_TIMEOUT,
		job_id=job,
		deduplicate=True,
		enqueue_after_commit=after_commit,
		**kwargs,
	)


def retrofile_job_id(doctype: str, name: str, continued: bool = False) -> str:
	return f"email_sync::retrofile::{doctype}::{name}" + ("::continued" if continued else "")


def enqueue_retrofile(doctype: str, name: str, customer: str | None = None, continued: bool = False) -> None:
	"""File the emails waiting for review that a Contact or Customer now claims (retrofile.py), once the save
	commits. One job per record: saving it again while its job waits adds none. A run that leaves more queues
	its continuation under the other id (its own, still running, would be dropped)."""
	job = retrofile_job_id(doctype, name)
	if continued:  # from inside the job, its work so far committed: queued at once
		job = other_job_id(retrofile_job_id(doctype, name, True), job)
	kwargs = {"contact": name, "customer": customer} if doctype == "Contact" else {"customer": name}
	frappe.enqueue(
		f"email_sync.sync.retrofile.file_for_{doctype.lower()}",
		queue="default",
		job_id=job,
		deduplicate=True,
		enqueue_after_commit=not continued,
		**kwargs,
	)
