"""Messages a provider could not download, recorded as Error Synced Emails instead of stopping the run,
and Retry on them.

A provider hands such a message out with `FetchedMessage.error` set and no content (see providers/base.py);
the runner files it like any other plan, so the Synced Email shows the provider's reason, its folder and
provider id, and the account's cursor moves past it. Retry asks the provider for that one message again
(`Provider.fetch_one`) and files it through the same engine and writer as a sync.
"""

from __future__ import annotations

import hashlib

import frappe
from frappe import _

from email_sync.engine import ERROR, INBOUND, OUTBOUND, Message, Plan, parse_message, plan_messages
from email_sync.providers import FetchedMessage, ProviderError
from email_sync.sync.context import account_config, load_context, load_settings, provider_for
from email_sync.sync.decision_history import record
from email_sync.sync.issues import IssueRouter
from email_sync.sync.writer import Item, synced_email_name, write_batch


def with_fetch_errors(fetched: list[FetchedMessage], plans: list[Plan]) -> list[Plan]:
	"""`plans` (one per fetched message, in order), each failed download's replaced by an Error plan."""
	return [error_plan(m) if m.error else plan for m, plan in zip(fetched, plans, strict=True)]


def error_plan(fetched: FetchedMessage) -> Plan:
	"""An Error plan with the provider's reason. Its identity comes from the provider id: the same message
	failing again on a later run is the same Synced Email, not a new one."""
	identity = f"fetch-error\x1f{fetched.provider_id}".encode("utf-8", "surrogatepass")
	key = hashlib.sha256(identity).hexdigest()[:40]
	reason = f"Could not be downloaded from the mail server: {fetched.error}"
	return Plan(
		Message(key=key, unreadable=reason),
		ERROR,
		reason[:1000],
		f"fetch-error:{fetched.error_code or 'unknown'}"[:140],
		OUTBOUND if fetched.from_sent_folder else INBOUND,
	)


# -- Retry ---------------------------------------------------------------------------------------------------

RULE_PREFIX = "fetch-error:"
GONE = "message_gone"
MAX_RETRIES = 50  # Synced Emails per bulk Retry: each is one download, done while the user waits


def is_failed_download(row) -> bool:
	"""An Error Synced Email recorded for a message the server would not hand out, with its id to ask again."""
	return row.status == ERROR and (row.decision_rule or "").startswith(RULE_PREFIX) and bool(row.provider_id)


def retry(names: list[str]) -> list[dict]:
	"""Download each failed message again through its account's provider and file it like a sync would.

	The caller must be allowed to write each Synced Email. Per name: {"name", "status", "message"} and, once
	downloaded, "synced_email" (the row it is now filed as). A message that downloads replaces its Error row:
	the row is deleted and the new Synced Email's Decision History says it came from a retry. One that still
	fails keeps its Error row with the server's new reason; one the mailbox no longer holds says so. An
	account that cannot be reached leaves its rows as they are and says why."""
	names = list(dict.fromkeys(names))
	if len(names) > MAX_RETRIES:
		frappe.throw(_("Retry at most {0} emails at a time.").format(MAX_RETRIES))
	rows = [frappe.get_doc("Synced Email", name) for name in names]
	for row in rows:
		row.check_permission("write")
		if not is_failed_download(row):
			frappe.throw(_("{0} is not an email whose download failed: there is nothing to retry.").format(row.name))
	results = []
	by_account: dict[str, list] = {}
	for row in rows:
		by_account.setdefault(row.account, []).append(row)
	for account_name, account_rows in by_account.items():
		results += _retry_account(frappe.get_doc("Email Sync Account", account_name), account_rows)
	return results


def _retry_account(account, rows: list) -> list[dict]:
	config = account_config(account)
	results = []
	try:
		with provider_for(account, config) as provider:
			for row in rows:
				results.append(_retry_one(account, config, provider, row))
	except ProviderError as e:  # the account or the service, not the message: nothing about the rows changes
		frappe.db.rollback()
		done = {r["name"] for r in results}
		message = f"{e.message} {e.fix}"
		results += [{"name": row.name, "status": ERROR, "message": message} for row in rows if row.name not in done]
	return results


def _retry_one(account, config, provider, row) -> dict:
	fetched = provider.fetch_one(row.provider_id)
	if fetched is None or fetched.failed:
		code = GONE if fetched is None else fetched.error_code or "unknown"
		error = "the mailbox no longer holds this message" if fetched is None else fetched.error
		reason = f"Could not be downloaded from the mail server: {error}"
		_note(row.name, {"reason": reason[:1000], "decision_rule": f"{RULE_PREFIX}{code}"[:140]}, f"Retry failed: {error}")
		frappe.db.commit()
		return {"name": row.name, "status": ERROR, "message": reason}
	settings = load_settings()
	plan = plan_messages([(parse_message(fetched.raw), fetched.from_sent_folder)], load_context(account, config))[0]
	frappe.delete_doc("Synced Email", row.name, ignore_permissions=True, force=True)  # checked in retry()
	write_batch(  # commits, the deletion with it
		account.name,
		[Item(fetched, plan)],
		None,  # the account's sync cursor stays where the sync left it
		int(settings.snippet_length or 200),
		then=IssueRouter(account, settings).route,
	)
	name = synced_email_name(account.name, plan.message.key)
	_note(name, {}, f"Downloaded on retry; before, it had failed: {row.reason or ''}")
	frappe.db.commit()
	status = frappe.db.get_value("Synced Email", name, "status")
	return {"name": row.name, "status": status, "synced_email": name, "message": plan.reason}


def _note(name: str, values: dict, what: str) -> None:
	"""Set `values` on a Synced Email and add `what` to its Decision History."""
	if values:
		frappe.db.set_value("Synced Email", name, values)
	record([name], what)
