"""Company mailboxes on the real site: faults real tenants hit, against the local emulators of tier 1."""

from datetime import datetime, timezone

import frappe
import pytest
from conftest import set_site_config
from factories import make_contact, make_customer, synced, unique
from frappe.utils.password import set_encrypted_password
from gmail_emulator import GmailEmulator  # tests/providers is on the path (conftest)

from email_sync.sync.runner import sync_account


def set_settings(**values):
	"""Write Email Sync Settings fields directly: the site is shared with other test runs, and a document
	save would fail whenever one of them saved the settings in between."""
	from frappe.utils.password import set_encrypted_password

	meta = frappe.get_meta("Email Sync Settings")
	for fieldname, value in values.items():
		if meta.get_field(fieldname).fieldtype == "Password":
			set_encrypted_password("Email Sync Settings", "Email Sync Settings", value, fieldname)
			value = "*" * 10 if value else ""
		frappe.db.set_single_value("Email Sync Settings", fieldname, value)
	frappe.db.commit()
	frappe.clear_document_cache("Email Sync Settings", "Email Sync Settings")


@pytest.fixture
def gmail():
	emulator = GmailEmulator(address=f"{unique('gm')}@workspace.example").start()
	set_settings(google_client_id=emulator.client_id, google_client_secret=emulator.client_secret)
	set_site_config(
		"email_sync_endpoints",
		{"google_auth": emulator.base, "google_api": emulator.url, "google_certs": emulator.certs_url},
	)
	frappe.db.commit()
	yield emulator
	set_site_config("email_sync_endpoints", None)
	emulator.stop()


def gmail_account(gmail) -> str:
	tokens = gmail.issue_tokens()
	name = frappe.get_doc(
		{"doctype": "Email Sync Account", "provider": "Gmail", "email_address": gmail.address, "status": "Active",
		 "sync_start_date": "2000-01-01", "auth_type": "OAuth"}
	).insert().name
	set_encrypted_password("Email Sync Account", name, tokens["refresh_token"], "refresh_token")
	frappe.db.commit()
	return name


def test_a_message_the_provider_will_not_hand_out_is_an_error_synced_email(gmail):
	domain = f"{unique('umbrella')}.test"
	make_contact("Lee", [f"lee@{domain}"], make_customer(f"Umbrella {domain}"))
	day = datetime(2026, 11, 20, tzinfo=timezone.utc)
	gmail.add_message(sender=f"lee@{domain}", subject="Before", date=day)
	bad = gmail.add_message(sender=f"lee@{domain}", subject="Signed", date=day.replace(hour=1))
	gmail.add_message(sender=f"lee@{domain}", subject="After", date=day.replace(hour=2))
	gmail.poison(bad, 400, "failedPrecondition", "Precondition check failed.")
	account = gmail_account(gmail)

	counts = sync_account(account)
	assert (counts.get("Filed"), counts.get("Error")) == (2, 1), counts
	rows = {r.subject or "": r for r in synced(account)}
	error = rows[""]
	assert error.status == "Error" and error.decision_rule == "fetch-error:message_unavailable"
	assert "Precondition check failed." in error.reason
	assert frappe.db.get_value("Synced Email", error.name, "provider_id") == bad
	assert {rows["Before"].status, rows["After"].status} == {"Filed"}
	assert frappe.db.get_value("Email Sync Account", account, "last_error") in (None, "")

	# The cursor moved past it: the next run files new mail and does not record the bad one twice.
	gmail.add_message(sender=f"lee@{domain}", subject="Later")
	counts = sync_account(account)
	assert counts.get("Filed") == 1 and not counts.get("Error"), counts
	assert len(synced(account)) == 4


# -- company mailboxes: no personal sign-in ------------------------------------------------------------------


@pytest.fixture
def graph(tmp_path):
	from graph_emulator import GraphEmulator, make_certificates

	emulator = GraphEmulator(make_certificates(tmp_path), address=f"{unique('support')}@contoso.example").start()
	set_site_config(
		"email_sync_endpoints",
		{"microsoft_auth": emulator.auth_base, "microsoft_api": emulator.api_base, "ca_bundle": emulator.certs.ca_file},
	)
	yield emulator
	set_site_config("email_sync_endpoints", None)
	emulator.stop()


def company_account(provider: str, address: str, status: str = "Active") -> str:
	name = frappe.get_doc(
		{"doctype": "Email Sync Account", "provider": provider, "email_address": address, "status": status,
		 "mailbox_kind": "Shared or delegated", "sync_start_date": "2000-01-01"}
	).insert().name
	frappe.db.commit()
	return name


def test_a_microsoft_shared_mailbox_is_synced_with_the_app_access(graph):
	from email_sync.api import test_connection
	from email_sync.sync.connect import authorization_url

	set_settings(
		microsoft_client_id=graph.client_id, microsoft_client_secret=graph.client_secret, microsoft_tenant_id="",
		microsoft_app_credential="Client secret",
	)  # fmt: skip
	with pytest.raises(frappe.ValidationError, match="Tenant"):  # not activated before the settings are complete
		company_account("Microsoft", graph.address)
	frappe.db.rollback()
	set_settings(microsoft_tenant_id=graph.tenant_id)
	domain = f"{unique('contoso')}.test"
	make_contact("Kim", [f"kim@{domain}"], make_customer(f"Northwind {domain}"))
	graph.add_message(
		"inbox", "2026-11-20T09:00:00Z",
		mime=f"From: kim@{domain}\r\nTo: {graph.address}\r\nSubject: Ticket 42\r\nMessage-ID: <{unique('m')}@t>\r\n"
		f"Date: Fri, 20 Nov 2026 09:00:00 +0000\r\n\r\nHello\r\n".encode(),
	)  # fmt: skip
	account = company_account("Microsoft", graph.address)

	result = test_connection(account, preview=0)
	assert result["ok"] and "app's own access" in result["message"], result
	assert sync_account(account).get("Filed") == 1
	assert synced(account)[0].subject == "Ticket 42"
	assert {r["grant_type"] for r in graph.token_requests} == {"client_credentials"}
	with pytest.raises(frappe.ValidationError, match="needs no sign-in"):
		authorization_url(frappe.get_doc("Email Sync Account", account))

	graph.app_roles = set()  # admin consent withdrawn: the account says what to do
	sync_account(account)
	doc = frappe.get_doc("Email Sync Account", account)
	assert doc.last_error_code == "missing_scopes" and "Grant admin consent" in doc.last_error_fix


def test_a_workspace_mailbox_is_synced_by_domain_wide_delegation(gmail):
	import json

	key = gmail.add_service_account()
	gmail.delegate(key["client_id"])
	set_settings(google_service_account_key=json.dumps(key))
	domain = f"{unique('initech')}.test"
	make_contact("Sam", [f"sam@{domain}"], make_customer(f"Initech {domain}"))
	gmail.add_message(sender=f"sam@{domain}", subject="Invoice question", date=datetime(2026, 11, 20, tzinfo=timezone.utc))
	account = company_account("Gmail", gmail.address)

	assert sync_account(account).get("Filed") == 1
	assert synced(account)[0].subject == "Invoice question"
	assert gmail.jwt_grants and gmail.jwt_grants[0]["sub"] == gmail.address
	assert not frappe.db.get_value("Email Sync Account", account, "connected_on")  # nobody signed in


def test_graph_lifecycle_notifications_keep_push_going(web, graph):
	"""reauthorizationRequired renews the subscription, subscriptionRemoved replaces it, missed queues a sync;
	each through the guest endpoint and a job, and only with the subscription's clientState."""
	from factories import run_worker_burst
	from frappe.utils.background_jobs import get_job

	from email_sync.sync import realtime
	from email_sync.sync.tasks import job_id

	set_settings(
		microsoft_client_id=graph.client_id, microsoft_client_secret=graph.client_secret,
		microsoft_tenant_id=graph.tenant_id, microsoft_app_credential="Client secret", microsoft_push=1,
	)  # fmt: skip
	account = company_account("Microsoft", graph.address)
	frappe.db.set_value("Email Sync Account", account, "frequency", "Real-time")
	frappe.db.commit()
	realtime.start_or_renew(frappe.get_doc("Email Sync Account", account))
	frappe.db.commit()
	first = frappe.db.get_value("Email Sync Account", account, "push_subscription_id")
	assert graph.subscriptions[first].lifecycle_url.endswith("/api/method/email_sync.push.microsoft_lifecycle")

	assert graph.lifecycle(first, "reauthorizationRequired", client_state="forged") == 202
	run_worker_burst("short")
	assert graph.subscriptions[first].needs_reauthorization  # a forged event changes nothing
	assert graph.lifecycle(first, "reauthorizationRequired") == 202
	run_worker_burst("short")
	assert not graph.subscriptions[first].needs_reauthorization  # renewed, so reauthorized

	assert graph.lifecycle(first, "subscriptionRemoved") == 202
	run_worker_burst("short")
	frappe.db.rollback()
	second = frappe.db.get_value("Email Sync Account", account, "push_subscription_id")
	assert second and second != first and second in graph.subscriptions

	assert get_job(job_id(account)) is None
	assert graph.lifecycle(second, "missed") == 202
	run_worker_burst("short")
	assert get_job(job_id(account)) is not None
	run_worker_burst("long")  # leave no job behind for other tests


def test_an_authenticated_gmail_push_needs_the_google_oidc_token(web, gmail):
	"""With a push audience set, a push must also carry Pub/Sub's OIDC token for it, from the right account."""
	import base64
	import json

	import requests
	from frappe.utils.background_jobs import get_job

	from email_sync.sync.tasks import job_id

	pusher = "gmail-push@acme-project.iam.gserviceaccount.com"
	push = f"{web}/api/method/email_sync.push.gmail"
	set_settings(google_push_audience=push, google_push_service_account=pusher)
	try:
		account = gmail_account(gmail)
		token = frappe.get_single("Email Sync Settings").get_password("push_token")
		data = base64.b64encode(json.dumps({"emailAddress": gmail.address, "historyId": 7}).encode()).decode()
		envelope = {"message": {"data": data, "messageId": "1"}, "subscription": "projects/p/subscriptions/s"}

		def post(authorization=None):
			headers = {"Authorization": authorization} if authorization else {}
			return requests.post(push, params={"token": token}, json=envelope, headers=headers).status_code

		assert post() == 403
		assert post("Bearer " + gmail.push_jwt(push, "someone@evil.example")) == 403
		assert post("Bearer " + gmail.push_jwt("https://elsewhere.example", pusher)) == 403
		assert get_job(job_id(account)) is None
		assert post("Bearer " + gmail.push_jwt(push, pusher)) == 204
		assert get_job(job_id(account)) is not None
		# Google's certificates were fetched for the first signed push and kept for the ones after (the site
		# process caches them for their Cache-Control max-age)
		assert post("Bearer " + gmail.push_jwt(push, pusher)) == 204
		assert gmail.certs_fetches == 1
	finally:
		set_settings(google_push_audience="", google_push_service_account="")
