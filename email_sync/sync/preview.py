"""Preview a filter: what the last synced emails would become with it, changing nothing."""

from __future__ import annotations

import frappe

from email_sync.engine import Filter, RuleSet, plan_message
from email_sync.sync.context import account_config, load_context
from email_sync.sync.review import stored_plan

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
