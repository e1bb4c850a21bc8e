"""Messages a provider could not download, recorded as Error Synced Emails instead of stopping the run.

A provider hands such a message out with `FetchedMessage.error` set and no content (see providers/base.py);
the runner files it like any other plan, so the Synced Email shows the provider's reason, its folder and
provider id, and the account's cursor moves past it.
"""

from __future__ import annotations

import hashlib

from email_sync.engine import ERROR, INBOUND, OUTBOUND, Message, Plan
from email_sync.providers import FetchedMessage


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
