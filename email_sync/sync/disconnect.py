"""Disconnecting an account: stop, revoke, and keep or erase what it synced."""

from __future__ import annotations

import frappe
from frappe.utils.password import delete_all_passwords_for

from email_sync.providers import ProviderError
from email_sync.sync import realtime
from email_sync.sync.attachments import held_only_by
from email_sync.sync.context import provider_for


def disconnect_account(account, erase: bool = False) -> dict:
	realtime.stop(account)
	revoked = _revoke(account)
	delete_all_passwords_for("Email Sync Account", account.name)  # tokens and IMAP password alike
	frappe.db.set_value(
		"Email Sync Account",
		account.name,
		{"status": "Disconnected", "push_subscription_id": None, "push_expires_on": None, "next_sync_after": None},
	)
	erased = erase_synced(account.name) if erase else {}
	frappe.db.commit()
	return {"revoked": revoked, **erased}


def _revoke(account) -> bool:
	if account.provider == "IMAP":
		return True  # nothing to revoke: the password is forgotten
	try:
		return bool(provider_for(account).revoke())
	except ProviderError:
		return False


def erase_synced(account: str) -> dict:
	"""Delete the account's Synced Emails, and the Communications (with links and files) that only it filed."""
	communications = held_only_by(account)
	for file in frappe.get_all(
		"File",
		filters={"attached_to_doctype": "Communication", "attached_to_name": ("in", communications or ["-"])},
		pluck="name",
	):
		frappe.delete_doc("File", file, ignore_permissions=True, force=True)
	for chunk in _chunks(communications, 500):
		frappe.db.delete("Communication Link", {"parent": ("in", chunk), "parenttype": "Communication"})
		frappe.db.delete("Communication", {"name": ("in", chunk)})
	synced = frappe.db.count("Synced Email", {"account": account})
	frappe.db.sql(
		"""delete from `tabEmail Sync Attachment` where parenttype = 'Synced Email'
		and parent in (select name from `tabSynced Email` where account = %s)""",
		account,
	)
	frappe.db.delete("Synced Email", {"account": account})
	frappe.db.set_value("Email Sync Account", account, {"emails_synced": 0, "sync_cursor": None})
	return {"synced_emails_deleted": synced, "communications_deleted": len(communications)}


def _chunks(items: list, size: int):
	for i in range(0, len(items), size):
		yield items[i : i + size]
