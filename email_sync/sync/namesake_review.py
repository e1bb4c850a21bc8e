"""Needs Review: an email whose new address is named like a Contact of its Customer (engine/namesakes.py)
waits for a person to say "Add address to <Contact>", or to assign it otherwise.
"""

from __future__ import annotations

import frappe
from frappe import _

from email_sync.engine.namesakes import address_of
from email_sync.sync.review import _route_issue, file_row, learn_address, require, settle_copies, synced_rows


def add_to_contact(names: list[str], contact: str) -> list[str]:
	"""Emails waiting because their new address is named like a Contact of its Customer: the address goes
	onto `contact` (one of those named), and each email is filed on it and its Customer, copies included."""
	rows = synced_rows(names, ("Needs Review",))
	wrong = [r.name for r in rows if not address_of(r.decision_rule)]
	if wrong:
		frappe.throw(_("{0}: not waiting for an address to be added to a Contact of the same name.").format(", ".join(wrong)))
	require("Contact", contact, "write")
	filed = []
	for row in rows:
		if contact not in _lines(row.matched_contacts):
			frappe.throw(_("{0} is not the Contact of that name for {1}.").format(contact, row.name))
		customers = _lines(row.matched_customers)
		for customer in customers:
			require("Customer", customer, "write")
		address = address_of(row.decision_rule)
		learn_address(contact, address, None)
		reason = _("{0} added to Contact {1} (same name, Customer {2}) by {3}.").format(
			address, contact, ", ".join(customers), frappe.session.user
		)
		plan = file_row(row, [contact], customers, reason)
		_route_issue(row, plan, force=False)
		settle_copies(row)
		filed.append(row.name)
	frappe.db.commit()
	return filed


def _lines(value: str | None) -> list[str]:
	return [line for line in (value or "").split("\n") if line]
