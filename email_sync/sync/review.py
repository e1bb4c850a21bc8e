"""Actions on emails waiting in Needs Review (and on filed ones): each files the email completely.

Assigning learns the address, so the next email from it is matched without help.
"""

from __future__ import annotations

import frappe
from frappe import _

from email_sync.engine import FILED, INBOUND, OUTBOUND, SKIPPED, Plan
from email_sync.engine.addresses import FREE_MAIL_DOMAINS
from email_sync.engine.model import Address, Message
from email_sync.providers import FetchedMessage
from email_sync.sync.context import load_settings
from email_sync.sync.decision_history import copies_waiting
from email_sync.sync.issues import IssueRouter
from email_sync.sync.writer import LINK_FIELDS, Item, insert_ignore, timeline_links

REVIEWABLE = ("Needs Review", "Filed")


def assign_to_customer(names: list[str], customer: str, contact: str | None = None) -> list[str]:
	"""Link each email to `customer` (through `contact`, or a Contact made for its address) and file it."""
	require("Customer", customer, "write")
	if contact:
		require("Contact", contact, "write")
	filed = []
	for row in synced_rows(names, ("Needs Review",)):
		address = counterpart(row)
		person = contact or _contact_for(address, customer, row.sender_name if row.direction == INBOUND else "")
		learn_address(person, address, customer)
		plan = file_row(row, [person], [customer], _("Assigned to Customer {0} by {1}.").format(customer, frappe.session.user))
		_route_issue(row, plan, force=False)
		settle_copies(row)
		filed.append(row.name)
	frappe.db.commit()
	return filed


def create_customer(name: str, customer_name: str | None = None) -> str:
	"""A Customer prefilled from the sender (name from the domain, the domain as its email domain), then assign."""
	row = synced_rows([name], ("Needs Review",))[0]
	prefill = customer_prefill(row)
	customer = frappe.get_doc(
		{
			"doctype": "Customer",
			"customer_name": customer_name or prefill["customer_name"],
			"customer_type": "Company" if prefill["email_sync_domains"] else "Individual",
			"email_sync_domains": prefill["email_sync_domains"],
		}
	).insert()
	assign_to_customer([name], customer.name)
	return customer.name


def customer_prefill(row) -> dict:
	address = counterpart(row)
	domain = address.rpartition("@")[2]
	company = domain and domain not in FREE_MAIL_DOMAINS
	name = domain.split(".")[0].replace("-", " ").title() if company else (row.sender_name or address)
	return {"customer_name": name, "email_sync_domains": domain if company else ""}


def create_issues(names: list[str]) -> list[str]:
	"""An Issue for each email (filing it first if it waits for review and has a Customer to go to)."""
	issues = []
	for row in synced_rows(names, REVIEWABLE):
		if row.issue:
			issues.append(row.issue)
			continue
		contacts = [c for c in (row.matched_contacts or "").splitlines() if c]
		customers = [c for c in (row.matched_customers or "").splitlines() if c]
		plan = stored_plan(row, FILED, row.reason, contacts, customers)
		if row.status != "Filed":
			plan = file_row(row, contacts, customers, _("Filed for an Issue by {0}.").format(frappe.session.user))
		issue = _route_issue(row, plan, force=True)
		settle_copies(row)
		issues.append(issue)
	frappe.db.commit()
	return issues


def ignore_senders(names: list[str]) -> list[str]:
	"""Blacklist each email's sender, and skip the email; its unlinked Communication goes."""
	ignored = []
	for row in synced_rows(names, ("Needs Review",)):
		address = counterpart(row)
		if address and not frappe.db.exists("Email Sync Blacklist", address):
			frappe.get_doc(
				{
					"doctype": "Email Sync Blacklist",
					"entry": address,
					"reason": _("Ignored from Needs Review by {0}").format(frappe.session.user),
				}
			).insert()
		frappe.db.set_value(
			"Synced Email",
			row.name,
			{
				"status": SKIPPED,
				"decision_rule": f"blacklist:{address}",
				"reason": _("Ignored: {0} was blacklisted by {1}.").format(address, frappe.session.user),
				"communication": None,
			},
		)
		settle_copies(row)
		if row.communication and not frappe.db.exists("Communication Link", {"parent": row.communication}):
			# Only the unlinked Communication the sync made for this review (no timeline, no other mailbox):
			# not a user-chosen record, and the user was checked for write on its Synced Email above.
			if not frappe.db.exists("Synced Email", {"communication": row.communication}):
				if not frappe.db.get_value("Communication", row.communication, "reference_name"):
					frappe.delete_doc("Communication", row.communication, ignore_permissions=True, force=True)
		ignored.append(row.name)
	frappe.db.commit()
	return ignored


SETTLED_FIELDS = ("status", "decision_rule", "reason", "confidence", "matched_contacts", "matched_customers", "issue")


def settle_copies(row) -> None:
	"""The same email in other mailboxes, waiting for review too, takes the decision made on this one, so
	Needs Review lists it no more (it is one email, shown once there)."""
	if not row.email_key:
		return
	decided = frappe.db.get_value("Synced Email", row.name, [*SETTLED_FIELDS, "communication"], as_dict=True)
	values = {f: decided[f] for f in SETTLED_FIELDS}
	if not decided.communication:  # ignored: the copies let go of the Communication too
		values["communication"] = None
	for name in copies_waiting(row):
		frappe.db.set_value("Synced Email", name, values)


def require(doctype: str, name: str, ptype: str) -> None:
	"""The user must hold `ptype` on this record: actions never act on a chosen target past its permissions."""
	if not name or not frappe.db.exists(doctype, name):
		frappe.throw(_("{0} {1} does not exist.").format(_(doctype), name), frappe.DoesNotExistError)
	if not frappe.has_permission(doctype, ptype, doc=name):
		raise frappe.PermissionError(_("You may not change {0} {1}.").format(_(doctype), name))


def synced_rows(names: list[str], statuses: tuple[str, ...], ptype: str = "write") -> list:
	"""The Synced Emails to act on; each must be one the user may `ptype` (a private account's mail is its
	owner's). A missing email and a forbidden one get the same answer."""
	names = list(dict.fromkeys(n for n in names if isinstance(n, str)))[:500]
	rows = frappe.get_all("Synced Email", filters={"name": ("in", names or ["-"])}, fields=["*"])
	allowed = {r.name for r in rows if frappe.has_permission("Synced Email", ptype, doc=r.name)}
	rows = [r for r in rows if r.name in allowed]
	missing = [n for n in names if n not in allowed]
	if missing or not names:
		raise frappe.PermissionError(_("No Synced Email {0} that you may act on.").format(", ".join(missing)))
	wrong = [r.name for r in rows if r.status not in statuses]
	if wrong:
		frappe.throw(_("{0}: only emails in status {1} can take this action.").format(", ".join(wrong), " / ".join(statuses)))
	return rows


def counterpart(row) -> str:
	"""The outside party: the sender of inbound mail, the first recipient of outbound mail."""
	if row.direction == OUTBOUND:
		return (row.recipients or "").split(",")[0].strip().lower()
	return (row.sender or "").strip().lower()


def _contact_for(address: str, customer: str, display_name: str) -> str:
	existing = frappe.db.get_value("Contact Email", {"email_id": address}, "parent") if address else None
	if existing:
		return existing  # learnt into below, which checks that the user may change it
	first, _sep, last = (display_name or address.split("@")[0].replace(".", " ").title()).partition(" ")
	contact = frappe.get_doc(
		{
			"doctype": "Contact",
			"first_name": first or address,
			"last_name": last,
			"email_sync_created": 1,
			"email_ids": [{"email_id": address, "is_primary": 1}] if address else [],
		}
	).insert()
	return contact.name


def learn_address(contact: str, address: str, customer: str | None) -> None:
	"""The address onto the Contact (and the Customer onto its links, if given), so the next email is matched."""
	doc = frappe.get_doc("Contact", contact)
	changed = False
	if address and address not in {(e.email_id or "").lower() for e in doc.email_ids}:
		doc.append("email_ids", {"email_id": address, "is_primary": 0 if doc.email_ids else 1})
		changed = True
	if customer and not any(link.link_doctype == "Customer" and link.link_name == customer for link in doc.links):
		doc.append("links", {"link_doctype": "Customer", "link_name": customer})
		changed = True
	if changed:
		doc.save()  # as the user: learning changes a Contact they chose, so their permissions apply


def file_row(row, contacts: list[str], customers: list[str], reason: str, rule: str = "assigned") -> Plan:
	"""File one Synced Email on these Contacts and Customers, timeline links included (its copies follow
	through settle_copies). Checks no permission: the caller has."""
	plan = stored_plan(row, FILED, reason, contacts, customers)
	if row.communication:
		now, user = frappe.utils.now_datetime(), frappe.session.user
		shared = bool(frappe.db.get_value("Email Sync Account", row.account, "shared"))
		insert_ignore("Communication Link", LINK_FIELDS, timeline_links(row.communication, plan, now, user, shared))
		frappe.db.set_value("Communication", row.communication, "status", "Linked", update_modified=False)
	frappe.db.set_value(
		"Synced Email",
		row.name,
		{
			"status": FILED,
			"decision_rule": rule,
			"reason": reason,
			"confidence": 100,
			"matched_contacts": "\n".join(contacts),
			"matched_customers": "\n".join(customers),
		},
	)
	frappe.db.sql(
		"update `tabEmail Sync Account` set emails_synced = ifnull(emails_synced, 0) + 1 where name = %s", row.account
	)
	return plan


def stored_plan(row, status: str, reason: str, contacts: list[str], customers: list[str]) -> Plan:
	"""The engine's view of a stored email, rebuilt from its Synced Email and Communication."""
	text = frappe.db.get_value("Communication", row.communication, "text_content") if row.communication else ""
	message = Message(
		key=row.email_key,
		message_id=row.message_id or "",
		in_reply_to=row.in_reply_to or "",
		references=(row.message_references or "").split(),
		subject=row.subject or "",
		sender=Address(row.sender or "", row.sender_name or "") if row.sender else None,
		to=[Address(a.strip()) for a in (row.recipients or "").split(",") if a.strip()],
		text=text or row.snippet or "",
	)
	return Plan(message, status, reason, "assigned", row.direction or INBOUND, contacts, customers, 100)


def _route_issue(row, plan: Plan, force: bool) -> str | None:
	account = frappe.get_doc("Email Sync Account", row.account)
	router = IssueRouter(account, load_settings(), force=force)
	item = Item(FetchedMessage(raw=b"", folder=row.folder or "", provider_id=row.provider_id or ""), plan, row.communication)
	router.route([item])
	return frappe.db.get_value("Synced Email", row.name, "issue")
