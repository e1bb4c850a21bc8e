"""What the desk shows: the Emails section of Customer and Contact, one email's safe view, the Email Sync page.

Read-only methods, each checking that the caller may see what it asks for.
"""

from __future__ import annotations

import frappe
from frappe import _
from frappe.utils import now_datetime

from email_sync.engine.sanitize import safe_html_for_storage
from email_sync.engine.schedule import health
from email_sync.permissions import REVIEWER_ROLE, hidden_accounts, visible_accounts
from email_sync.sync.attachments import download_url
from email_sync.sync.shared import add_candidates

PARTIES = ("Customer", "Contact")


@frappe.whitelist()
def party_emails(doctype: str, name: str, start: int = 0, page_length: int = 20) -> dict:
	"""Every email with this Customer or Contact, newest first, paged: the form's Emails section."""
	if doctype not in PARTIES:
		frappe.throw(_("Emails are listed for Customers and Contacts only."))
	frappe.get_doc(doctype, name).check_permission("read")
	start, page_length = max(int(start or 0), 0), min(max(int(page_length or 20), 1), 100)
	_shared, private = visible_accounts()
	params = {"doctype": doctype, "name": name, "private": private or ["-"], "line": f"%\n{name}\n%"}
	field = "matched_customers" if doctype == "Customer" else "matched_contacts"
	rows = frappe.db.sql(
		f"""select c.name, c.subject, c.sender, c.sender_full_name, c.recipients, c.cc, c.communication_date,
			c.sent_or_received, c.has_attachment, c.reference_doctype, c.reference_name, left(c.content, 2000) as content
		from `tabCommunication` c
		where c.communication_type = 'Communication' and c.communication_medium = 'Email' and (
			c.name in (select parent from `tabCommunication Link`
				where link_doctype = %(doctype)s and link_name = %(name)s and parenttype = 'Communication')
			or c.name in (select communication from `tabSynced Email`
				where account in %(private)s and status = 'Filed'
				and concat('\n', {field}, '\n') like %(line)s))
		order by c.communication_date desc
		limit {int(start)}, {int(page_length) + 1}""",
		params,
		as_dict=True,
	)
	more = len(rows) > page_length
	rows = rows[:page_length]
	_add_sync_details(rows)
	return {"emails": rows, "more": more, "start": start}


def _add_sync_details(rows: list[dict]) -> None:
	if not rows:
		return
	synced = frappe.db.sql(
		"""select se.name, se.communication, se.snippet, se.attachment_count, se.account, a.provider
		from `tabSynced Email` se join `tabEmail Sync Account` a on a.name = se.account
		where se.communication in %(names)s order by se.creation""",
		{"names": [r.name for r in rows]},
		as_dict=True,
	)
	by_comm = {}
	for s in synced:
		by_comm.setdefault(s.communication, s)
	files = attachment_rows([s.name for s in by_comm.values()])
	for row in rows:
		s = by_comm.get(row.name)
		row.attachments = files.get(s.name, []) if s else []
		row.source = s.provider if s else "ERPNext"  # not synced: sent or received by ERPNext itself
		row.snippet = s.snippet if s else " ".join(frappe.utils.strip_html(row.content or "").split())[:200]
		row.pop("content", None)
		row.attachment_count = s.attachment_count if s else int(row.has_attachment or 0)
		row.account = s.account if s else None
		row.direction = "out" if row.sent_or_received == "Sent" else "in"


@frappe.whitelist()
def email_view(communication: str) -> dict:
	"""One email for reading: its sanitised HTML with remote images held back, and its headers."""
	denied = _("You may not read this email.")
	# A missing email and a forbidden one get the same answer: the id says nothing about what exists.
	if not communication or not isinstance(communication, str) or len(communication) > 140:
		raise frappe.PermissionError(denied)
	if not frappe.db.exists("Communication", communication):
		raise frappe.PermissionError(denied)
	doc = frappe.get_doc("Communication", communication)
	if not _may_read(doc):
		raise frappe.PermissionError(denied)
	html, blocked = stored_view(doc)
	synced = frappe.db.get_value("Synced Email", {"communication": doc.name}, "name", order_by="creation asc")
	files = attachment_rows([synced]).get(synced, []) if synced else []
	html = inline_images(html, files)
	return {
		"name": doc.name,
		"party": _party_of(doc, synced),
		"subject": doc.subject,
		"sender": doc.sender,
		"sender_full_name": doc.sender_full_name,
		"recipients": doc.recipients,
		"cc": doc.cc,
		"date": doc.communication_date,
		"direction": "out" if doc.sent_or_received == "Sent" else "in",
		"html": html,
		"remote_images": blocked,
		"reference_doctype": doc.reference_doctype,
		"reference_name": doc.reference_name,
		"attachments": files,
	}


def _party_of(doc, synced: str | None) -> dict | None:
	"""Where a reply to this email is filed when it belongs to no Issue: its first Customer, else Contact."""
	links = frappe.get_all(
		"Communication Link",
		filters={"parent": doc.name, "link_doctype": ("in", PARTIES)},
		fields=["link_doctype", "link_name"],
		order_by="idx asc",
	)
	if not links and synced:  # a private account's email has no timeline links: what it matched instead
		row = frappe.db.get_value("Synced Email", synced, ["matched_customers", "matched_contacts"], as_dict=True)
		links = [
			frappe._dict(link_doctype=doctype, link_name=value.splitlines()[0])
			for doctype, value in (("Customer", row.matched_customers), ("Contact", row.matched_contacts))
			if value
		]
	for doctype in PARTIES:
		for link in links:
			if link.link_doctype == doctype and frappe.has_permission(doctype, "read", link.link_name):
				return {"doctype": doctype, "name": link.link_name}
	return None


def attachment_rows(synced_emails: list[str]) -> dict[str, list[dict]]:
	"""Each synced email's attachments as the desk lists them: name, size, and a download link or a reason."""
	if not synced_emails:
		return {}
	rows = frappe.db.sql(
		"""select name, parent, file_name, size, content_type, file, reason, content_id, inline
		from `tabEmail Sync Attachment` where parent in %(parents)s and parenttype = 'Synced Email'
		order by parent, idx""",
		{"parents": synced_emails},
		as_dict=True,
	)
	out: dict[str, list[dict]] = {}
	for row in rows:
		row.url = download_url(row.name) if row.file else None
		out.setdefault(row.pop("parent"), []).append(row)
	return out


INLINE_TYPES = ("image/png", "image/gif", "image/jpeg", "image/webp")
INLINE_BYTES = 5 * 1024 * 1024  # in the viewer at most; larger inline images stay as attachments to download


def inline_images(html: str, files: list[dict]) -> str:
	"""Inline images shown in place: the stored image as a data: URI (the viewer is a sandboxed frame with
	no cookies, so it cannot fetch the site's files; data: images are all its policy allows). The stored HTML
	refers to them by their download link (or, for mail filed before, by cid:)."""
	import base64
	from html import escape

	budget = INLINE_BYTES
	for row in files:
		if not (row.content_id and row.file and row.content_type in INLINE_TYPES and row.size <= budget):
			continue
		references = [f'"{row.url}"', f'"{escape(f"cid:{row.content_id}", quote=True)}"']
		if not any(r in html for r in references):
			continue
		content = frappe.get_doc("File", row.file).get_content()
		budget -= len(content)
		data = f'"data:{row.content_type};base64,{base64.b64encode(content).decode()}"'
		for reference in references:
			html = html.replace(reference, data)
	return html


@frappe.whitelist()
def attachment(name: str):
	"""Download one attachment of a synced email, for whoever may read that email."""
	denied = _("You may not read this attachment.")
	row = frappe.db.get_value("Email Sync Attachment", name, ["parent", "file", "file_name"], as_dict=True) if (
		isinstance(name, str) and len(name) <= 140) else None  # fmt: skip
	communication = row and frappe.db.get_value("Synced Email", row.parent, "communication")
	if not (row and row.file and communication and frappe.db.exists("Communication", communication)):
		raise frappe.PermissionError(denied)
	if not _may_read(frappe.get_doc("Communication", communication)):
		raise frappe.PermissionError(denied)
	file = frappe.get_doc("File", row.file)
	frappe.local.response.filename = row.file_name or file.file_name
	frappe.local.response.filecontent = file.get_content()
	frappe.local.response.type = "download"


def stored_view(doc) -> tuple[str, int]:
	"""The email's HTML as the sync stored it (sanitised once, within its budget, when it was filed).

	Mail that reached the site some other way (Frappe's own pull, mail sent from ERPNext) is sanitised here;
	the sanitiser runs in linear time, so this is bounded too."""
	content = doc.content or ""
	if frappe.db.exists("Synced Email", {"communication": doc.name, "email_key": ("like", f"{doc.name}%")}):
		return content, content.count("data-remote-src=")
	return safe_html_for_storage(content, doc.text_content or "")


def _may_read(doc) -> bool:
	"""A synced email is read by the owner of a private account that synced it (and administrators), and,
	for shared accounts, by whoever may read the Communication or a Customer or Contact it is filed on."""
	accounts = set(frappe.get_all("Synced Email", filters={"communication": doc.name}, pluck="account"))
	if accounts:
		shared, private = visible_accounts()
		if accounts & set(private):
			return True
		if not accounts & set(shared):
			return False
	if frappe.has_permission("Communication", "read", doc=doc):  # Document.has_permission would msgprint a denial
		return True
	links = frappe.get_all(
		"Communication Link", filters={"parent": doc.name}, fields=["link_doctype", "link_name"]
	)
	return any(
		frappe.has_permission(link.link_doctype, "read", link.link_name) for link in links if link.link_doctype in PARTIES
	)


@frappe.whitelist()
def dashboard(limit: int = 20) -> dict:
	"""Everything the Email Sync page shows, in one call."""
	frappe.only_for(("System Manager", REVIEWER_ROLE))
	limit = min(int(limit or 20), 200)
	now = now_datetime()
	accounts = frappe.get_all(
		"Email Sync Account",
		fields=[
			"name", "provider", "email_address", "status", "frequency", "last_sync", "last_success",
			"emails_synced", "error_count", "consecutive_failures", "last_error", "last_error_fix", "shared", "store_mode",
		],
		order_by="email_address asc",
	)  # fmt: skip
	for a in accounts:
		a.health, a.health_reason, a.health_fix = health(
			a.status, a.consecutive_failures or 0, a.last_success, a.frequency, now, a.last_error or "", a.last_error_fix or ""
		)
	fields = [
		"name", "account", "status", "direction", "subject", "sender", "sender_name", "email_date", "reason",
		"decision_rule", "confidence", "matched_customers", "matched_contacts", "communication", "issue",
		"attachment_count",
	]  # fmt: skip
	# get_list: the permission hooks keep another owner's private mail off the page of a reviewer
	recent = frappe.get_list("Synced Email", fields=fields, order_by="creation desc", limit=limit)
	review, review_count = needs_review(fields, limit)
	add_candidates(review)  # an address several Customers share: each candidate named, to choose from
	log = frappe.get_all(
		"Email Sync Log",
		fields=["name", "account", "status", "triggered_by", "started", "duration", "fetched", "filed",
			"skipped", "needs_review", "failed", "error", "fix"],
		order_by="started desc",
		limit=limit,
	)  # fmt: skip
	return {
		"accounts": accounts,
		"recent": recent,
		"needs_review": review,
		"needs_review_count": review_count,
		"log": log,
		"connected": any(a.health != "red" and a.status == "Active" for a in accounts),
	}


def needs_review(fields: list[str], limit: int) -> tuple[list[dict], int]:
	"""Emails waiting for review, newest email first, each once however many mailboxes hold it (one row
	stands for its copies; `mailboxes` lists them, and an action on it settles them all)."""
	hidden = hidden_accounts() or ["-"]
	params = {"hidden": hidden, "limit": limit}
	rows = frappe.db.sql(
		f"""select {", ".join(f"se.`{f}`" for f in fields)}, copies.mailboxes
		from `tabSynced Email` se join (
			select email_key, min(name) as first, group_concat(distinct account separator '\n') as mailboxes
			from `tabSynced Email` where status = 'Needs Review' and account not in %(hidden)s
			group by email_key) copies on copies.first = se.name
		order by se.email_date desc, se.creation desc
		limit %(limit)s""",
		params,
		as_dict=True,
	)
	count = frappe.db.sql(
		"""select count(distinct email_key) from `tabSynced Email`
		where status = 'Needs Review' and account not in %(hidden)s""",
		params,
	)[0][0]
	return rows, count
