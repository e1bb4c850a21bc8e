"""Push endpoints for Gmail (Pub/Sub push) and Microsoft Graph (change notifications).

Guest endpoints, so each one authenticates what it receives before acting: Gmail's by the secret token in
the push URL (and, when an audience is set, by the OIDC token Pub/Sub signs for it), Microsoft's by the
clientState of the subscription. A push only enqueues a sync of the
account; the sync reads from the stored cursor. Microsoft's lifecycle notifications (its subscription needs
reauthorizing, was removed, or notifications were missed) only enqueue the upkeep job of the account.
"""

import json

import frappe
from werkzeug.wrappers import Response

from email_sync.providers import ProviderError
from email_sync.sync.tasks import enqueue_push_upkeep, enqueue_sync


@frappe.whitelist(allow_guest=True, methods=["POST"])
def gmail(**kwargs):
	from email_sync.providers.gmail import parse_push, verify_push_jwt, verify_push_token
	from email_sync.sync.context import endpoints

	# Read from the URL itself: for a JSON body Frappe's form_dict holds only the body.
	token = frappe.request.args.get("token") or ""
	settings = frappe.get_single("Email Sync Settings")
	if not verify_push_token(settings.get_password("push_token", raise_exception=False) or "", token):
		return Response("unknown push token", status=403)
	if settings.google_push_audience:  # authenticated push: Google's OIDC token must come with it
		try:
			verify_push_jwt(
				getattr(frappe.local, "email_sync_push_authorization", ""),
				settings.google_push_audience,
				settings.google_push_service_account or "",
				endpoints().get("google_certs", ""),
			)
		except ProviderError:
			return Response("push not authenticated", status=403)
	body = _json_body()
	if body is None:
		return Response("request body too large", status=413)
	try:
		push = parse_push(body)
	except ProviderError as e:
		return Response(e.message, status=400)
	account = frappe.db.get_value(
		"Email Sync Account", {"provider": "Gmail", "email_address": push["email_address"].lower(), "status": "Active"}
	)
	if account:
		enqueue_sync(account, "Push")
		frappe.db.commit()
	return Response(status=204)  # acknowledged either way, or Pub/Sub retries an unknown mailbox for days


GMAIL_PUSH_PATH = "/api/method/email_sync.push.gmail"


def set_aside_push_authorization():
	"""before_request: Pub/Sub sends its OIDC token as "Authorization: Bearer ...", which Frappe would take for
	one of its own OAuth tokens and answer 401 before the endpoint runs. For the Gmail push endpoint alone, the
	header is moved aside (frappe.local) for the endpoint to verify itself."""
	request = getattr(frappe.local, "request", None)
	if request is not None and request.path == GMAIL_PUSH_PATH and "HTTP_AUTHORIZATION" in request.environ:
		frappe.local.email_sync_push_authorization = request.environ.pop("HTTP_AUTHORIZATION")


# Guest endpoints read bounded input: a push body is small (a notification is well under 1 KB), so anything
# larger or longer is refused before any work, and the work per request is a fixed number of queries.
MAX_PUSH_BYTES = 256 * 1024
MAX_NOTIFICATIONS = 200
MAX_VALIDATION_TOKEN = 1024


@frappe.whitelist(allow_guest=True, methods=["POST"])
def microsoft(validationToken: str | None = None, **kwargs):  # noqa: N803 - Graph's parameter name
	from email_sync.providers.microsoft import parse_notifications

	if validationToken is not None:  # the subscription handshake: echo the token as plain text within 10 seconds
		return _validation_echo(validationToken)
	batch = _graph_batch()
	if isinstance(batch, Response):
		return batch
	for account, items, expected in batch:
		try:
			notifications = parse_notifications({"value": items}, expected)
		except ProviderError:
			continue  # a wrong clientState: not from our subscription
		if notifications and account.status == "Active":
			enqueue_sync(account.name, "Push")
	frappe.db.commit()
	# Accepted whatever it named: Graph retries anything else for hours, and the answer tells a prober nothing.
	return Response(status=202)


@frappe.whitelist(allow_guest=True, methods=["POST"])
def microsoft_lifecycle(validationToken: str | None = None, **kwargs):  # noqa: N803 - Graph's parameter name
	from email_sync.providers.microsoft import parse_lifecycle_notifications

	if validationToken is not None:
		return _validation_echo(validationToken)
	batch = _graph_batch()
	if isinstance(batch, Response):
		return batch
	for account, items, expected in batch:
		try:
			events = parse_lifecycle_notifications({"value": items}, expected)
		except ProviderError:
			continue
		if account.status == "Active":
			for event in sorted({e["event"] for e in events}):
				enqueue_push_upkeep(account.name, event)
	frappe.db.commit()
	return Response(status=202)


def _validation_echo(validation_token) -> Response:
	token = str(validation_token)
	if not token or len(token) > MAX_VALIDATION_TOKEN:
		return Response("invalid validationToken", status=400, mimetype="text/plain")
	response = Response(token, status=200, mimetype="text/plain")
	response.headers["X-Content-Type-Options"] = "nosniff"
	return response


def _graph_batch():
	"""[(account row, its notifications, its expected clientState)] for a Graph POST, or the refusal Response."""
	body = _json_body()
	if body is None:
		return Response("request body too large", status=413)
	items = body.get("value")
	if not isinstance(items, list) or len(items) > MAX_NOTIFICATIONS:
		return Response("not a change notification batch", status=400)
	by_subscription: dict[str, list[dict]] = {}
	for item in items:
		if isinstance(item, dict) and isinstance(item.get("subscriptionId"), str):
			by_subscription.setdefault(item["subscriptionId"][:200], []).append(item)
	accounts = frappe.get_all(
		"Email Sync Account",
		filters={"provider": "Microsoft", "push_subscription_id": ("in", list(by_subscription) or ["-"])},
		fields=["name", "status", "push_subscription_id"],
		order_by=None,
	)  # one indexed query whatever the body holds
	out = []
	for account in accounts:
		doc = frappe.get_doc("Email Sync Account", account.name)
		expected = doc.get_password("push_client_state", raise_exception=False) or ""
		out.append((account, by_subscription[account.push_subscription_id], expected))
	return out


def _json_body() -> dict | None:
	"""The JSON object in the request body; {} when it is not one; None when the body is over the cap."""
	data = frappe.request.get_data(cache=True)
	if len(data) > MAX_PUSH_BYTES:
		return None
	try:
		parsed = json.loads(data or b"{}")
	except ValueError:
		parsed = {}
	return parsed if isinstance(parsed, dict) else {}
