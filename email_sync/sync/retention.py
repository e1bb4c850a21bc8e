"""Keeping synced mail no longer than Email Sync Settings say: a daily job, bounded and idempotent.

- *Keep Bodies and Attachments (days)*: mail whose date is older than that keeps its headers and snippet.
  Its Communication's body (content and text) is cut to the Synced Email's snippet and its Files are
  deleted (their content leaves the disk unless another File shares it, e.g. the copy on an Issue); the
  attachment rows on the Synced Email stay, with the reason. Only Communications Email Sync made (named
  after the email's identity) are touched: mail from Frappe's own Email Account pull or sent from ERPNext
  never is, even when Email Sync filed onto it. Each Synced Email handled gets its *Retention Applied On*
  date, so a row is handled once and each run starts where the last one stopped (one index range).
- *Keep Skipped Rows (days)*: Skipped Synced Emails recorded longer ago than that are deleted, with their
  attachment rows.

0 keeps forever. A run handles at most ROWS_PER_RUN rows of each kind, within TIME_BUDGET, committing each
chunk; what is left waits for the next day. A run that changed something leaves an Email Sync Erasure Log
of kind Retention with its counts.
"""

from __future__ import annotations

import time

import frappe
from frappe import _
from frappe.utils import add_days, escape_html, now_datetime, nowdate

from email_sync.sync.erasure import made_by_email_sync

ROWS_PER_RUN = 5000
CHUNK = 500
TIME_BUDGET = 240  # seconds: well inside the scheduler's job timeout
# A Skipped row that still holds a Communication is not a mere record of a skip: it stays.
SKIPPED = "status = 'Skipped' and ifnull(communication, '') = ''"


def apply_retention() -> dict:
	"""The daily job."""
	settings = frappe.get_cached_doc("Email Sync Settings")
	return run(int(settings.get("keep_bodies_days") or 0), int(settings.get("keep_skipped_days") or 0))


def run(body_days: int, skipped_days: int, limit: int = ROWS_PER_RUN) -> dict:
	counts = {"bodies_cut": 0, "files": 0, "handled": 0, "skipped_rows": 0, "more_left": 0}
	deadline = time.monotonic() + TIME_BUDGET
	if body_days > 0:
		_cut_bodies(add_days(now_datetime(), -body_days), limit, deadline, counts)
	if skipped_days > 0:
		_delete_skipped(add_days(now_datetime(), -skipped_days), limit, deadline, counts)
	if counts["bodies_cut"] or counts["files"] or counts["skipped_rows"]:
		_log(counts, body_days, skipped_days)
		frappe.db.commit()
	return counts


def _cut_bodies(cutoff, limit: int, deadline: float, counts: dict) -> None:
	while counts["handled"] < limit:
		if time.monotonic() > deadline:
			counts["more_left"] = 1
			return
		rows = frappe.db.sql(
			"""select name, communication, email_key, snippet from `tabSynced Email`
			where retention_applied_on is null and email_date < %(cutoff)s
			order by email_date limit %(size)s""",
			{"cutoff": cutoff, "size": min(CHUNK, limit - counts["handled"])},
			as_dict=True,
		)
		if not rows:
			return
		_cut_chunk(rows, counts)
		counts["handled"] += len(rows)
		frappe.db.commit()
	counts["more_left"] |= _any("retention_applied_on is null and email_date < %s", cutoff)


def _cut_chunk(rows: list, counts: dict) -> None:
	snippets = {r.communication: r.snippet or "" for r in rows if made_by_email_sync(r)}
	ours = frappe.db.sql_list(
		"select name from `tabCommunication` where name in %(c)s", {"c": list(snippets) or ["-"]}
	)
	for name in ours:
		snippet = snippets[name]
		frappe.db.set_value(
			"Communication",
			name,
			{"content": escape_html(snippet), "text_content": snippet, "has_attachment": 0},
			update_modified=False,
		)
	counts["bodies_cut"] += len(ours)
	files = frappe.get_all(
		"File",
		filters={"attached_to_doctype": "Communication", "attached_to_name": ("in", ours or ["-"])},
		pluck="name",
	)
	for file in files:
		frappe.delete_doc("File", file, ignore_permissions=True, force=True, delete_permanently=True)
		counts["files"] += 1
	names = [r.name for r in rows]
	params = {"names": names, "ours": ours or ["-"], "today": nowdate()}
	frappe.db.sql(
		"""update `tabEmail Sync Attachment` set file = null, reason = %(reason)s
		where parenttype = 'Synced Email' and ifnull(file, '') != '' and parent in (
			select name from `tabSynced Email` where communication in %(ours)s)""",
		{**params, "reason": _("Removed after the retention period (Email Sync Settings).")},
	)
	# Every Synced Email of these Communications (the same email from other mailboxes too) is handled now
	frappe.db.sql(
		"""update `tabSynced Email` set retention_applied_on = %(today)s
		where retention_applied_on is null and (name in %(names)s or communication in %(ours)s)""",
		params,
	)


def _delete_skipped(cutoff, limit: int, deadline: float, counts: dict) -> None:
	while counts["skipped_rows"] < limit:
		if time.monotonic() > deadline:
			counts["more_left"] = 1
			return
		names = frappe.db.sql_list(
			f"""select name from `tabSynced Email` where {SKIPPED} and creation < %(cutoff)s
			order by creation limit %(size)s""",
			{"cutoff": cutoff, "size": min(CHUNK, limit - counts["skipped_rows"])},
		)
		if not names:
			return
		frappe.db.delete("Email Sync Attachment", {"parenttype": "Synced Email", "parent": ("in", names)})
		frappe.db.delete("Synced Email", {"name": ("in", names)})
		counts["skipped_rows"] += len(names)
		frappe.db.commit()
	counts["more_left"] |= _any(SKIPPED + " and creation < %s", cutoff)


def _any(condition: str, cutoff) -> int:
	return int(bool(frappe.db.sql(f"select 1 from `tabSynced Email` where {condition} limit 1", cutoff)))


def _log(counts: dict, body_days: int, skipped_days: int) -> None:
	kept = []
	if body_days:
		kept.append(f"bodies and attachments kept {body_days} days")
	if skipped_days:
		kept.append(f"skipped rows kept {skipped_days} days")
	frappe.get_doc(
		{
			"doctype": "Email Sync Erasure Log",
			"kind": "Retention",
			"erased_by": frappe.session.user,
			"erased_on": now_datetime(),
			"communications": 0,
			"bodies_cut": counts["bodies_cut"],
			"files": counts["files"],
			"skipped_rows": counts["skipped_rows"],
			"more_left": counts["more_left"],
			"summary": f"Settings: {', '.join(kept)}. Emails handled: {counts['handled']}.",
		}
	).insert(ignore_permissions=True)
