"""The scheduler's dispatcher, the one-job-per-account rule and the permission checks of the API."""

from datetime import timedelta

import frappe
import pytest
from factories import make_account, new_mailbox, site_user
from frappe.utils import now_datetime
from frappe.utils.background_jobs import get_job

from email_sync.api import sync_now
from email_sync.sync.dispatcher import due_accounts, dispatch
from email_sync.sync.tasks import job_id


@pytest.fixture
def account(dovecot):
	name = make_account(dovecot, new_mailbox(dovecot), frequency="Every 5 minutes")
	yield name
	job = get_job(job_id(name))
	if job:
		job.delete()


def set_values(account, **values):
	frappe.db.set_value("Email Sync Account", account, values, update_modified=False)
	frappe.db.commit()


def test_due_accounts_follow_frequency_skip_times_and_cool_off(account):
	now = now_datetime()
	assert account in due_accounts(now)  # never synced
	set_values(account, last_sync=now - timedelta(minutes=2))
	assert account not in due_accounts(now)
	set_values(account, last_sync=now - timedelta(minutes=6))
	assert account in due_accounts(now)
	set_values(account, next_sync_after=now + timedelta(minutes=3))
	assert account not in due_accounts(now)
	set_values(account, next_sync_after=None, skip_times=f"{now:%H}:00-{(now + timedelta(hours=1)):%H}:00")
	assert account not in due_accounts(now)
	set_values(account, skip_times="", status="Paused")
	assert account not in due_accounts(now)
	set_values(account, status="Active", frequency="Manual only")
	assert account not in due_accounts(now)


def test_dispatch_enqueues_one_job_per_account(account):
	other = [a for a in due_accounts() if a != account]
	for name in other:  # keep the test to its own account: park accounts left by other tests
		set_values(name, status="Paused")
	dispatch()
	frappe.db.commit()  # enqueue_after_commit
	job = get_job(job_id(account))
	assert job is not None and job.kwargs["kwargs"]["account"] == account and job.get_status() in ("queued", "started")
	dispatch()
	frappe.db.commit()
	assert get_job(job_id(account)).id == job.id  # deduplicated: still the same single job


def test_sync_now_checks_permission_and_status(account):
	user = frappe._dict(name=site_user("sales", "Sales User"))
	frappe.set_user(user.name)
	with pytest.raises(frappe.PermissionError):
		sync_now(account)
	frappe.set_user("Administrator")
	set_values(account, status="Draft")
	with pytest.raises(frappe.ValidationError, match="Activate the account"):
		sync_now(account)
	set_values(account, status="Active")
	assert sync_now(account)["job_id"] == job_id(account)
