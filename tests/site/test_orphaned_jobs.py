"""An account whose sync job was killed with its worker is queued again by the next dispatch, not ten minutes
later when RQ's housekeeping would notice the job is dead."""

from datetime import timedelta

import frappe
import pytest
from factories import make_account, new_mailbox
from frappe.utils.background_jobs import create_job_id, get_job, get_redis_conn
from rq.job import Job, JobStatus
from rq.utils import utcnow

from email_sync.sync.tasks import enqueue_sync, job_id


@pytest.fixture
def account(dovecot):
	name = make_account(dovecot, new_mailbox(dovecot), status="Paused")  # an empty mailbox: a run is harmless
	yield name
	job = get_job(job_id(name))
	if job:
		job.delete()


def started_job(account: str, last_beat_ago: timedelta) -> Job:
	"""The job as RQ leaves it when its worker dies mid-run: 'started', its heartbeat stopped at some time."""
	job = Job.create(
		"email_sync.sync.runner.sync_account",
		kwargs={"account": account},
		id=create_job_id(job_id(account)),
		connection=get_redis_conn(),
	)
	job.set_status(JobStatus.STARTED)
	job.last_heartbeat = utcnow() - last_beat_ago
	job.save()
	return job


def test_a_started_job_without_a_heartbeat_for_minutes_is_replaced_by_a_queued_one(site, account):
	started_job(account, timedelta(minutes=10))
	enqueue_sync(account, "Scheduler")
	frappe.db.commit()  # queued after the commit
	job = get_job(job_id(account))
	assert job.enqueued_at is not None, "the account should be queued again"
	assert job.get_status() != JobStatus.STARTED or utcnow() - job.last_heartbeat < timedelta(minutes=1)


def test_a_running_job_with_a_recent_heartbeat_is_left_alone(site, account):
	started_job(account, timedelta(seconds=20))
	enqueue_sync(account, "Scheduler")
	frappe.db.commit()
	job = get_job(job_id(account))
	assert (job.get_status(), job.enqueued_at) == (JobStatus.STARTED, None)  # still the running one: not queued twice
