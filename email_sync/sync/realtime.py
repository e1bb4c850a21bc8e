"""Real-time delivery: Gmail watch on a Pub/Sub topic and Microsoft Graph change-notification subscriptions.

Push only says "something changed in this mailbox": the sync it triggers reads from the stored cursor, so a
lost, repeated or forged-then-refused notification never loses or duplicates mail. Polling at the account's
frequency stays on as the fallback.

Graph subscriptions also get lifecycle notifications (push.microsoft_lifecycle, then handle_lifecycle in a
job): reauthorizationRequired renews the subscription, subscriptionRemoved creates a new one, missed syncs.
A subscription that cannot be renewed is deleted before a new one is made, so two never send at once.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import frappe
from frappe.utils import add_to_date, get_url, now_datetime
from frappe.utils.data import convert_utc_to_system_timezone

from email_sync.providers import ProviderError
from email_sync.sync.company import reads_through_sign_in
from email_sync.sync.context import provider_for
from email_sync.sync.tasks import enqueue_sync

RENEW_BEFORE = timedelta(hours=24)
GRAPH_MINUTES = 4230  # Graph's maximum lifetime for message subscriptions (a little under three days)


def push_url(provider: str) -> str:
	if provider == "Gmail":
		token = frappe.get_single("Email Sync Settings").get_password("push_token", raise_exception=False)
		return get_url(f"/api/method/email_sync.push.gmail?token={token}")
	return get_url("/api/method/email_sync.push.microsoft")


def lifecycle_url() -> str:
	return get_url("/api/method/email_sync.push.microsoft_lifecycle")


def wants_push(account) -> bool:
	if account.status != "Active" or account.frequency != "Real-time":
		return False
	settings = frappe.get_cached_doc("Email Sync Settings")
	if account.provider == "Gmail":
		return bool(settings.google_pubsub_topic)
	# Graph sends no change notifications for a shared mailbox read through a sign-in: polled every minute.
	return account.provider == "Microsoft" and bool(settings.microsoft_push) and not reads_through_sign_in(account)


def start_or_renew(account) -> None:
	"""Create or renew the account's push subscription; errors are recorded on the account, never raised."""
	try:
		with provider_for(account) as provider:
			if account.provider == "Gmail":
				topic = frappe.get_cached_doc("Email Sync Settings").google_pubsub_topic
				watch = provider.start_watch(topic)
				expires = datetime.fromtimestamp(int(watch["expiration"]) / 1000, tz=timezone.utc)
				values = {"push_subscription_id": f"watch:{watch['history_id']}", "push_expires_on": _local(expires)}
			else:
				values = _graph_subscription(account, provider)
	except ProviderError as e:
		frappe.db.set_value(
			"Email Sync Account",
			account.name,
			{"last_error": f"Real-time could not be set up: {e.message}", "last_error_fix": e.fix},
			update_modified=False,
		)
		return
	frappe.db.set_value("Email Sync Account", account.name, values, update_modified=False)


def _graph_subscription(account, provider) -> dict:
	from frappe.utils.password import set_encrypted_password

	if account.push_subscription_id:
		try:
			result = provider.renew_subscription(account.push_subscription_id, GRAPH_MINUTES)
			return {"push_expires_on": _local(_parse(result["expirationDateTime"]))}
		except ProviderError:
			# Gone, or refused: one that still exists would go on sending next to the new one.
			_delete_quietly(provider, account.push_subscription_id)
	client_state = frappe.generate_hash(length=32)
	result = provider.create_subscription(
		push_url("Microsoft"), client_state, minutes=GRAPH_MINUTES, lifecycle_url=lifecycle_url()
	)
	set_encrypted_password("Email Sync Account", account.name, client_state, "push_client_state")
	return {"push_subscription_id": result["id"], "push_expires_on": _local(_parse(result["expirationDateTime"]))}


def _delete_quietly(provider, subscription_id: str) -> None:
	try:
		provider.delete_subscription(subscription_id)
	except ProviderError:
		pass  # it lapses within three days anyway


def handle_lifecycle(account: str, lifecycle_event: str) -> None:
	"""A job: act on a Graph lifecycle event of the account's subscription (see the module docstring)."""
	event = lifecycle_event
	if event == "missed":
		enqueue_sync(account, "Push")  # the cursor holds what the lost notifications were about
		frappe.db.commit()
		return
	if event == "subscriptionRemoved":
		gone = {"push_subscription_id": None, "push_expires_on": None}
		frappe.db.set_value("Email Sync Account", account, gone, update_modified=False)
	doc = frappe.get_doc("Email Sync Account", account)
	if wants_push(doc):
		start_or_renew(doc)  # renewing reauthorizes; without an id it subscribes anew
	frappe.db.commit()


def stop(account) -> None:
	"""End push for the account; best effort (the provider lets it lapse anyway)."""
	if not account.push_subscription_id:
		return
	try:
		with provider_for(account) as provider:
			if account.provider == "Gmail":
				provider.stop_watch()
			else:
				provider.delete_subscription(account.push_subscription_id)
	except ProviderError:
		pass
	frappe.db.set_value(
		"Email Sync Account", account.name, {"push_subscription_id": None, "push_expires_on": None}, update_modified=False
	)


def renew_due() -> None:
	"""Hourly: start push where it is wanted and missing, renew it a day before it lapses."""
	horizon = add_to_date(now_datetime(), hours=RENEW_BEFORE.total_seconds() / 3600)
	for name in frappe.get_all(
		"Email Sync Account", filters={"provider": ("in", ["Gmail", "Microsoft"]), "status": "Active"}, pluck="name"
	):
		account = frappe.get_doc("Email Sync Account", name)
		if not wants_push(account):
			continue
		if not account.push_subscription_id or not account.push_expires_on or account.push_expires_on < horizon:
			start_or_renew(account)
			frappe.db.commit()


def _parse(value: str) -> datetime:
	return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _local(moment: datetime):
	return convert_utc_to_system_timezone(moment.replace(tzinfo=None)).replace(tzinfo=None)
