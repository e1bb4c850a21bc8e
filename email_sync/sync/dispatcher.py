"""Runs every minute from the scheduler: enqueue a sync for each Active account that is due. Cheap: one query."""

import frappe
from frappe.utils import now_datetime

from email_sync.engine.schedule import is_due
from email_sync.sync.tasks import enqueue_sync


def due_accounts(now=None) -> list[str]:
	now = now or now_datetime()
	accounts = frappe.get_all(
		"Email Sync Account",
		filters={"status": "Active", "frequency": ("!=", "Manual only")},
		fields=["name", "frequency", "last_sync", "next_sync_after", "skip_times"],
		order_by="last_sync asc",
	)
	return [
		a.name for a in accounts if is_due(now, a.frequency, a.last_sync, a.next_sync_after, a.skip_times)[0]
	]


def dispatch() -> None:
	for account in due_accounts():
		enqueue_sync(account, "Scheduler")
