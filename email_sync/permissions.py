"""Who sees which synced mail, through Frappe's permission hooks so that every path honours it.

A *private* account's mail (Email Sync Account with Shared off) is seen by its owner and System Managers
only: in the Synced Email list, report and REST API, Number Cards, and the Communication itself. The hooks
only ever deny; what a role may do otherwise stays with its DocPerms.
"""

from __future__ import annotations

import frappe

REVIEWER_ROLE = "Email Sync Reviewer"


def is_admin(user: str | None = None) -> bool:
	user = user or frappe.session.user
	return user == "Administrator" or "System Manager" in frappe.get_roles(user)


def hidden_accounts(user: str | None = None) -> list[str]:
	"""Private accounts whose mail `user` may not see (none for administrators)."""
	user = user or frappe.session.user
	if is_admin(user):
		return []
	return frappe.db.sql_list(
		"""select name from `tabEmail Sync Account`
		where ifnull(shared, 0) = 0 and ifnull(account_owner, '') != %s""",
		user,
	)


def visible_accounts(user: str | None = None) -> tuple[list[str], list[str]]:
	"""(shared accounts, private accounts `user` may see: their own, or all for administrators)."""
	user = user or frappe.session.user
	rows = frappe.get_all(
		"Email Sync Account", fields=["name", "shared", "account_owner"], order_by=None, ignore_permissions=True
	)
	shared = [r.name for r in rows if r.shared]
	admin = is_admin(user)
	private = [r.name for r in rows if not r.shared and (admin or r.account_owner == user)]
	return shared, private


def _in(names: list[str]) -> str:
	return ", ".join(frappe.db.escape(n) for n in names)


def synced_email_query(user: str | None = None, doctype: str | None = None) -> str:
	hidden = hidden_accounts(user)
	if not hidden:
		return ""
	return f"`tabSynced Email`.`account` not in ({_in(hidden)})"


def synced_email_permission(doc, ptype: str | None = None, user: str | None = None, debug: bool = False):
	if doc.get("account") in hidden_accounts(user):
		return False
	return None  # no opinion: the role permissions decide


def communication_query(user: str | None = None, doctype: str | None = None) -> str:
	"""Communications held only by hidden private accounts stay out of every list."""
	hidden = hidden_accounts(user)
	if not hidden:
		return ""
	names = _in(hidden)
	return f"""`tabCommunication`.`name` not in (
		select se.communication from `tabSynced Email` se
		where se.account in ({names}) and se.communication is not null
		and not exists (select 1 from `tabSynced Email` other
			where other.communication = se.communication and other.account not in ({names})))"""


def communication_permission(doc, ptype: str | None = None, user: str | None = None, debug: bool = False):
	if not doc.get("name") or doc.get("communication_type") != "Communication":
		return None
	if private_to_others(doc.name, user):
		return False
	return None


def private_to_others(communication: str, user: str | None = None) -> bool:
	"""Whether this email was synced only through private accounts `user` may not see."""
	hidden = hidden_accounts(user)
	if not hidden:
		return False
	holders = set(
		frappe.get_all(
			"Synced Email", filters={"communication": communication}, pluck="account", ignore_permissions=True
		)
	)
	return bool(holders) and holders <= set(hidden)
