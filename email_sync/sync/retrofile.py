"""Retro-filing: emails waiting in Needs Review are filed once the directory learns who they are from.

When a Contact gains an address (created with it, or the address added) or is linked to a Customer, the
emails waiting for review from that address (inbound: its sender; outbound: any of its recipients, exact)
are filed on the Contact and its Customers, as Assign to Customer files them. When a Customer gains an
Email Domain, the waiting emails from that domain are filed too, on a Contact made for each unknown address
(as a sync makes them). No Issue is opened.

The hooks only compare the record with its state before the save and queue a job (one per Contact or
Customer, see tasks.py); the job does the work, at most BATCH emails a run, and queues its own continuation
when there are more. Filing only ever takes emails out of Needs Review, so running it again changes nothing.
"""

from __future__ import annotations

import frappe
from frappe import _

from email_sync.engine import INBOUND, OUTBOUND
from email_sync.engine.addresses import FREE_MAIL_DOMAINS
from email_sync.engine.model import NewContact
from email_sync.engine.shared import RULE as SHARED_RULE
from email_sync.indexes import DOMAINS, split_domains
from email_sync.sync import namesakes
from email_sync.sync.decision_history import copies_waiting, record
from email_sync.sync.review import file_row, settle_copies
from email_sync.sync.tasks import enqueue_retrofile
from email_sync.sync.writer import insert_contact

BATCH = 500  # emails filed per run; the rest by the continuation
RULE = "retro-filed"


# -- doc_events: a cheap comparison, then a job --------------------------------------------------------------


def contact_on_update(doc, method=None) -> None:
	"""Queue the Contact's job when it has an address or a Customer link it did not have before the save."""
	if frappe.flags.email_sync_retrofiling or doc.flags.made_by_email_sync:
		return
	before = doc.get_doc_before_save()
	new_addresses = _addresses(doc) - (_addresses(before) if before else set())
	new_customers = [c for c in _customers(doc) if not before or c not in _customers(before)]
	if _addresses(doc) and (new_addresses or new_customers):
		# a new address names itself in the reason; a new link alone names its Customer
		enqueue_retrofile("Contact", doc.name, customer=None if new_addresses else new_customers[0])


def customer_on_update(doc, method=None) -> None:
	"""Queue the Customer's job when it has an Email Domain it did not have before the save."""
	before = doc.get_doc_before_save()
	old = set(split_domains(before.get("email_sync_domains"))) if before else set()
	if set(split_domains(doc.get("email_sync_domains"))) - old:
		enqueue_retrofile("Customer", doc.name)


# -- jobs ----------------------------------------------------------------------------------------------------


def file_for_contact(contact: str, customer: str | None = None) -> int:
	"""File the emails waiting for review from or to the Contact's addresses on it and its Customers.
	Returns how many were filed; queues the rest when there were more than BATCH."""
	if not frappe.db.exists("Contact", contact):
		return 0
	doc = frappe.get_doc("Contact", contact)
	customers = _customers(doc)
	if not customers and frappe.db.get_single_value("Email Sync Settings", "only_customers"):
		return 0  # a sync would have skipped it: it waits for a person to decide
	if customer:
		reason = _("Filed when Contact {0} was linked to Customer {1}.").format(contact, customer)
	else:
		reason = _("Filed when Contact {0} got this address.").format(contact)
	rows = _waiting_for(sorted(_addresses(doc)))
	filed = _file_rows(rows, lambda row: ([contact], customers, reason))
	_continue_if_more(rows, "Contact", contact, customer=customer)
	return filed


def file_for_customer(customer: str) -> int:
	"""File the emails waiting for review from unknown addresses at the Customer's Email Domains (each domain
	that this Customer alone claims and that is no free-mail domain), on a Contact made for each address, or on
	the Customer's Contact of the sender's name as the setting for a second address of a known person says."""
	if not frappe.db.exists("Customer", customer):
		return 0
	domains = [d for d in _own_domains(customer) if d not in FREE_MAIL_DOMAINS]
	rows = _waiting_from_domains(domains)

	def parties(row):
		address = (row.sender or "").strip().lower()
		domain = address.rpartition("@")[2]
		reason = _("Filed when Customer {0} got the email domain {1}.").format(customer, domain)
		contact = _contact_of(address)
		if not contact:  # a second address of a known person: per setting, onto that Contact or a person's choice
			action, named = namesakes.sort_waiting(customer, row.sender_name or "")
			if action == namesakes.ASK:
				namesakes.hold_for_review(row, customer, address, named)
				return None
			if action == namesakes.ADD:
				contact = namesakes.add_address(named[0], address)
			else:
				contact = insert_contact(NewContact(address, row.sender_name or "", customer))
		customers = _customers(frappe.get_doc("Contact", contact)) or [customer]
		return [contact], customers, reason

	filed = _file_rows(rows, parties)
	_continue_if_more(rows, "Customer", customer)
	return filed


# -- the work ------------------------------------------------------------------------------------------------


def _file_rows(rows: list, parties) -> int:
	"""File each row still waiting (a copy settled earlier in the run is not filed twice); commits."""
	filed = 0
	frappe.flags.email_sync_retrofiling = True  # the Contacts made here need no job of their own
	try:
		for row in rows:
			if frappe.db.get_value("Synced Email", row.name, "status") != "Needs Review":
				continue
			found = parties(row)
			if found is None:  # left for a person to choose
				continue
			contacts, customers, reason = found
			copies = copies_waiting(row)
			file_row(row, contacts, customers, reason, rule=RULE)
			settle_copies(row)
			record([row.name, *copies], reason)
			filed += 1
	finally:
		frappe.flags.email_sync_retrofiling = False
	frappe.db.commit()
	return filed


def _waiting_for(addresses: list[str]) -> list:
	"""Emails waiting for review from one of `addresses` (inbound) or to one (outbound), oldest first. Not
	those waiting because their address is shared by several Customers: that choice is a person's."""
	if not addresses:
		return []
	return frappe.db.sql(
		f"""select * from `tabSynced Email` where status = 'Needs Review' and ifnull(decision_rule, '') != %(shared)s and (
			(direction = %(inbound)s and sender in %(addresses)s)
			or (direction = %(outbound)s and ({" or ".join(
				f"find_in_set(%(a{i})s, replace(recipients, ', ', ','))" for i in range(len(addresses)))})))
		order by email_date, name limit {BATCH + 1}""",
		{"inbound": INBOUND, "outbound": OUTBOUND, "addresses": addresses, "shared": SHARED_RULE}
		| {f"a{i}": a for i, a in enumerate(addresses)},
		as_dict=True,
	)


def _waiting_from_domains(domains: list[str]) -> list:
	"""Inbound emails waiting for review from an address at one of `domains` (exactly), oldest first."""
	if not domains:
		return []
	return frappe.db.sql(
		f"""select * from `tabSynced Email` where status = 'Needs Review' and direction = %(inbound)s
		and lower(substring_index(sender, '@', -1)) in %(domains)s and ifnull(decision_rule, '') not like 'namesake:%%'
		order by email_date, name limit {BATCH + 1}""",
		{"inbound": INBOUND, "domains": domains},
		as_dict=True,
	)


def _continue_if_more(rows: list, doctype: str, name: str, **kwargs) -> None:
	if len(rows) > BATCH:
		enqueue_retrofile(doctype, name, continued=True, **kwargs)


# -- the directory -------------------------------------------------------------------------------------------


def _addresses(doc) -> set[str]:
	return {(e.email_id or "").strip().lower() for e in doc.get("email_ids") or [] if e.email_id}


def _customers(doc) -> list[str]:
	return [link.link_name for link in doc.get("links") or [] if link.link_doctype == "Customer"]


def _own_domains(customer: str) -> list[str]:
	"""The Customer's Email Domains that no other Customer claims (a shared one leaves mail for review)."""
	return frappe.db.sql_list(
		f"""select domain from `tab{DOMAINS}` where customer = %(customer)s and domain not in (
			select domain from `tab{DOMAINS}` where customer != %(customer)s)""",
		{"customer": customer},
	)


def _contact_of(address: str) -> str | None:
	return frappe.db.get_value("Contact Email", {"email_id": address}, "parent") if address else None
