"""An uploaded .eml, .mbox or .zip of those imported into an account as history, in a background job.

Through the same pipeline as a sync (sync/importer.py), so mail is filed exactly once however often it is
uploaded; history: filed on its Customers and Contacts, but it opens no Issue, sends no acknowledgement and
notifies nobody. The upload is customer mail: private from the start, and deleted when the import ends.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import zipfile
import zlib
from collections import Counter
from collections.abc import Iterator

import frappe
from frappe import _

from email_sync.engine import ERROR
from email_sync.sync.backfill import job_id
from email_sync.sync.importer import Source, import_sources
from email_sync.sync.older_mail_log import finish_log, publish, start_log, summary
from email_sync.sync.tasks import enqueue_long

UPLOAD_TYPES = (".eml", ".mbox", ".zip")
ZIP_MAX_ENTRIES = 20_000
ZIP_MAX_ENTRY_BYTES = 50 * 1024 * 1024  # one message file (or mbox) unpacked
ZIP_MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024  # everything unpacked: a zip bomb stops here, not the disk


class UploadError(Exception):
	"""What is wrong with an uploaded file, in words for the person who uploaded it."""


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
	enqueue_long(
		"email_sync.sync.upload_import.run_upload_import",
		job_id(account_name) + "::upload::" + file.name,
		after_commit=True,
		account=account_name,
		file_name=file.name,
	)
	return {"file": file.name, "file_name": file.file_name}


def run_upload_import(account: str, file_name: str) -> dict:
	"""Import the uploaded File into `account` as history, with progress and a log row; then delete the File.
	It may run beside a backfill of the same account: identity files each email once either way."""
	shown = frappe.db.get_value("File", file_name, "file_name") or file_name
	label = _("Import of {0}").format(shown)
	log = start_log(account, "Import", label)
	counts: Counter = Counter()
	try:
		error = _import_upload(account, file_name, shown, counts)
	finally:
		_delete_upload(file_name)
	# Finished only now: whoever sees the import end (log row, progress) finds the upload already gone.
	status = "Failed" if error else ("Partial" if counts[ERROR] else "Success")
	finish_log(log, label, counts, status, error=error)
	publish(account, "import", counts, 0, done=True, summary=summary(label, counts), failed=error[1] if error else "")
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
			publish(account, "import", counts, max(0, total - read))

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


