"""What an account keeps of each email: the store mode (full, snippet, headers) and its attachments as Files.

Attachments become private Files attached to the email's Communication, through Frappe's File, which
stores the same content once (content hash) and applies its own permissions. Every attachment is also
listed on the Synced Email, with the File it became or the reason it was not stored. Mail without
attachments costs nothing here: Files go through the ORM one attachment at a time, and only for them.
"""

from __future__ import annotations

import hashlib
from html import escape

import frappe
from frappe import _
from frappe.utils import escape_html

from email_sync.engine.attachments import AttachmentPolicy, decide
from email_sync.engine.model import Message

FULL, SNIPPET, HEADERS = "Full email", "Snippet only", "Headers only"
ATTACHMENT_FIELDS = (
	"name", "creation", "modified", "modified_by", "owner", "docstatus", "idx", "parent", "parenttype",
	"parentfield", "file_name", "size", "content_type", "file", "reason", "content_id", "inline",
)  # fmt: skip


def policy_for(account) -> AttachmentPolicy:
	settings = frappe.get_cached_doc("Email Sync Settings")
	mode = account.get("attachments_mode") or "Up to limit"
	if (account.get("store_mode") or FULL) != FULL:
		mode = "None"
	limit = account.get("attachment_limit_mb")
	return AttachmentPolicy.from_settings(mode, 25 if limit in (None, "") else limit, settings.blocked_attachment_types)


def apply_store_mode(message: Message, mode: str, snippet_length: int = 200) -> None:
	"""Drop what the account does not keep, before anything is written (or routed onto an Issue)."""
	if mode == SNIPPET:
		message.text = message.snippet(snippet_length)
		message.html = ""
	elif mode == HEADERS:
		message.text = ""
		message.html = ""
	if mode != FULL:
		for attachment in message.attachments:
			object.__setattr__(attachment, "content", b"")


def not_kept_reason(mode: str) -> str:
	if mode == SNIPPET:
		return _("Not stored: this account keeps snippets only.")
	return _("Not stored: this account keeps headers only.")


def row_name(synced_email: str, index: int) -> str:
	return hashlib.sha1(f"{synced_email}\x1f{index}".encode()).hexdigest()[:20]


def store(items, synced_name, new_communications: set[str], policy: AttachmentPolicy, mode: str, now, user) -> list:
	"""Files for the attachments of `items`, and the rows that list them on their Synced Emails.

	Files are made only for Communications this batch created (a second mailbox's copy of the same email
	adds no File) and never twice for the same content on one Communication (a re-run adds none either)."""
	rows = []
	for item in items:
		message = item.plan.message
		if not message.attachments:
			continue

		parent = synced_name(item)
		existing = _files_on(item.communication) if item.communication else {}
		for index, attachment in enumerate(message.attachments, start=1):
			reason = not_kept_reason(mode) if mode != FULL else decide(attachment, policy)
			file_name = None
			if not reason and not item.communication:
				reason = _("Not stored: the email was not filed.")
			if not reason:
				digest = hashlib.md5(attachment.content).hexdigest()  # File's own content hash
				file_name = existing.get(digest)
				if file_name is None and item.communication in new_communications:
					file_name, reason = _save_file(attachment, "Communication", item.communication)
					if file_name:
						existing[digest] = file_name
				elif file_name is None:
					reason = _("Kept with the copy of this email filed first.")
			rows.append(
				(
					row_name(parent, index), now, now, user, user, 0, index, parent, "Synced Email", "attachments",
					(attachment.original_filename or attachment.filename)[:140], attachment.size,
					attachment.content_type[:140], file_name, reason or None, attachment.content_id[:140],
					1 if attachment.inline else 0,
				)
			)  # fmt: skip
	return rows


def download_url(row: str) -> str:
	return f"/api/method/email_sync.desk.attachment?name={row}"


def link_inline_images(html: str, message: Message, synced_email: str) -> str:
	"""`cid:` references in the stored HTML point at the attachment's download link, so the timeline shows
	inline images to whoever may read the email (the viewer swaps them for data: URIs, see desk.py)."""
	for index, attachment in enumerate(message.attachments, start=1):
		if attachment.content_id and "cid:" in html:
			reference = escape(f"cid:{attachment.content_id}", quote=True)
			html = html.replace(f'"{reference}"', f'"{download_url(row_name(synced_email, index))}"')
	return html


def _files_on(communication: str) -> dict[str, str]:
	return dict(
		frappe.db.sql(
			"""select content_hash, name from `tabFile`
			where attached_to_doctype = 'Communication' and attached_to_name = %s""",
			communication,
		)
	)


def _save_file(attachment, doctype: str, name: str) -> tuple[str | None, str]:
	"""(File name, "") or (None, the reason it could not be stored). Never raises for one bad file."""
	frappe.db.savepoint("email_sync_file")
	try:
		doc = frappe.get_doc(
			{
				"doctype": "File",
				"file_name": attachment.filename,  # the safe name; the original stays on the Synced Email
				"attached_to_doctype": doctype,
				"attached_to_name": name,
				"content": attachment.content,
				"is_private": 1,
			}
		)
		doc.flags.ignore_duplicate_entry_error = True
		doc.insert(ignore_permissions=True)  # the sync's own record of what the sender sent
		return doc.name, ""
	except Exception as e:  # a size or extension limit of the site, a full disk: listed, the email still files
		frappe.db.rollback(save_point="email_sync_file")
		frappe.clear_last_message()
		return None, _("Not stored: {0}").format(frappe.utils.strip_html(str(e))[:300] or type(e).__name__)


def attach_to_issue(communication: str, issue: str) -> None:
	"""The email's Files on the Issue too, where support looks (same content, no second copy on disk)."""
	on_issue = set(
		frappe.get_all(
			"File",
			filters={"attached_to_doctype": "Issue", "attached_to_name": issue},
			pluck="content_hash",
		)
	)
	for file in frappe.get_all(
		"File",
		filters={"attached_to_doctype": "Communication", "attached_to_name": communication},
		fields=["name", "file_name", "file_url", "content_hash", "is_private", "file_size"],
	):
		if file.content_hash in on_issue:
			continue
		doc = frappe.get_doc(
			{
				"doctype": "File",
				"file_name": file.file_name,
				"file_url": file.file_url,
				"attached_to_doctype": "Issue",
				"attached_to_name": issue,
				"is_private": file.is_private,
				"content_hash": file.content_hash,
				"file_size": file.file_size,
			}
		)
		doc.flags.ignore_duplicate_entry_error = True
		doc.insert(ignore_permissions=True)
		on_issue.add(file.content_hash)


STRICTNESS = {FULL: 0, SNIPPET: 1, HEADERS: 2}


def held_only_by(account: str) -> list[str]:
	"""Communications that this account alone synced (another mailbox's copy keeps its own mode)."""
	return frappe.db.sql_list(
		"""select distinct communication from `tabSynced Email` mine
		where account = %(account)s and ifnull(communication, '') != ''
		and not exists (select 1 from `tabSynced Email` other
			where other.communication = mine.communication and other.account != %(account)s)""",
		{"account": account},
	)


def strip_stored(account: str) -> dict:
	"""Bring what the account already stored down to its current store mode: bodies cut to the snippet (or
	removed), Files deleted (their content stays on disk while another record still uses it)."""
	mode = frappe.db.get_value("Email Sync Account", account, "store_mode") or FULL
	if mode == FULL:
		return {"stripped": 0}
	communications = held_only_by(account)
	for chunk in _chunks(communications, 500):
		snippets = dict(
			frappe.db.sql(
				"select communication, snippet from `tabSynced Email` where communication in %(names)s",
				{"names": chunk},
			)
		)
		for name in chunk:
			snippet = (snippets.get(name) or "") if mode == SNIPPET else ""
			frappe.db.set_value(
				"Communication", name, {"content": escape_html(snippet), "text_content": snippet}, update_modified=False
			)
		for file in frappe.get_all(
			"File", filters={"attached_to_doctype": "Communication", "attached_to_name": ("in", chunk)}, pluck="name"
		):
			frappe.delete_doc("File", file, ignore_permissions=True, force=True)
		frappe.db.commit()
	if mode == HEADERS:
		frappe.db.sql("update `tabSynced Email` set snippet = '' where account = %s", account)
	frappe.db.sql(
		"""update `tabEmail Sync Attachment` set file = null, reason = %s
		where parenttype = 'Synced Email' and parent in (select name from `tabSynced Email` where account = %s)""",
		(not_kept_reason(mode), account),
	)
	frappe.db.commit()
	return {"stripped": len(communications)}


def _chunks(items: list, size: int):
	for i in range(0, len(items), size):
		yield items[i : i + size]
