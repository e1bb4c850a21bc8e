"""Push endpoints for Gmail (Pub/Sub push) and Microsoft Graph (change notifications).

Guest endpoints, so each one authenticates what it receives before acting: Gmail's by the secret token in
the push URL, Microsoft's by the clientState of the subscription. A push only enqueues a sync of the
account; the sync reads from the stored cursor.
"""

import json

import frappe
from werkzeug.wrappers import Response

from email_sync.providers import ProviderError
from email_sync.sync.tasks import enqueue_sync


@frappe.whitelist(allow_guest=True, methods=["POST"])
def gmail(**kwargs):
	from email_sync.providers.gmail import parse_push, verify_push_token

	# Read from the URL itself: for a JSON body Frappe's form_dict holds only the body.
	token = frappe.request.args.get("token") or ""
	expected = frappe.get_single("Email Sync Settings").get_password("push_token", raise_exception=False)
	if not verify_push_token(expected or "", token):
		return Response("unknown push token", status=403)
	try:
		push = parse_push(_json_body())
	except ProviderError as e:
		return Response(e.message, status=400)
	account = frappe.db.get_value(
		"Email Sync Account", {"provider": "Gmail", "email_address": push["email_address"].lower(), "status": "Active"}
	)
	if account:
		enqueue_sync(account, "Push")
		frappe.db.commit()
	return Response(status=204)  # acknowledged either way, or Pub/Sub retries an unknown mailbox for days


@frappe.whitelist(allow_guest=True, methods=["POST"])
def microsoft(validationToken: str | None = None, **kwargs):  # noqa: N803 - Graph's parameter name
	from email_sync.providers.microsoft import parse_notifications

	if validationToken:  # the subscription handshake: echo the token as plain text within 10 seconds
		return Response(validationToken, status=200, mimetype="text/plain")
	body = _json_body()
	accepted = 0
	for subscription_id in {n.get("subscriptionId") for n in body.get("value", []) if isinstance(n, dict)}:
		account = frappe.db.get_value(
			"Email Sync Account", {"provider": "Microsoft", "push_subscription_id": subscription_id or "-"}, ["name", "status"], as_dict=True
		)
		if not account:
			continue
		doc = frappe.get_doc("Email Sync Account", account.name)
		expected = doc.get_password("push_client_state", raise_exception=False) or ""
		mine = {"value": [n for n in body["value"] if isinstance(n, dict) and n.get("subscriptionId") == subscription_id]}
		try:
			notifications = parse_notifications(mine, expected)
		except ProviderError:
			continue  # a wrong clientState: not from our subscription
		if notifications and account.status == "Active":
			enqueue_sync(account.name, "Push")
			accepted += 1
	frappe.db.commit()
	return Response(status=202 if accepted else 403)


def _json_body() -> dict:
	try:
		data = json.loads(frappe.request.get_data(as_text=True) or "{}")
	except ValueError:
		data = {}
	return data if isinstance(data, dict) else {}
