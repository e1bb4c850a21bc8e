"""A second address of a known person (see engine/namesakes.py), on the site: the address put onto the
Contact of the same name while the sync files the email, or when a Customer gets the email domain of mail
already waiting (retrofile.py); a reviewer's choice is namesake_review.py.
"""

from __future__ import annotations

import frappe

from email_sync.engine.directory import Directory
from email_sync.engine.model import NewContact
from email_sync.engine.namesakes import ADD, ASK, CREATE, Sorted, person_name, rule_for
from email_sync.sync.decision_history import copies_waiting
from email_sync.sync.directory import SiteSource


def add_addresses(filed: list) -> None:
	"""The addresses the engine found to be a second address of a Contact go onto it, once each (the
	Contact's own save hooks then file older mail from the address waiting in Needs Review)."""
	wanted = {(a.email, a.contact) for item in filed for a in item.plan.added_addresses}
	for email, contact in sorted(wanted):
		if frappe.db.exists("Contact Email", {"email_id": email}) or not frappe.db.exists("Contact", contact):
			continue  # taken meanwhile (a colleague, an earlier batch), or the Contact is gone: leave it be
		add_address(contact, email)


# -- mail already waiting in Needs Review when its Customer gets the email domain (retrofile.py) ----------------


def sort_waiting(customer: str, display_name: str) -> tuple[str, list[str]]:
	"""What the setting makes of a waiting email's new address at `customer`'s domain, sent under this name:
	(CREATE, []) for a new Contact, (ADD, [contact]) for the one of that name, or (ASK, contacts) when a
	person should choose (the setting says so, or several Contacts have the name)."""
	action = frappe.db.get_single_value("Email Sync Settings", "namesake_action") or ASK
	if action == CREATE or not person_name(display_name):
		return CREATE, []
	contacts = Directory(source=SiteSource()).namesakes(customer, display_name)
	if not contacts:
		return CREATE, []
	return (ADD, contacts) if action == ADD and len(contacts) == 1 else (ASK, contacts)


def add_address(contact: str, address: str) -> str:
	doc = frappe.get_doc("Contact", contact)
	doc.append("email_ids", {"email_id": address, "is_primary": 0 if doc.email_ids else 1})
	doc.save(ignore_permissions=True)  # the sync's own decision, per the setting an administrator chose
	return contact


def hold_for_review(row, customer: str, address: str, contacts: list[str]) -> None:
	"""The email (and its copies) keeps waiting, now offering "Add address to <Contact>", as the sync does."""
	looks = Sorted(ask=[(NewContact(address, row.sender_name or "", customer), contacts)])
	values = {
		"decision_rule": rule_for(address),
		"reason": looks.review_reason(),
		"matched_contacts": "\n".join(contacts),
		"matched_customers": customer,
		"confidence": 90,
	}
	for name in [row.name, *copies_waiting(row)]:
		frappe.db.set_value("Synced Email", name, values)
