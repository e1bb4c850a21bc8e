"""Putting a wrong filing right: file an email on other parties, take it off one, put it on another Issue.

Each action acts on an email (its Communication) and on every copy of it in other mailboxes (the Synced
Emails with its identity), and appends what changed, when and by whom, to each copy's Decision History.

Who may act: never on another owner's private mail (the rule of permissions.py, whatever the role), only on
an email the user may read, and only within the records the user may change: write on every Customer and
Contact the email is taken from or put on, write on every Issue it is put on or taken out of. Synced Email's
own DocPerms are not asked for: a Sales User puts a Customer's email right without the Synced Email list.
"""

from __future__ import annotations

import frappe
from frappe import _
from frappe.utils import now_datetime

from email_sync.engine import FILED, NEEDS_REVIEW
from email_sync.permissions import private_to_others
from email_sync.providers import FetchedMessage
from email_sync.sync.attachments import attach_to_issue
from email_sync.sync.context import load_settings
from email_sync.sync.decision_history import record
from email_sync.sync.review import counterpart, learn_address, require, stored_plan
from email_sync.sync.writer import LINK_FIELDS, Item, insert_ignore, timeline_links

PARTIES = ("Customer", "Contact")
FIELD = {"Customer": "matched_customers", "Contact": "matched_contacts"}
REMOVED = "Removed"
HOLDING = (FILED, NEEDS_REVIEW)  # the copies that hold the email (the others skipped it on their own)


def reassign(communications: list[str], contact: str | None = None, customer: str | None = None,
		learn: bool = False) -> list[str]:  # fmt: skip
	"""File each email on `contact` and/or `customer` instead of the Customers and Contacts it is on.

	Only a Contact: its Customers too, as a sync would file it. With `learn`, the email's outside address is
	added to the Contact (and the Customer to its links), so the next email from it is filed there."""
	if not (contact or customer):
		frappe.throw(_("Choose a Contact or a Customer to file the email on."))
	for doctype, name in (("Contact", contact), ("Customer", customer)):
		if name:
			require(doctype, name, "write")
	done = []
	for email in _emails(communications):
		old = _parties(email)
		_require_all(old)
		if learn and contact:
			learn_address(contact, counterpart(email.rows[0]), customer)
		contacts = [contact] if contact else []
		customers = [customer] if customer else _customers_of(contact)
		new = [("Contact", c) for c in contacts] + [("Customer", c) for c in customers]
		reason = _("Reassigned from {0} to {1} by {2}.").format(_names(old), _names(new), frappe.session.user)
		_relink(email, contacts, customers, reason)
		_record(email, {"decision_rule": "reassigned", "reason": reason, "status": FILED}, reason)
		done.append(email.communication)
	frappe.db.commit()
	return done


def unfile(communications: list[str], doctype: str, name: str) -> list[str]:
	"""Take each email off one Customer or Contact. An email nothing else holds (no other Customer or Contact,
	no Issue) is removed: its Synced Emails turn Removed, its Communication and Files go, and a later sync
	skips it (the Synced Email stands)."""
	if doctype not in PARTIES:
		frappe.throw(_("Emails are filed on Customers and Contacts only."))
	require(doctype, name, "write")
	done = []
	for email in _emails(communications):
		frappe.db.delete(
			"Communication Link", {"parent": email.communication, "link_doctype": doctype, "link_name": name}
		)
		field = FIELD[doctype]
		for row in email.holding:
			kept = [n for n in (row.get(field) or "").splitlines() if n and n != name]
			row[field] = "\n".join(kept)
			frappe.db.set_value("Synced Email", row.name, field, row[field], update_modified=False)
		reason = _("Removed from {0} {1} by {2}.").format(_(doctype), name, frappe.session.user)
		if _held(email):
			_record(email, {"reason": reason}, reason)
		else:
			_remove(email, reason)
		done.append(email.communication)
	frappe.db.commit()
	return done


def removal_outcome(communication: str, doctype: str, name: str) -> dict:
	"""What unfile would do to this email, for its confirmation, changing nothing: the other records that
	keep it (`kept_by`), or none, and then it is deleted from the site (`deletes`)."""
	email = _emails([communication])[0]
	kept_by = [f"{_(d)} {n}" for d, n in _parties(email) if (d, n) != (doctype, name)]
	reference = frappe.db.get_value("Communication", communication, ["reference_doctype", "reference_name"], as_dict=True)
	issues = [("Issue", r.issue) for r in email.holding if r.issue]
	for d, n in dict.fromkeys([*([(reference.reference_doctype, reference.reference_name)] if reference.reference_doctype else []), *issues]):
		kept_by.append(f"{_(d)} {n}")
	return {"deletes": not kept_by, "kept_by": kept_by}


def link_to_issue(communications: list[str], issue: str, thread: bool = False) -> list[str]:
	"""Put each email (with `thread`, also the emails it answers and that answer it) on `issue`: later replies
	to any of them join that Issue, as they look the Issue up by the Message-IDs of its emails."""
	require("Issue", issue, "write")
	done = []
	for email in _emails(communications):
		others = _emails(_thread_of(email), quiet=True) if thread else []
		for one in [email, *[o for o in others if o.communication != email.communication]]:
			if _attach(one, issue):
				done.append(one.communication)
	frappe.db.commit()
	return done


def split_to_new_issue(communication: str) -> str:
	"""A new Issue for this email, taking it out of the Issue it is on (replies to it then follow it)."""
	frappe.has_permission("Issue", "create", throw=True)
	email = _emails([communication])[0]
	current = _issue_of(email.communication)
	if current:
		require("Issue", current, "write")
	row = email.holding[0]
	contacts, customers = _lines(row.matched_contacts), _lines(row.matched_customers)
	from email_sync.sync.issues import IssueRouter

	router = IssueRouter(frappe.get_doc("Email Sync Account", row.account), load_settings(), force=True)
	plan = stored_plan(row, FILED, row.reason, contacts, customers)
	item = Item(FetchedMessage(raw=b"", folder=row.folder or "", provider_id=row.provider_id or ""), plan, email.communication)
	issue = router._create_issue(item)  # the same Issue a sync would open: fields, mapping, Assignment Rules
	_attach(email, issue)
	frappe.db.commit()
	return issue


def _emails(communications: list[str], quiet: bool = False) -> list[frappe._dict]:
	"""Each email with its copies: `rows` every Synced Email of it, `holding` those that file it. Only emails
	the user may read, and not another owner's private mail; a missing email and a forbidden one get the
	same answer (or, `quiet`, are left out)."""
	names = list(dict.fromkeys(n for n in (communications or []) if isinstance(n, str) and len(n) <= 140))[:500]
	emails, denied = [], []
	for name in names:
		rows = frappe.db.sql(
			"""select * from `tabSynced Email` where communication = %(name)s or email_key in (
				select email_key from `tabSynced Email` where communication = %(name)s)
			order by creation""",
			{"name": name},
			as_dict=True,
		)
		holding = [r for r in rows if r.status in HOLDING and r.communication == name]
		if not holding or private_to_others(name) or not _may_see(name, holding[0].name):
			denied.append(name)
			continue
		emails.append(frappe._dict(communication=name, rows=rows, holding=holding))
	if (denied or not names) and not quiet:
		raise frappe.PermissionError(_("No filed email {0} that you may act on.").format(", ".join(denied)))
	return emails


def _may_see(communication: str, synced_email: str) -> bool:
	"""Read on the email (Communication, or a Customer or Contact it is on) or on its Synced Email (support
	reads Synced Emails, not every Customer)."""
	from email_sync.desk import _may_read

	if frappe.has_permission("Synced Email", "read", doc=synced_email):
		return True
	return _may_read(frappe.get_doc("Communication", communication))


def _parties(email) -> list[tuple[str, str]]:
	"""The Customers and Contacts the email is on: its timeline links and what its copies matched."""
	found = frappe.get_all(
		"Communication Link",
		filters={"parent": email.communication, "parenttype": "Communication", "link_doctype": ("in", PARTIES)},
		fields=["link_doctype", "link_name"],
		order_by="idx asc",
	)
	parties = [(link.link_doctype, link.link_name) for link in found]
	for row in email.holding:
		parties += [("Contact", c) for c in _lines(row.matched_contacts)]
		parties += [("Customer", c) for c in _lines(row.matched_customers)]
	return list(dict.fromkeys(parties))


def _require_all(parties: list[tuple[str, str]]) -> None:
	for doctype, name in parties:
		if frappe.db.exists(doctype, name):  # a party deleted since is nobody's to protect
			require(doctype, name, "write")


def _customers_of(contact: str | None) -> list[str]:
	if not contact:
		return []
	return frappe.get_all(
		"Dynamic Link",
		filters={"parenttype": "Contact", "parent": contact, "link_doctype": "Customer"},
		pluck="link_name",
		order_by="idx asc",
	)


def _relink(email, contacts: list[str], customers: list[str], reason: str) -> None:
	"""The timeline links follow the new parties (none when only private accounts hold the email)."""
	frappe.db.delete("Communication Link", {"parent": email.communication, "link_doctype": ("in", PARTIES)})
	shared = any(
		frappe.db.get_value("Email Sync Account", account, "shared") for account in {r.account for r in email.holding}
	)
	plan = stored_plan(email.holding[0], FILED, reason, contacts, customers)
	rows = timeline_links(email.communication, plan, now_datetime(), frappe.session.user, shared)
	insert_ignore("Communication Link", LINK_FIELDS, rows)
	frappe.db.set_value("Communication", email.communication, "status", "Linked", update_modified=False)
	for row in email.holding:
		row.matched_contacts, row.matched_customers = "\n".join(contacts), "\n".join(customers)
		frappe.db.set_value(
			"Synced Email", row.name, {"matched_contacts": row.matched_contacts, "matched_customers": row.matched_customers}
		)


def _held(email) -> bool:
	"""Whether anything still files the email: a Customer or Contact, or an Issue (or any other document)."""
	if any(r.matched_contacts or r.matched_customers or r.issue for r in email.holding):
		return True
	if frappe.db.exists("Communication Link", {"parent": email.communication, "link_doctype": ("in", PARTIES)}):
		return True
	return bool(frappe.db.get_value("Communication", email.communication, "reference_doctype"))


def _remove(email, reason: str) -> None:
	"""The email's copies turn Removed; its Communication and Files go when Email Sync made them (mail from
	Frappe's own pull or sent from ERPNext stays, only no longer filed here)."""
	user = frappe.session.user
	_record(email, {"status": REMOVED, "decision_rule": "removed", "reason": reason, "communication": None}, reason)
	frappe.db.sql(
		"""update `tabEmail Sync Attachment` set file = null, reason = %(reason)s
		where parenttype = 'Synced Email' and parent in %(rows)s""",
		{"reason": _("Removed by {0}").format(user), "rows": [r.name for r in email.holding]},
	)
	if not any(r.email_key.startswith(email.communication) for r in email.holding if r.email_key):
		return
	for file in frappe.get_all(
		"File", filters={"attached_to_doctype": "Communication", "attached_to_name": email.communication}, pluck="name"
	):
		frappe.delete_doc("File", file, ignore_permissions=True, force=True)
	# checked above: write on the party it was taken from, and no other Customer, Contact or Issue holds it
	frappe.delete_doc("Communication", email.communication, ignore_permissions=True, force=True)


def _record(email, values: dict, what: str) -> None:
	"""Set `values` on every copy that holds the email, and append `what` to each one's Decision History."""
	names = [r.name for r in email.holding]
	for name in names:
		frappe.db.set_value("Synced Email", name, values)
	record(names, what)


def _issue_of(communication: str) -> str | None:
	doc = frappe.db.get_value("Communication", communication, ["reference_doctype", "reference_name"], as_dict=True)
	if doc.reference_doctype and doc.reference_doctype != "Issue":
		frappe.throw(_("This email belongs to {0} {1}.").format(_(doc.reference_doctype), doc.reference_name))
	return doc.reference_name if doc.reference_doctype == "Issue" else None


def _attach(email, issue: str) -> bool:
	"""The email onto `issue` as a sync files a reply (see IssueRouter._attach): the reference set without a
	full save, then Frappe's on_update and the doc_events hooks (reopening, response times, SLA)."""
	current = _issue_of(email.communication)
	if current == issue:
		return False
	if current:
		require("Issue", current, "write")
	values = {"reference_doctype": "Issue", "reference_name": issue, "status": "Linked"}
	frappe.db.set_value("Communication", email.communication, values, update_modified=False)
	communication = frappe.get_doc("Communication", email.communication)
	communication.run_method("on_update")
	attach_to_issue(email.communication, issue)
	what = (
		_("Moved from Issue {0} to Issue {1}").format(current, issue) if current else _("Linked to Issue {0}").format(issue)
	)
	_record(email, {"issue": issue}, _("{0} by {1}.").format(what, frappe.session.user))
	return True


def _thread_of(email) -> list[str]:
	"""The emails of its conversation: those it answers and those answering them, found by Message-ID."""
	ids = set()
	for row in email.holding:
		ids |= {row.message_id, row.in_reply_to, *(row.message_references or "").split()}
	ids.discard(None)
	ids.discard("")
	found: set[str] = set()
	for _round in range(5):  # a conversation a few answers deep; each round follows one more step
		rows = frappe.db.sql(
			"""select communication, message_id from `tabSynced Email`
			where communication is not null and (message_id in %(ids)s or in_reply_to in %(ids)s)""",
			{"ids": list(ids) or ["-"]},
			as_dict=True,
		)
		more = {r.message_id for r in rows if r.message_id} - ids
		found |= {r.communication for r in rows}
		if not more:
			break
		ids |= more
	found.discard(email.communication)
	return sorted(found)


def _lines(value: str | None) -> list[str]:
	return [v for v in (value or "").splitlines() if v]


def _names(parties: list[tuple[str, str]]) -> str:
	return ", ".join(f"{_(doctype)} {name}" for doctype, name in parties) or _("nothing")
