"""A second address of a known person (see engine/namesakes.py), on the site: the address put onto the
Contact of the same name while the sync files the email (a reviewer's choice is namesake_review.py).
"""

from __future__ import annotations

import frappe


def add_addresses(filed: list) -> None:
	"""The addresses the engine found to be a second address of a Contact go onto it, once each (the
	Contact's own save hooks then file older mail from the address waiting in Needs Review)."""
	wanted = {(a.email, a.contact) for item in filed for a in item.plan.added_addresses}
	for email, contact in sorted(wanted):
		if frappe.db.exists("Contact Email", {"email_id": email}) or not frappe.db.exists("Contact", contact):
			continue  # taken meanwhile (a colleague, an earlier batch), or the Contact is gone: leave it be
		doc = frappe.get_doc("Contact", contact)
		doc.append("email_ids", {"email_id": email, "is_primary": 0 if doc.email_ids else 1})
		doc.save(ignore_permissions=True)  # the sync's own decision, per the setting an administrator chose
