"""Older mail brought in: from the mailbox by date (backfill), or from an uploaded .eml, .mbox or .zip file.

Both go through the same pipeline as a sync (identity, decisions, writer), so mail is filed exactly once
however often it is brought in, and both are history: filed on its Customers and Contacts, but it opens no
Issue, sends no acknowledgement and notifies nobody (IssueRouter with imported=True). Neither reads nor moves
the account's sync cursor: the mailbox is listed by date through the provider's `fetch_range`.

One job per account at a time (its job id, and a database lock), bounded like a sync: after the run time
budget it stops after the batch in hand and queues its continuation with the listing's position. Each
backfill or upload keeps one Email Sync Log row, updated as it goes, with a summary in words.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator
from datetime import date

import frappe
from frappe import _
from frappe.utils import format_date, getdate, now_datetime, today

from email_sync.engine import ERROR, FILED, NEEDS_REVIEW, SKIPPED, parse_message, plan_messages
from email_sync.providers import ProviderError
from email_sync.sync.context import account_config, load_context, load_settings, provider_for
from email_sync.sync.fetch_errors import with_fetch_errors
from email_sync.sync.importer import Source, import_sources
from email_sync.sync.issues import IssueRouter
from email_sync.sync.runner import DEFAULT_TIME_BUDGET, learn_new_contacts
from email_sync.sync.writer import Item, write_batch

PROGRESS_EVENT = "email_sync_backfill_progress"
JOB_TIMEOUT = 60 * 60
UPLOAD_TYPES = (".eml", ".mbox", ".zip")
ZIP_MAX_ENTRIES = 20_000
ZIP_MAX_ENTRY_BYTES = 50 * 1024 * 1024  # one message file (or mbox) unpacked
ZIP_MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024  # everything unpacked: a zip bomb stops here, not the disk


class UploadError(Exception):
	"""What is wrong with an uploaded file, in words for the person who uploaded it."""


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
	_enqueue(account_name, job_id(account_name), since=str(since), before=str(before), folder=folder or None)
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


def _enqueue(account_name: str, job: str, **kwargs) -> None:
	frappe.enqueue(
		"email_sync.sync.backfill.run_backfill",
		queue="long",
		timeout=JOB_TIMEOUT,
		job_id=job,
		deduplicate=True,
		enqueue_after_commit=True,
		account=account_name,
		**kwargs,
	)


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
	log = log or _start_log(account_name, "Backfill", label)
	counts = _counts_so_far(log)
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
				_publish(account_name, "backfill", counts, batch.remaining)
				if batch.remaining != 0 and time.monotonic() - started > budget:
					yielded = True  # every batch so far is committed: the continuation goes on from `position`
					break
	except ProviderError as e:
		frappe.db.rollback()
		_finish_log(log, label, counts, "Failed", error=(e.code, e.message, e.fix))
		_publish(account_name, "backfill", counts, 0, done=True, summary=_summary(label, counts), failed=e.message)
		return {"status": "Failed", "error": e.message, **counts}
	except Exception as e:  # noqa: BLE001 - a job never raises: the failure goes to the log row and Error Log
		frappe.db.rollback()
		error_log = frappe.log_error(title=f"Email Sync could not bring in older mail for {account_name}")
		error = ("unexpected_error", f"Unexpected error: {e!r}", f"See Error Log {error_log.name}.")
		_finish_log(log, label, counts, "Failed", error=error)
		_publish(account_name, "backfill", counts, 0, done=True, summary=_summary(label, counts), failed=error[1])
		return {"status": "Failed", "error": error[1], **counts}
	if yielded:
		_save_progress(log, label, counts)
		continuation = job_id(account_name, True)
		from rq import get_current_job

		current = get_current_job()
		if current is not None and current.id.endswith(continuation):
			continuation = job_id(account_name)  # a job id still running counts as queued: use the other one
		frappe.enqueue(
			"email_sync.sync.backfill.run_backfill",
			queue="long",
			timeout=JOB_TIMEOUT,
			job_id=continuation,
			deduplicate=True,
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
	status = _finish_log(log, label, counts, "Partial" if counts[ERROR] else "Success")
	_publish(account_name, "backfill", counts, 0, done=True, summary=_summary(label, counts))
	return {"status": status, **counts}


def _acquire(account: str, wait: int = 0) -> bool:
	# A database lock, released by itself if the worker dies: a continuation and a second request never overlap.
	return bool(frappe.db.sql("select get_lock(%s, %s)", (_lock_name(account), wait))[0][0])


def _release(account: str) -> None:
	frappe.db.sql("select release_lock(%s)", (_lock_name(account),))


def _lock_name(account: str) -> str:
	return f"email_sync:older:{frappe.local.site}:{account}"[:64]


# -- the upload import --------------------------------------------------------------------------------------


def start_upload_import(account_name: str, file_name: str) -> dict:
	"""Queue importing an uploaded .eml, .mbox or .zip File attached to the account. The File is deleted when
	the import ends, whatever the outcome: it is customer mail, and once filed it is kept where it belongs."""
	file = frappe.get_doc("File", file_name)
	if file.attached_to_doctype != "Email Sync Account" or file.attached_to_name != account_name:
		frappe.throw(_("Upload the file on this account's form."))
	if not file.file_name or not file.file_name.lower().endswith(UPLOAD_TYPES) or file.is_remote_file:
		name = file.file_name or file.file_url
		file.delete(ignore_permissions=True)
		frappe.throw(
			_("{0} is not an uploaded .eml, .mbox or .zip file.").format(frappe.bold(name)), title=_("Cannot import")
		)
	if not file.is_private:  # customer mail is never public, not even until the import has run
		file.is_private = 1
		file.save(ignore_permissions=True)
	frappe.enqueue(
		"email_sync.sync.backfill.run_upload_import",
		queue="long",
		timeout=JOB_TIMEOUT,
		job_id=job_id(account_name) + "::upload::" + file.name,
		deduplicate=True,
		enqueue_after_commit=True,
		account=account_name,
		file_name=file.name,
	)
	return {"file": file.name, "file_name": file.file_name}


def run_upload_import(account: str, file_name: str) -> dict:
	"""Import the uploaded File into `account` as history, with progress and a log row; then delete the File.
	It may run beside a backfill of the same account: identity files each email once either way."""
	shown = frappe.db.get_value("File", file_name, "file_name") or file_name
	label = _("Import of {0}").format(shown)
	log = _start_log(account, "Import", label)
	counts: Counter = Counter()
	try:
		error = _import_upload(account, file_name, shown, counts)
	finally:
		_delete_upload(file_name)
	# Finished only now: whoever sees the import end (log row, progress) finds the upload already gone.
	status = "Failed" if error else ("Partial" if counts[ERROR] else "Success")
	_finish_log(log, label, counts, status, error=error)
	_publish(account, "import", counts, 0, done=True, summary=_summary(label, counts), failed=error[1] if error else "")
	return {"status": status, **({"error": error[1]} if error else {}), **counts}


def _import_upload(account: str, file_name: str, shown: str, counts: Counter) -> tuple | None:
	"""Import into `counts`; None, or (code, message, fix) when the file could not be imported."""
	scratch = tempfile.mkdtemp(prefix="email-sync-import-")
	try:
		path = frappe.get_doc("File", file_name).get_full_path()
		sources = list(_upload_files(path, shown, scratch))
		total = sum(_count(path) for path, _ in sources)

		def progress(read: int) -> None:
			counts["fetched"] = read
			_publish(account, "import", counts, max(0, total - read))

		result = import_sources(account, _read_upload(sources), progress=progress)
		counts.update({k: v for k, v in result.items() if k != "read"})
		counts["fetched"] = result["read"]
	except UploadError as e:
		frappe.db.rollback()
		return ("bad_upload", str(e), _("Upload an .eml, .mbox or .zip of those."))
	except Exception as e:  # noqa: BLE001 - a job never raises: the person who uploaded sees it on the log row
		frappe.db.rollback()
		error_log = frappe.log_error(title=f"Email Sync could not import {shown} for {account}")
		return ("unexpected_error", _("The file could not be read: {0!r}").format(e), f"See Error Log {error_log.name}.")
	finally:
		shutil.rmtree(scratch, ignore_errors=True)
	return None


def _delete_upload(file_name: str) -> None:
	try:
		if frappe.db.exists("File", file_name):
			frappe.delete_doc("File", file_name, ignore_permissions=True, force=True)
		frappe.db.commit()
	except Exception:  # noqa: BLE001 - the import is done; a File left behind is logged, not a failed import
		frappe.db.rollback()
		frappe.log_error(title="Email Sync could not delete an imported upload")


def _upload_files(path: str, name: str, scratch: str) -> Iterator[tuple[str, str]]:
	"""(path on disk, name to show) of each mail file in the upload; a .zip is unpacked into `scratch`, with
	bounded sizes and flat names (an entry's path never leaves `scratch`)."""
	if not os.path.exists(path) or os.path.getsize(path) == 0:
		raise UploadError(_("{0} is empty.").format(name))
	lowered = name.lower()
	if lowered.endswith(".eml"):
		yield path, name
		return
	if lowered.endswith(".mbox"):
		with open(path, "rb") as f:
			if f.read(5) != b"From ":
				raise UploadError(
					_("{0} is not an mbox file: an mbox starts with a line beginning with \"From \".").format(name)
				)
		yield path, name
		return
	if not lowered.endswith(".zip"):
		raise UploadError(_("{0} is not an .eml, .mbox or .zip file.").format(name))
	try:
		archive = zipfile.ZipFile(path)
	except (zipfile.BadZipFile, OSError):
		raise UploadError(_("{0} is not a readable .zip file (it may be damaged or incomplete).").format(name)) from None
	with archive:
		entries = [
			e for e in archive.infolist()
			if not e.is_dir() and e.filename.lower().endswith((".eml", ".mbox"))
			and not os.path.basename(e.filename).startswith(".") and "__MACOSX/" not in e.filename
		]  # fmt: skip
		if not entries:
			raise UploadError(_("{0} holds no .eml or .mbox files.").format(name))
		if len(entries) > ZIP_MAX_ENTRIES:
			raise UploadError(_("{0} holds more than {1} mail files: split it.").format(name, ZIP_MAX_ENTRIES))
		unpacked = 0
		for n, entry in enumerate(sorted(entries, key=lambda e: e.filename)):
			target = os.path.join(scratch, f"{n:06d}{os.path.splitext(entry.filename)[1].lower()}")
			written = 0
			try:
				with archive.open(entry) as src, open(target, "wb") as dst:
					while chunk := src.read(1024 * 1024):
						written += len(chunk)
						unpacked += len(chunk)
						if written > ZIP_MAX_ENTRY_BYTES or unpacked > ZIP_MAX_TOTAL_BYTES:
							raise UploadError(
								_("{0} in {1} unpacks to more than {2} MB: import it separately, or split it.").format(
									entry.filename, name, ZIP_MAX_ENTRY_BYTES // (1024 * 1024)
									if written > ZIP_MAX_ENTRY_BYTES else ZIP_MAX_TOTAL_BYTES // (1024 * 1024)
								)
							)
						dst.write(chunk)
			except (zipfile.BadZipFile, zlib.error, EOFError, RuntimeError, NotImplementedError):
				raise UploadError(_("{0} in {1} cannot be unpacked (damaged, encrypted or an unknown compression).").format(
					entry.filename, name)) from None
			if entry.filename.lower().endswith(".mbox"):
				with open(target, "rb") as f:
					if f.read(5) != b"From ":
						raise UploadError(_("{0} in {1} is not an mbox file.").format(entry.filename, name))
			yield target, f"{name}/{entry.filename}"


def _read_upload(files: list[tuple[str, str]]) -> Iterator[Source]:
	from email_sync.engine.__main__ import read_file

	for path, shown in files:
		for index, raw in read_file(path):
			# The name the person uploaded, not a scratch path, is what the Synced Email keeps.
			yield Source(f"{shown}#{index}" if shown.lower().endswith(".mbox") else shown, raw)


def _count(path: str) -> int:
	from email_sync.sync.importer import count_messages

	return count_messages([path])


# -- log row and progress -----------------------------------------------------------------------------------


def _start_log(account: str, trigger: str, label: str) -> str:
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


def _counts_so_far(log: str) -> Counter:
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


def _log_values(label: str, counts: Counter) -> dict:
	return {
		"summary": _summary(label, counts),
		"fetched": counts["fetched"],
		"filed": counts[FILED],
		"skipped": counts[SKIPPED],
		"needs_review": counts[NEEDS_REVIEW],
		"failed": counts[ERROR],
		"already_synced": counts["already_synced"],
	}


def _save_progress(log: str, label: str, counts: Counter) -> None:
	frappe.db.set_value("Email Sync Log", log, {**_log_values(label, counts), "yielded": 1})
	frappe.db.commit()


def _finish_log(log: str, label: str, counts: Counter, status: str, error: tuple | None = None) -> str:
	values = {**_log_values(label, counts), "status": status, "finished": now_datetime()}
	started = frappe.db.get_value("Email Sync Log", log, "started")
	if started:
		values["duration"] = round((now_datetime() - started).total_seconds(), 2)
	if error:
		values.update(error_code=error[0], error=error[1], fix=error[2])
	frappe.db.set_value("Email Sync Log", log, values)
	frappe.db.commit()
	return status


def _summary(label: str, counts: Counter) -> str:
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


def _publish(account: str, kind: str, counts: Counter, remaining, done=False, summary="", failed="") -> None:
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
