"""Whitelisted methods behind the account form's buttons. Each checks the caller may act on the account."""

import frappe
from frappe import _

from email_sync.providers import ProviderError, get_provider
from email_sync.sync.context import account_config
from email_sync.sync.tasks import enqueue_sync


def _account_for(account: str, ptype: str):
	doc = frappe.get_doc("Email Sync Account", account)
	doc.check_permission(ptype)
	return doc


@frappe.whitelist(methods=["POST"])
def sync_now(account: str) -> dict:
	doc = _account_for(account, "write")
	if doc.status in ("Draft", "Disconnected"):
		frappe.throw(_("Activate the account before syncing it: set its status to Active and save."))
	return {"job_id": enqueue_sync(doc.name, "Manual")}


@frappe.whitelist(methods=["POST"])
def sync_all() -> dict:
	frappe.only_for("System Manager")
	accounts = frappe.get_all("Email Sync Account", filters={"status": ("in", ["Active", "Error"])}, pluck="name")
	return {"job_ids": [enqueue_sync(a, "Manual") for a in accounts]}


@frappe.whitelist(methods=["POST"])
def test_connection(account: str) -> dict:
	"""Connect and list folders; on failure say what is wrong and what to do, in the user's words."""
	doc = _account_for(account, "write")
	try:
		result = get_provider(account_config(doc)).test()
	except ProviderError as e:
		return {"ok": False, "message": f"{e.message} {e.fix}", "folders": []}
	return {
		"ok": result.ok,
		"message": result.message,
		"folders": [{"name": f.name, "role": f.role} for f in result.folders if f.selectable],
	}
