"""The one place that enqueues sync jobs: one job id per account, so an account never syncs twice at once."""

import frappe

JOB_TIMEOUT = 60 * 60  # seconds; a first sync of a large mailbox is long, and each batch commits as it goes


def job_id(account: str) -> str:
	return f"email_sync::{account}"


def enqueue_sync(account: str, trigger: str = "Scheduler") -> str:
	frappe.enqueue(
		"email_sync.sync.runner.sync_account",
		queue="long",
		timeout=JOB_TIMEOUT,
		job_id=job_id(account),
		deduplicate=True,
		enqueue_after_commit=True,
		account=account,
		trigger=trigger,
	)
	return job_id(account)
