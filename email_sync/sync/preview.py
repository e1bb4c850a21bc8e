"""Previews that change nothing: what the last synced emails would become with a filter, and the next
messages a sync of an account will really take (Test Connection)."""

from __future__ import annotations

import frappe

from email_sync.engine import Filter, RuleSet, plan_message
from email_sync.sync.context import account_config, load_context, load_cursor, provider_for
from email_sync.sync.review import stored_plan
from email_sync.sync.writer import synced_email_name

# Decisions taken before filters run (see engine/decide.py): a filter cannot change them.
EARLIER_RULES = ("unreadable", "blacklist:", "internal", "auto-submitted", "engine-error", "write-error")


def preview_filter(rule: Filter, account: str | None = None, limit: int = 50) -> dict:
	filters = {"account": account} if account else {}
	rows = frappe.get_all("Synced Email", filters=filters, fields=["*"], order_by="creation desc", limit=limit)
	contexts: dict[str, object] = {}
	results, changed = [], 0
	for row in rows:
		if row.account not in contexts:
			contexts[row.account] = _context_with(row.account, rule)
		if row.decision_rule and row.decision_rule.startswith(EARLIER_RULES):
			status, reason = row.status, row.reason
		else:
			plan = plan_message(stored_plan(row, row.status, "", [], []).message, contexts[row.account])
			status, reason = plan.status, plan.reason
		changed += status != row.status
		results.append(
			{
				"name": row.name,
				"subject": row.subject,
				"sender": row.sender,
				"email_date": row.email_date,
				"status": row.status,
				"new_status": status,
				"new_reason": reason,
				"changes": status != row.status,
			}
		)
	return {"rows": results, "checked": len(results), "would_change": changed}


def _context_with(account_name: str, rule: Filter):
	account = frappe.get_doc("Email Sync Account", account_name)
	context = load_context(account, account_config(account))
	others = [f for f in context.rules.filters if f.name != rule.name]
	context.rules = RuleSet(context.rules.blacklist, [*others, rule])
	return context


def preview_sync(account, count: int = 5) -> list[dict]:
	"""The next `count` messages the account's sync will take, and what it would do with each.

	Read as the sync reads: the account's folders, its Sync Start Date and, once it has synced, from its cursor
	(a preview of a synced account shows only mail newer than what is filed). Mail the sync would recognise as
	already filed is left out, as the sync leaves it. Nothing is written and the cursor does not move."""
	from email_sync.engine import parse_message, plan_messages

	config = account_config(account)
	config.batch_size = min(max(count, 1), 20)
	taken, read = [], 0
	with provider_for(account, config) as provider:
		for batch in provider.fetch(load_cursor(account)):
			parsed = [(parse_message(m.raw), m.from_sent_folder) for m in batch.messages if not m.failed]
			known = _already_synced(account.name, [message for message, _ in parsed])
			taken += [(message, sent) for message, sent in parsed if message.key not in known]
			read += len(batch.messages)
			if len(taken) >= count or read >= 4 * config.batch_size:
				break  # bounded: a preview never reads the whole mailbox
	if not taken:
		return []
	plans = plan_messages(taken[:count], load_context(account, config))
	return [
		{
			"from": p.message.sender.email if p.message.sender else "",
			"subject": p.message.subject,
			"date": p.message.date,
			"status": p.status,
			"reason": p.reason,
		}
		for p in plans
	]


def _already_synced(account: str, messages) -> set[str]:
	names = {synced_email_name(account, m.key): m.key for m in messages}
	if not names:
		return set()
	found = frappe.get_all("Synced Email", filters={"name": ("in", list(names))}, pluck="name", order_by=None)
	return {names[name] for name in found}
