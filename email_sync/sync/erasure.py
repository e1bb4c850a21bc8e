"""Erasure on request (GDPR): everything Email Sync synced with an address or a Contact.

What goes:
- the Synced Emails whose From, To or Cc is one of the addresses (for a Contact: any of its addresses, and
  mail Email Sync filed on that Contact), with their attachment rows, Comments and notifications;
- the Communications Email Sync made for them that no other Synced Email holds, with their timeline links,
  Files (their content leaves the disk unless another File shares it), Comments and notifications;
- when asked, the Issues those emails opened (made from email, raised by one of the addresses or for the
  Contact), through the ORM so that ERPNext's own clean-up runs.
What stays: Communications Email Sync did not make (Frappe's own Email Account pull, mail sent from ERPNext,
even when Email Sync filed onto them) or that other synced mail also holds; Issues unless asked, with their
description and Files; the Contact itself.

Matching is exact per address: `sender` through its index; To, Cc (comma-separated text) and Matched
Contacts through a LIKE prefilter over name-ordered pages, then an exact comparison here, so that erasing
a@x.com never touches ba@x.com.

`find` and `preview` change nothing. `erase` works in the caller's transaction, with bulk statements in
chunks: it blacklists first (nothing is deleted if an address cannot be blacklisted) and deletes Files last
(their content on disk cannot be rolled back), and leaves an Email Sync Erasure Log. No permission checks
here: the whitelisted methods (email_sync/erasure.py) are for System Managers only.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import frappe
from frappe.utils import now_datetime, nowdate

from email_sync.sync.writer import communication_name

CHUNK = 500
PAGE = 2000  # rows one page of a LIKE prefilter returns at most
PREVIEW_SUBJECTS = 10
SYNCED_COLUMNS = "name, subject, account, email_date, communication, email_key, issue"


@dataclass
class Scope:
	"""What an erasure covers, found by `find`."""

	addresses: list[str]
	contact: str | None
	synced: list  # Synced Email rows (SYNCED_COLUMNS)
	communications: list[str]  # made by Email Sync and held by these Synced Emails alone: they go
	kept_communications: list[str]  # not Email Sync's, or held by other synced mail too: they stay
	issues: list[str]  # opened from these emails (deleted only when asked)
	files: list[str]  # attached to the Communications that go


def addresses_of_contact(contact: str) -> list[str]:
	emails = frappe.get_all(
		"Contact Email", filters={"parenttype": "Contact", "parent": contact}, pluck="email_id"
	)
	return normalised([*emails, frappe.db.get_value("Contact", contact, "email_id")])


def normalised(addresses) -> list[str]:
	return list(dict.fromkeys(a.strip().lower() for a in addresses if a and "@" in a))


def find(addresses: list[str], contact: str | None = None) -> Scope:
	addresses = normalised(addresses)
	names = _matching_names(addresses, contact)
	synced = _rows(sorted(names))
	communications, kept = _communications(synced, names)
	return Scope(
		addresses=addresses,
		contact=contact,
		synced=synced,
		communications=communications,
		kept_communications=kept,
		issues=_opened_issues(synced, addresses, contact),
		files=_attached_files(communications),
	)


def preview(scope: Scope) -> dict:
	"""Counts, the mailboxes and dates concerned, and the newest subjects: what `erase` would remove."""
	newest = sorted(scope.synced, key=lambda r: r.email_date or datetime.min, reverse=True)
	dates = [r.email_date for r in scope.synced if r.email_date]
	return {
		"addresses": scope.addresses,
		"contact": scope.contact,
		"synced_emails": len(scope.synced),
		"communications": len(scope.communications),
		"kept_communications": len(scope.kept_communications),
		"files": len(scope.files),
		"comments": _count_references("Communication", scope.communications)
		+ _count_references("Synced Email", [r.name for r in scope.synced]),
		"issues": len(scope.issues),
		"accounts": dict(Counter(r.account for r in scope.synced)),
		"first": min(dates) if dates else None,
		"last": max(dates) if dates else None,
		"subjects": [r.subject or "(no subject)" for r in newest[:PREVIEW_SUBJECTS]],
	}


def erase(
	scope: Scope, blacklist: bool = False, delete_issues: bool = False, user: str = "Administrator"
) -> dict:
	"""Remove what `scope` covers; blacklist its addresses if asked; return the counts and the log's name."""
	if blacklist:
		_blacklist(scope.addresses, user)
	references = 0
	for chunk in _chunks(scope.communications):
		frappe.db.delete("Communication Link", {"parenttype": "Communication", "parent": ("in", chunk)})
		# Before its Files: a File deleted from a Communication that still exists leaves a Comment on it
		frappe.db.delete("Communication", {"name": ("in", chunk)})
		references += _delete_references("Communication", chunk)
	for chunk in _chunks([r.name for r in scope.synced]):
		frappe.db.delete("Email Sync Attachment", {"parenttype": "Synced Email", "parent": ("in", chunk)})
		references += _delete_references("Synced Email", chunk)
		frappe.db.delete("Synced Email", {"name": ("in", chunk)})
	issues = scope.issues if delete_issues else []
	for issue in issues:
		frappe.delete_doc("Issue", issue, ignore_permissions=True, force=True, delete_permanently=True)
	for file in scope.files:  # last: their content on disk cannot be rolled back
		frappe.delete_doc("File", file, ignore_permissions=True, force=True, delete_permanently=True)
	counts = {
		"synced_emails": len(scope.synced),
		"communications": len(scope.communications),
		"kept_communications": len(scope.kept_communications),
		"files": len(scope.files),
		"comments": references,
		"issues": len(issues),
	}
	log = _log(scope, counts, blacklist, delete_issues, user)
	return {**counts, "blacklisted": scope.addresses if blacklist else [], "log": log}


# -- finding -------------------------------------------------------------------------------------------------


def _matching_names(addresses: list[str], contact: str | None) -> set[str]:
	names = set()
	if addresses:
		names.update(
			frappe.db.sql_list("select name from `tabSynced Email` where sender in %(a)s", {"a": addresses})
		)
		names.update(_listing(("recipients", "cc"), addresses, _split_addresses))
	if contact:
		names.update(_listing(("matched_contacts",), [contact], _split_lines))
	return names


def _listing(columns: tuple[str, ...], values: list[str], split) -> set[str]:
	"""Names of the Synced Emails that list one of `values` exactly (any case) in one of `columns`."""
	wanted = {v.lower() for v in values}
	patterns = [f"%{_escape_like(v)}%" for v in wanted]
	where = " or ".join(f"`{column}` like %s" for column in columns for _ in patterns)
	params = [p for _ in columns for p in patterns]
	query = (
		f"select name, {', '.join(f'`{c}`' for c in columns)} from `tabSynced Email` "
		f"where name > %s and ({where}) order by name limit {PAGE}"
	)
	found, after = set(), ""
	while True:
		rows = frappe.db.sql(query, [after, *params])
		found.update(row[0] for row in rows if any(wanted & split(text) for text in row[1:]))
		if len(rows) < PAGE:
			return found
		after = rows[-1][0]


def _split_addresses(text: str | None) -> set[str]:
	return {a.strip().lower() for a in (text or "").split(",") if a.strip()}


def _split_lines(text: str | None) -> set[str]:
	return {line.strip().lower() for line in (text or "").splitlines() if line.strip()}


def _escape_like(value: str) -> str:
	return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _rows(names: list[str]) -> list:
	rows = []
	for chunk in _chunks(names):
		rows += frappe.db.sql(
			f"select {SYNCED_COLUMNS} from `tabSynced Email` where name in %(names)s",
			{"names": chunk},
			as_dict=True,
		)
	return rows


def _communications(synced: list, names: set[str]) -> tuple[list[str], list[str]]:
	"""(the Communications that go, those that stay). One goes when Email Sync made it (it is named
	after the email's identity) and no Synced Email outside this erasure holds it."""
	made = {r.communication for r in synced if made_by_email_sync(r)}
	held = sorted({r.communication for r in synced if r.communication})
	existing, elsewhere = set(), set()
	for chunk in _chunks(held):
		existing.update(
			frappe.db.sql_list("select name from `tabCommunication` where name in %(c)s", {"c": chunk})
		)
		for communication, name in frappe.db.sql(
			"select communication, name from `tabSynced Email` where communication in %(c)s", {"c": chunk}
		):
			if name not in names:
				elsewhere.add(communication)
	going = sorted((made - elsewhere) & existing)
	return going, sorted(existing - set(going))


def made_by_email_sync(row) -> bool:
	"""Whether the Synced Email `row` (communication, email_key) holds a Communication Email Sync made: the
	writer names those after the email's identity, whereas Frappe's own mail has names of its own."""
	return bool(row.communication) and row.communication == communication_name(row.email_key or "")


def _opened_issues(synced: list, addresses: list[str], contact: str | None) -> list[str]:
	issues = sorted({r.issue for r in synced if r.issue})
	if not issues:
		return []
	by_contact = "or contact = %(contact)s" if contact else ""
	return frappe.db.sql_list(
		f"""select name from `tabIssue` where name in %(issues)s and email_sync_source = 'Email'
		and (raised_by in %(addresses)s {by_contact})""",
		{"issues": issues, "addresses": addresses or ["-"], "contact": contact},
	)


def _attached_files(communications: list[str]) -> list[str]:
	files = []
	for chunk in _chunks(communications):
		files += frappe.db.sql_list(
			"""select name from `tabFile` where attached_to_doctype = 'Communication'
			and attached_to_name in %(c)s""",
			{"c": chunk},
		)
	return files


# -- erasing -------------------------------------------------------------------------------------------------

REFERENCES = (  # what else names a record: (doctype, its reference doctype field, its reference name field)
	("Comment", "reference_doctype", "reference_name"),
	("Notification Log", "document_type", "document_name"),
)


def _count_references(doctype: str, names: list[str]) -> int:
	return sum(
		frappe.db.count(table, {type_field: doctype, name_field: ("in", chunk)})
		for table, type_field, name_field in REFERENCES
		for chunk in _chunks(names)
	)


def _delete_references(doctype: str, names: list[str]) -> int:
	count = _count_references(doctype, names)
	for table, type_field, name_field in REFERENCES:
		frappe.db.delete(table, {type_field: doctype, name_field: ("in", names)})
	return count


def _blacklist(addresses: list[str], user: str) -> None:
	for address in addresses:
		if frappe.db.exists("Email Sync Blacklist", address):
			continue
		frappe.get_doc(
			{
				"doctype": "Email Sync Blacklist",
				"entry": address,
				"reason": f"Erased on request on {nowdate()} by {user}: the sync skips it from now on.",
			}
		).insert(ignore_permissions=True)


def _log(scope: Scope, counts: dict, blacklist: bool, delete_issues: bool, user: str) -> str:
	"""The audit record: who, when, what and how much; subjects only as hashes (the log must not keep what
	it records as erased, which is also why this is not Frappe's Deleted Document, a full copy)."""
	doc = frappe.get_doc(
		{
			"doctype": "Email Sync Erasure Log",
			"kind": "Erasure",
			"erased_by": user,
			"erased_on": now_datetime(),
			"contact": scope.contact,
			"addresses": "\n".join(scope.addresses),
			"blacklisted": int(bool(blacklist)),
			"issues_included": int(bool(delete_issues)),
			**counts,
			"summary": _summary(scope),
			"erased_records": "\n".join(f"{r.name} {subject_hash(r.subject)}" for r in scope.synced),
		}
	)
	doc.insert(ignore_permissions=True)
	return doc.name


def subject_hash(subject: str | None) -> str:
	return hashlib.sha256((subject or "").encode("utf-8", "surrogatepass")).hexdigest()[:16]


def _summary(scope: Scope) -> str:
	lines = []
	for account, count in sorted(Counter(r.account for r in scope.synced).items()):
		dates = [r.email_date for r in scope.synced if r.account == account and r.email_date]
		span = f", {min(dates):%Y-%m-%d} to {max(dates):%Y-%m-%d}" if dates else ""
		lines.append(f"{account}: {count} emails{span}")
	return "\n".join(lines) or "Nothing was synced with these addresses."


def _chunks(items: list, size: int = CHUNK):
	for i in range(0, len(items), size):
		yield items[i : i + size]
