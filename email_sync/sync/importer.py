"""Mail from files (.eml, mbox, Maildir) filed for an account through the same pipeline as a sync.

Messages are parsed and decided with the account's context, and written by the writer in batches of
`batch_size`, so memory stays bounded whatever the size of the archive. The account's provider cursor is
never moved (the mailbox has not been read), and identity makes importing the same files twice add nothing.
Imported mail is history: it is filed but opens no Issue and notifies nobody (see IssueRouter).
"""

from __future__ import annotations

import mailbox
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import frappe

from email_sync.engine import parse_message, plan_messages
from email_sync.engine.__main__ import read_file
from email_sync.providers import FetchedMessage
from email_sync.sync.context import account_config, load_context, load_settings
from email_sync.sync.issues import IssueRouter
from email_sync.sync.runner import learn_new_contacts
from email_sync.sync.writer import Item, write_batch

IMPORT_FOLDER = "Import"
BATCH_SIZE = 200


class ImportSourceError(Exception):
	"""A path that is neither a file nor a folder of mail."""


@dataclass
class Source:
	label: str  # where the message came from: "path" or "path#index", kept as the Synced Email's provider id
	raw: bytes


def read_sources(paths: list[str]) -> Iterator[Source]:
	"""Every message under `paths`, one at a time: .eml and mbox files, Maildir folders, folders of files."""
	for path in paths:
		if not os.path.exists(path):
			raise ImportSourceError(f"{path}: no such file or folder")
		if os.path.isdir(path):
			yield from _read_folder(path)
		else:
			yield from _read_one_file(path)


def _read_one_file(path: str) -> Iterator[Source]:
	for index, raw in read_file(path):
		yield Source(f"{path}#{index}" if index else path, raw)


def _read_folder(path: str) -> Iterator[Source]:
	if _is_maildir(path):
		box = mailbox.Maildir(path, factory=None, create=False)
		for key in sorted(box.iterkeys()):
			yield Source(os.path.join(path, key), box.get_bytes(key))
		return
	for root, dirs, files in os.walk(path):
		dirs.sort()
		for name in sorted(files):
			if not name.startswith("."):
				yield from _read_one_file(os.path.join(root, name))


def count_messages(paths: list[str]) -> int:
	"""How many messages an import of `paths` will read (for a progress bar), without reading their bodies.
	Raises ImportSourceError for a path that does not exist."""
	total = 0
	for path in paths:
		if not os.path.exists(path):
			raise ImportSourceError(f"{path}: no such file or folder")
		if _is_maildir(path):
			total += len(mailbox.Maildir(path, factory=None, create=False))
		elif os.path.isdir(path):
			total += sum(_count_file(os.path.join(root, name)) for root, _, files in os.walk(path)
				for name in files if not name.startswith("."))  # fmt: skip
		else:
			total += _count_file(path)
	return total


def _count_file(path: str) -> int:
	with open(path, "rb") as f:
		is_mbox = f.read(5) == b"From "
	if not is_mbox:
		return 1
	box = mailbox.mbox(path, create=False)
	try:
		return len(box)  # the table of contents: message offsets, not messages
	finally:
		box.close()


def _is_maildir(path: str) -> bool:
	return all(os.path.isdir(os.path.join(path, sub)) for sub in ("cur", "new", "tmp"))


def import_files(
	account_name: str,
	paths: list[str],
	batch_size: int = BATCH_SIZE,
	progress: Callable[[int], None] | None = None,
) -> Counter:
	"""File the messages under `paths` for `account_name`. Returns counts by status, plus 'read' and
	'already_synced'. `progress` is called with the number of messages read so far after each batch.
	Raises ImportSourceError for a path that does not exist, before anything is written."""
	for path in paths:
		if not os.path.exists(path):
			raise ImportSourceError(f"{path}: no such file or folder")
	return import_sources(account_name, read_sources(paths), batch_size, progress)


def import_sources(
	account_name: str,
	sources: Iterable[Source],
	batch_size: int = BATCH_SIZE,
	progress: Callable[[int], None] | None = None,
) -> Counter:
	"""File `sources` (read one at a time) for `account_name`, `batch_size` to a transaction; see import_files."""
	account = frappe.get_doc("Email Sync Account", account_name)
	config = account_config(account)
	settings = load_settings()
	context = load_context(account, config)
	router = IssueRouter(account, settings, imported=True)
	snippet_length = int(settings.snippet_length or 200)
	counts: Counter = Counter()
	batch: list[Source] = []
	for source in sources:
		batch.append(source)
		if len(batch) >= batch_size:
			_write(account_name, batch, context, router, snippet_length, counts, progress)
			batch = []
	if batch:
		_write(account_name, batch, context, router, snippet_length, counts, progress)
	return counts


def _write(account_name, batch, context, router, snippet_length, counts, progress) -> None:
	fetched = [FetchedMessage(raw=s.raw, folder=IMPORT_FOLDER, provider_id=f"import:{s.label}") for s in batch]
	plans = plan_messages(((parse_message(m.raw), False) for m in fetched), context)
	items = [Item(m, plan) for m, plan in zip(fetched, plans, strict=True)]
	counts.update(write_batch(account_name, items, None, snippet_length, then=router.route))
	learn_new_contacts(context.directory, plans)  # so a later batch files onto them instead of making them again
	counts["read"] += len(batch)
	if progress:
		progress(counts["read"])
