"""The Email Sync Log row and the form's progress bar of older mail being brought in (a backfill or an upload
import): one row per run, updated as it goes, with a summary in words."""

from __future__ import annotations

from collections import Counter

import frappe
from frappe import _
from frappe.utils import now_datetime

from email_sync.engine import ERROR, FILED, NEEDS_REVIEW, SKIPPED

PROGRESS_EVENT = "email_sync_backfill_progress"


def start_log(account: str, trigger: str, label: str) -> str:
	log = frappe.get_doc(
		{
			"doctype": "Email Sync Log",
			"account": account,
			"status": "Running",
			"triggered_by": trigger,
			"started": now_datetime(),
			"summary": label,
		}
	).insert(ignore_permissions=True)
	frappe.db.commit()
	return log.name


def counts_so_far(log: str) -> Counter:
	row = frappe.db.get_value(
		"Email Sync Log", log, ["fetched", "filed", "skipped", "needs_review", "failed", "already_synced"], as_dict=True
	) or {}
	return Counter(
		{
			"fetched": row.get("fetched") or 0,
			FILED: row.get("filed") or 0,
			SKIPPED: row.get("skipped") or 0,
			NEEDS_REVIEW: row.get("needs_review") or 0,
			ERROR: row.get("failed") or 0,
			"already_synced": row.get("already_synced") or 0,
		}
	)


def log_values(label: str, counts: Counter) -> dict:
	return {
		"summary": summary(label, counts),
		"fetched": counts["fetched"],
		"filed": counts[FILED],
		"skipped": counts[SKIPPED],
		"needs_review": counts[NEEDS_REVIEW],
		"failed": counts[ERROR],
		"already_synced": counts["already_synced"],
	}


def save_progress(log: str, label: str, counts: Counter) -> None:
	frappe.db.set_value("Email Sync Log", log, {**log_values(label, counts), "yielded": 1})
	frappe.db.commit()


def finish_log(log: str, label: str, counts: Counter, status: str, error: tuple | None = None) -> str:
	values = {**log_values(label, counts), "status": status, "finished": now_datetime()}
	started = frappe.db.get_value("Email Sync Log", log, "started")
	if started:
		values["duration"] = round((now_datetime() - started).total_seconds(), 2)
	if error:
		values.update(error_code=error[0], error=error[1], fix=error[2])
	frappe.db.set_value("Email Sync Log", log, values)
	frappe.db.commit()
	return status


def summary(label: str, counts: Counter) -> str:
	parts = [
		_("{0} fetched").format(counts["fetched"]),
		_("{0} filed").format(counts[FILED]),
		_("{0} skipped").format(counts[SKIPPED]),
		_("{0} for review").format(counts[NEEDS_REVIEW]),
		_("{0} already on the site").format(counts["already_synced"]),
	]
	if counts[ERROR]:
		parts.append(_("{0} unreadable").format(counts[ERROR]))
	return f"{label}: " + ", ".join(parts)


def publish(account: str, kind: str, counts: Counter, remaining, done=False, summary="", failed="") -> None:
	frappe.publish_realtime(
		PROGRESS_EVENT,
		{
			"account": account,
			"kind": kind,
			"fetched": counts["fetched"],
			"filed": counts[FILED],
			"skipped": counts[SKIPPED],
			"needs_review": counts[NEEDS_REVIEW],
			"already_synced": counts["already_synced"],
			"failed": counts[ERROR],
			"remaining": remaining,
			"done": done,
			"summary": summary,
			"error": failed,
		},
		doctype="Email Sync Account",
		docname=account,
	)
