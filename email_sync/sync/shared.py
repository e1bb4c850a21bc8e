"""Emails waiting in Needs Review because their address is shared by Contacts of several Customers (see
engine/shared.py): who the candidates are, and filing on the one a person chooses, or on all of them.

Each files the email completely, as Assign to Customer does (timeline links, an Issue when the account makes
them, every copy in other mailboxes), and notes the choice in each copy's Decision History.
"""

from __future__ import annotations

import frappe
from frappe import _

from email_sync.engine.shared import RULE, and_list
from email_sync.sync.decision_history import copies_waiting, record
from email_sync.sync.review import _route_issue, file_row, require, settle_copies, synced_rows


def file_shared(names: list[str], customer: str | None = None) -> list[str]:
	"""File each email on `customer` with those of its candidate Contacts that belong to it, or, without a
	`customer`, on every candidate. Only emails waiting because their address is shared."""
	rows = synced_rows(names, ("Needs Review",))
	wrong = [r.name for r in rows if r.decision_rule != RULE]
	if wrong:
		frappe.throw(_("{0}: not waiting for a choice between Customers sharing an address.").format(", ".join(wrong)))
	filed = []
	for row in rows:
		contacts, customers = _still_there(row)
		if customer:
			if customer not in customers:
				frappe.throw(_("{0} is not one of the Customers sharing this address.").format(customer))
			of = _customers_by_contact(contacts)
			contacts = [c for c in contacts if customer in of.get(c, ()) or not of.get(c)]
			customers = [customer]
		for name in customers:
			require("Customer", name, "write")
		chosen = _("Filed on {0} by {1}: the address is shared by Contacts of {2}.").format(
			and_list(customers), frappe.session.user, and_list(_lines(row.matched_customers))
		)
		plan = file_row(row, contacts, customers, chosen)
		_route_issue(row, plan, force=False)
		copies = copies_waiting(row)
		settle_copies(row)
		record([row.name, *copies], chosen)
		filed.append(row.name)
	frappe.db.commit()
	return filed


def add_candidates(rows: list[dict]) -> None:
	"""Name the candidates on each shared-address row (of the Email Sync page): `candidates`, one per
	Customer, {customer, customer_name, contacts: [{name, full_name}]}."""
	shared = [r for r in rows if r.get("decision_rule") == RULE]
	contacts = sorted({c for r in shared for c in _lines(r.get("matched_contacts"))})
	customers = sorted({c for r in shared for c in _lines(r.get("matched_customers"))})
	of = _customers_by_contact(contacts)
	full_names = dict(frappe.get_all("Contact", filters={"name": ("in", contacts or ["-"])}, fields=["name", "full_name"],
		as_list=True))  # fmt: skip
	customer_names = dict(frappe.get_all("Customer", filters={"name": ("in", customers or ["-"])},
		fields=["name", "customer_name"], as_list=True))  # fmt: skip
	for row in shared:
		row["candidates"] = [
			{
				"customer": customer,
				"customer_name": customer_names[customer] or customer,
				"contacts": [
					{"name": c, "full_name": full_names.get(c) or c}
					for c in _lines(row.get("matched_contacts"))
					if customer in of.get(c, ())
				],
			}
			for customer in sorted(_lines(row.get("matched_customers")))  # in the order the reason names them
			if customer in customer_names  # a Customer deleted since is no choice
		]


def _still_there(row) -> tuple[list[str], list[str]]:
	"""The candidates that still exist (a Contact or Customer may have been deleted since the sync)."""
	contacts, customers = _lines(row.matched_contacts), _lines(row.matched_customers)
	existing_contacts = set(frappe.get_all("Contact", filters={"name": ("in", contacts or ["-"])}, pluck="name"))
	existing_customers = set(frappe.get_all("Customer", filters={"name": ("in", customers or ["-"])}, pluck="name"))
	return [c for c in contacts if c in existing_contacts], [c for c in customers if c in existing_customers]


def _customers_by_contact(contacts: list[str]) -> dict[str, list[str]]:
	by_contact: dict[str, list[str]] = {}
	for contact, customer in frappe.get_all(
		"Dynamic Link",
		filters={"parenttype": "Contact", "parent": ("in", contacts or ["-"]), "link_doctype": "Customer"},
		fields=["parent", "link_name"],
		as_list=True,
		order_by="idx asc",
	):
		by_contact.setdefault(contact, []).append(customer)
	return by_contact


def _lines(value: str | None) -> list[str]:
	return [v for v in (value or "").splitlines() if v]
