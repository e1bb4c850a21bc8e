"""Whitelisted methods behind the account form's buttons. Each checks the caller may act on the account."""

import frappe
from frappe import _

from email_sync.providers import ProviderError
from email_sync.sync.context import provider_for
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
def test_connection(account: str, preview: int = 5) -> dict:
	"""Connect and list folders; on failure say what is wrong and what to do, in the user's words.

	With `preview`, also read the next few messages the sync would take and say what it would do with
	each (nothing is written, the cursor does not move)."""
	doc = _account_for(account, "write")
	try:
		result = provider_for(doc).test()
		sample = _preview(doc, int(preview or 0)) if result.ok and int(preview or 0) else []
	except ProviderError as e:
		message = f"{e.message} {e.fix}"
		return {"ok": False, "connected": False, "message": message, "folders": [], "preview": []}
	# A missing folder is not a failed connection: the live list is there to pick from.
	connected = result.ok or result.code == "folder_missing"
	message = result.message
	if result.code == "folder_missing":
		message = f"Connected, but {message[:1].lower()}{message[1:]}"
	return {
		"ok": result.ok,
		"connected": connected,
		"code": result.code,
		"message": message,
		"folders": [{"name": f.name, "role": f.role} for f in result.folders if f.selectable] if connected else [],
		"preview": sample,
	}


def _preview(doc, count: int) -> list[dict]:
	from email_sync.sync.preview import preview_sync

	return preview_sync(doc, count)


@frappe.whitelist(methods=["POST"])
def connect(account: str) -> dict:
	"""The consent page for a Gmail or Microsoft account; the browser goes there and comes back to the callback."""
	from email_sync.sync.connect import authorization_url

	return {"url": authorization_url(_account_for(account, "write"))}


@frappe.whitelist(methods=["GET"])
def oauth_callback(state: str | None = None, code: str | None = None, error: str | None = None, **kwargs):
	"""Where Google and Microsoft send the browser back after consent."""
	from email_sync.sync.connect import claim_state, finish

	account = claim_state(state)
	message = ""
	if error or not code:
		message = kwargs.get("error_description") or error or "no authorization code"
	else:
		try:
			finish(account, code)
		except ProviderError as e:
			message = f"{e.message} {e.fix}"
	location = f"/app/email-sync-account/{account}"
	if message:
		frappe.cache.set_value(f"email_sync:connect_error:{frappe.session.user}", message, expires_in_sec=300)
		location += "?connect_error=1"
	frappe.local.response["type"] = "redirect"
	frappe.local.response["location"] = location


@frappe.whitelist()
def connect_error() -> str:
	"""The reason the last Connect of this user failed, shown once on the account form."""
	key = f"email_sync:connect_error:{frappe.session.user}"
	message = frappe.cache.get_value(key) or ""
	frappe.cache.delete_value(key)
	return message


@frappe.whitelist(methods=["POST"])
def disconnect(account: str, erase: bool = False) -> dict:
	"""Stop syncing, revoke the grant, and keep (default) or erase everything this account synced."""
	from email_sync.sync.disconnect import disconnect_account

	doc = _account_for(account, "write")
	return disconnect_account(doc, erase=frappe.utils.sbool(erase))


@frappe.whitelist(methods=["POST"])
def strip_stored(account: str) -> dict:
	"""After the account's Store mode became stricter: cut what it already stored down to that mode."""
	from email_sync.sync.attachments import held_only_by

	doc = _account_for(account, "write")
	frappe.enqueue(
		"email_sync.sync.attachments.strip_stored",
		queue="long",
		timeout=60 * 60,
		job_id=f"email_sync::strip::{doc.name}",
		deduplicate=True,
		enqueue_after_commit=True,
		account=doc.name,
	)
	return {"queued": len(held_only_by(doc.name)), "store_mode": doc.store_mode}


def _names(names) -> list[str]:
	return frappe.parse_json(names) if isinstance(names, str) else list(names or [])


@frappe.whitelist(methods=["POST"])
def assign_to_customer(names, customer: str, contact: str | None = None) -> list[str]:
	from email_sync.sync.review import assign_to_customer as assign

	frappe.has_permission("Contact", "write", throw=True)
	return assign(_names(names), customer, contact or None)


@frappe.whitelist(methods=["POST"])
def file_shared(names, customer: str | None = None) -> list[str]:
	"""Emails waiting because their address is shared by several Customers: file them on `customer` (with
	its Contacts among the candidates), or on every candidate when no Customer is given."""
	from email_sync.sync.shared import file_shared as file

	return file(_names(names), customer or None)


@frappe.whitelist(methods=["POST"])
def add_address_to_contact(names, contact: str) -> list[str]:
	"""Emails waiting because their new address is named like a Contact of its Customer: add the address to
	that Contact and file them on it."""
	from email_sync.sync.namesake_review import add_to_contact

	return add_to_contact(_names(names), contact)


@frappe.whitelist(methods=["POST"])
def create_customer(name: str, customer_name: str | None = None) -> str:
	from email_sync.sync.review import create_customer as create

	frappe.has_permission("Customer", "create", throw=True)
	return create(name, customer_name or None)


@frappe.whitelist()
def customer_prefill(name: str) -> dict:
	from email_sync.sync.review import customer_prefill as prefill
	from email_sync.sync.review import synced_rows

	return prefill(synced_rows([name], ("Needs Review",), "read")[0])


@frappe.whitelist(methods=["POST"])
def create_issues(names) -> list[str]:
	from email_sync.sync.review import create_issues as create

	frappe.has_permission("Issue", "create", throw=True)
	return create(_names(names))


@frappe.whitelist(methods=["POST"])
def ignore_senders(names) -> list[str]:
	from email_sync.sync.review import ignore_senders as ignore

	frappe.has_permission("Email Sync Blacklist", "create", throw=True)
	return ignore(_names(names))


@frappe.whitelist()
def preview_filter(
	filter_type: str, match_field: str, operator: str, value: str, account: str | None = None,
	name: str | None = None, limit: int = 50,
) -> dict:
	"""What the last `limit` synced emails would become with this filter (as edited, saved or not)."""
	from email_sync.engine import Filter, RuleError
	from email_sync.sync.preview import preview_filter as preview

	frappe.only_for("System Manager")
	try:
		rule = Filter(name or "this filter", filter_type, match_field, operator, value or "")
	except RuleError as e:
		frappe.throw(str(e))
	return preview(rule, account or None, min(int(limit or 50), 500))


@frappe.whitelist(methods=["POST"])
def reassign_emails(emails, contact: str | None = None, customer: str | None = None, learn: int = 0) -> list[str]:
	"""File these emails (Communication names) on another Contact and/or Customer (see sync/refile.py)."""
	from email_sync.sync.refile import reassign

	return reassign(_names(emails), contact or None, customer or None, frappe.utils.sbool(learn))


@frappe.whitelist(methods=["POST"])
def remove_from_record(emails, doctype: str, name: str) -> list[str]:
	"""Take these emails off one Customer or Contact; an email nothing else holds is removed."""
	from email_sync.sync.refile import unfile

	return unfile(_names(emails), doctype, name)


@frappe.whitelist()
def removal_outcome(email: str, doctype: str, name: str) -> dict:
	"""What Remove from this record would do to this email: the records that keep it, or that it is deleted."""
	from email_sync.sync.refile import removal_outcome as outcome

	return outcome(email, doctype, name)


@frappe.whitelist(methods=["POST"])
def link_to_issue(emails, issue: str, thread: int = 0) -> list[str]:
	"""Put these emails (with `thread`, their conversation too) on an existing Issue."""
	from email_sync.sync.refile import link_to_issue as link

	return link(_names(emails), issue, frappe.utils.sbool(thread))


@frappe.whitelist(methods=["POST"])
def split_to_issue(email: str) -> str:
	"""A new Issue for this email, out of the Issue it is on."""
	from email_sync.sync.refile import split_to_new_issue

	return split_to_new_issue(email)


@frappe.whitelist(methods=["POST"])
def import_older_mail(account: str, since: str, folder: str | None = None) -> dict:
	"""Bring in the account's mail from `since` up to what it has read (one folder, or all), as history."""
	from email_sync.sync.backfill import start_backfill

	doc = _account_for(account, "write")
	return start_backfill(doc.name, since, folder or None)


@frappe.whitelist(methods=["POST"])
def import_upload(account: str, file: str) -> dict:
	"""Import an .eml, .mbox or .zip uploaded on the account's form, as history; the upload is deleted after."""
	from email_sync.sync.upload_import import start_upload_import

	doc = _account_for(account, "write")
	return start_upload_import(doc.name, file)
