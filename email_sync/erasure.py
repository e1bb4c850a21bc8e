"""Erasure on request (GDPR), from the Contact form or the API: preview what would go, then erase it.

System Managers only: Sales and Support users read this mail but may not erase it. What is erased and
what stays is described in sync/erasure.py.
"""

import frappe
from frappe import _
from frappe.utils import sbool

from email_sync.sync import erasure

ROLE = "System Manager"


@frappe.whitelist()
def preview_erasure(address: str | None = None, contact: str | None = None) -> dict:
	"""What `erase` with the same address or Contact would remove: counts and the newest subjects. Changes
	nothing."""
	frappe.only_for(ROLE)
	return erasure.preview(_scope(address, contact))


@frappe.whitelist(methods=["POST"])
def erase(
	address: str | None = None,
	contact: str | None = None,
	blacklist: bool | int | str = False,
	delete_issues: bool | int | str = False,
) -> dict:
	"""Erase everything synced with the address (or the Contact's addresses); blacklist them if asked, so
	the sync skips them from now on; delete the Issues those emails opened if asked. Leaves an Email Sync
	Erasure Log."""
	frappe.only_for(ROLE)
	return erasure.erase(
		_scope(address, contact),
		blacklist=sbool(blacklist),
		delete_issues=sbool(delete_issues),
		user=frappe.session.user,
	)


def _scope(address: str | None, contact: str | None) -> erasure.Scope:
	if bool(address) == bool(contact):
		frappe.throw(_("Name either an email address or a Contact."))
	if contact:
		if not frappe.db.exists("Contact", contact):
			frappe.throw(_("Contact {0} not found.").format(contact), frappe.DoesNotExistError)
		return erasure.find(erasure.addresses_of_contact(contact), contact)
	if not erasure.normalised([address]):
		frappe.throw(_("{0} is not an email address.").format(frappe.bold(address)))
	return erasure.find([address])
