"""The decision core of Email Sync: parse, decide, match. No Frappe import anywhere in this package."""

from email_sync.engine.decide import Context, plan_message, plan_messages
from email_sync.engine.directory import Directory
from email_sync.engine.model import ERROR, FILED, INBOUND, NEEDS_REVIEW, OUTBOUND, SKIPPED, Message, Plan
from email_sync.engine.parse import parse_message
from email_sync.engine.rules import BlacklistEntry, Filter, RuleError, RuleSet

__all__ = [
	"ERROR",
	"FILED",
	"INBOUND",
	"NEEDS_REVIEW",
	"OUTBOUND",
	"SKIPPED",
	"BlacklistEntry",
	"Context",
	"Directory",
	"Filter",
	"Message",
	"Plan",
	"RuleError",
	"RuleSet",
	"parse_message",
	"plan_message",
	"plan_messages",
]
