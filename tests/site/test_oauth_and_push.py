"""Gmail and Microsoft end to end on the real site, against the local emulators of tier 1.

The site is served over real HTTP on 127.0.0.1 by a subprocess; a logged-in browser session (requests)
clicks Connect, the emulator's consent redirects back to the site's callback, and the emulators' pushes
reach the site's guest endpoints. A burst worker then runs the job a push enqueued.
"""

import base64
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import frappe
import pytest
import requests
from factories import make_contact, make_customer, synced, site_user, unique, wait_for
from conftest import set_site_config
from frappe.utils.background_jobs import get_job

from email_sync.sync import realtime
from email_sync.sync.connect import CALLBACK
from email_sync.sync.runner import sync_account
from email_sync.sync.tasks import job_id

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "providers"))
from gmail_emulator import GmailEmulator  # noqa: E402
from graph_emulator import GraphEmulator, make_certificates  # noqa: E402

@pytest.fixture(scope="module")
def browser(web):
	"""A logged-in desk session of a System Manager, as a browser would hold it."""
	password = "Es-" + unique("pw") + "-9Qx"
	email = site_user("admin", "System Manager", password=password)
	session = requests.Session()
	assert session.post(f"{web}/api/method/login", data={"usr": email, "pwd": password}).ok
	session.user = email
	return session


def connect_url(web, browser, account) -> str:
	r = browser.post(f"{web}/api/method/email_sync.api.connect", data={"account": account})
	assert r.ok, r.text
	return r.json()["message"]["url"]


def callback(web, browser, **params):
	return browser.get(f"{web}{CALLBACK}", params=params, allow_redirects=False)


def account_doc(name):
	frappe.db.rollback()
	return frappe.get_doc("Email Sync Account", name)


def test_microsoft_connect_sync_and_push(web, browser, tmp_path):
	graph = GraphEmulator(make_certificates(tmp_path), address=f"{unique('ms')}@contoso.example").start()
	try:
		settings = frappe.get_single("Email Sync Settings")
		settings.microsoft_client_id, settings.microsoft_client_secret = graph.client_id, graph.client_secret
		settings.microsoft_push = 1
		settings.save()
		set_site_config(
			"email_sync_endpoints",
			{"microsoft_auth": graph.auth_base, "microsoft_api": graph.api_base, "ca_bundle": graph.certs.ca_file},
		)
		domain = f"{unique('fabrikam')}.test"
		contact = make_contact("Mia", [f"mia@{domain}"], make_customer(f"Fabrikam {domain}"))
		account = frappe.get_doc(
			{"doctype": "Email Sync Account", "provider": "Microsoft", "email_address": graph.address,
			 "microsoft_tenant": "organizations", "status": "Draft", "frequency": "Real-time",
			 "sync_start_date": "2000-01-01"}
		).insert().name
		frappe.db.commit()
		graph.add_message("inbox", "2026-11-20T09:00:00Z", mime=rfc822(f"mia@{domain}", graph.address, "Quote please"))

		url = connect_url(web, browser, account)
		assert url.startswith(graph.auth_base) and "state=" in url
		# A forged or replayed state is refused and changes nothing
		assert callback(web, browser, state="forged", code="x").status_code == 403
		assert account_doc(account).status == "Draft"

		state = parse_qs(urlsplit(url).query)["state"][0]
		consent = requests.get(url, verify=graph.certs.ca_file, allow_redirects=False)  # the user consents
		code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
		r = callback(web, browser, state=state, code=code)
		assert graph.pkce_checked == 1  # the code was redeemed with the verifier of its challenge
		assert r.status_code in (301, 302, 303) and r.headers["Location"].endswith(f"/app/email-sync-account/{account}")
		assert callback(web, browser, state=state, code=code).status_code == 403  # single use

		doc = account_doc(account)
		assert (doc.status, doc.auth_type, doc.connected_by) == ("Active", "OAuth", browser.user)
		assert doc.get_password("refresh_token")

		assert sync_account(account)["Filed"] == 1
		assert synced(account)[0].subject == "Quote please"

		realtime.start_or_renew(account_doc(account))  # Graph validates the notification URL against the site
		frappe.db.commit()
		doc = account_doc(account)
		assert doc.push_subscription_id and doc.push_expires_on and not doc.last_error

		new = graph.add_message("inbox", datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), mime=rfc822(f"mia@{domain}", graph.address, "Urgent: order"))
		# acknowledged (Graph would retry anything else for hours) but nothing is enqueued for a forged one
		assert graph.notify(doc.push_subscription_id, new, client_state="forged") == 202
		assert get_job(job_id(account)) is None
		started = time.monotonic()
		assert graph.notify(doc.push_subscription_id, new) == 202
		assert get_job(job_id(account)) is not None
		filed = wait_for(lambda: {r.subject: r for r in synced(account)} if len(synced(account)) > 1 else None) or {}
		assert "Urgent: order" in filed
		assert filed["Urgent: order"].status == "Filed", "the push led to the message being filed"
		assert time.monotonic() - started < 30
		assert frappe.db.exists("Communication Link", {"parent": filed["Urgent: order"].communication, "link_name": contact})
	finally:
		graph.stop()


def test_gmail_connect_push_and_revoked_grant(web, browser):
	gmail = GmailEmulator(address=f"{unique('gm')}@gmail-workspace.example").start()
	try:
		settings = frappe.get_single("Email Sync Settings")
		settings.google_client_id, settings.google_client_secret = gmail.client_id, gmail.client_secret
		settings.save()
		push_token = settings.get_password("push_token")
		set_site_config("email_sync_endpoints", {"google_auth": gmail.base, "google_api": gmail.url})
		domain = f"{unique('initech')}.test"
		make_contact("Pat", [f"pat@{domain}"], make_customer(f"Initech {domain}"))
		account = frappe.get_doc(
			{"doctype": "Email Sync Account", "provider": "Gmail", "email_address": gmail.address, "status": "Draft",
			 "sync_start_date": "2000-01-01"}
		).insert().name
		frappe.db.commit()
		gmail.add_message(sender=f"pat@{domain}", subject="Hello from Pat", date=datetime(2026, 11, 20, tzinfo=timezone.utc))

		url = connect_url(web, browser, account)  # google-auth-oauthlib's Flow: PKCE S256 and the site's state
		query = parse_qs(urlsplit(url).query)
		assert query["code_challenge_method"] == ["S256"] and query["code_challenge"] and query["state"]
		consent = requests.get(url, allow_redirects=False)  # the user consents
		assert consent.status_code == 302
		back = browser.get(consent.headers["Location"], allow_redirects=False)
		assert back.status_code in (301, 302, 303) and "connect_error" not in back.headers["Location"]
		assert account_doc(account).status == "Active"
		assert account_doc(account).activated_on  # mail older than this is history (see test_history.py)
		assert gmail.pkce_checked == 1  # the code was redeemed with the verifier of its challenge
		assert sync_account(account)["Filed"] == 1

		gmail.add_message(sender=f"pat@{domain}", subject="Second from Pat")
		envelope = {"message": {"data": base64.b64encode(json.dumps(
			{"emailAddress": gmail.address, "historyId": 99}).encode()).decode(), "messageId": "1"}, "subscription": "s"}
		push = f"{web}/api/method/email_sync.push.gmail"
		assert requests.post(push, params={"token": "wrong"}, json=envelope).status_code == 403
		assert get_job(job_id(account)) is None
		assert requests.post(push, params={"token": push_token}, json=envelope).status_code == 204
		assert wait_for(lambda: "Second from Pat" in {r.subject for r in synced(account)})

		# A message Gmail will not hand out is one Error row while the rest is filed; Retry (over HTTP, as the
		# form's button) files it once Gmail hands it out.
		bad = gmail.add_message(sender=f"pat@{domain}", subject="Signed quote")
		gmail.add_message(sender=f"pat@{domain}", subject="Thanks")
		gmail.poison(bad, 400, "failedPrecondition", "Precondition check failed.")
		counts = sync_account(account)
		assert counts["Filed"] == 1 and counts["Error"] == 1
		[error] = synced(account, status="Error")
		assert error.decision_rule == "fetch-error:message_unavailable" and "Precondition" in error.reason
		retry = f"{web}/api/method/email_sync.email_sync.doctype.synced_email.synced_email.retry_download"
		del gmail.poisoned[bad]
		answer = browser.post(retry, data={"names": json.dumps([error.name])})
		assert answer.ok, answer.text
		[result] = answer.json()["message"]
		assert result["status"] == "Filed"
		frappe.db.rollback()
		assert not frappe.db.exists("Synced Email", error.name)
		assert frappe.db.get_value("Synced Email", result["synced_email"], "subject") == "Signed quote"

		gmail.revoke_grant()
		gmail.expire_access_tokens()
		sync_account(account)
		doc = account_doc(account)
		assert doc.last_error_code == "access_revoked" and "Reconnect" in doc.last_error_fix
	finally:
		gmail.stop()


def rfc822(sender: str, to: str, subject: str) -> bytes:
	return (
		f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{unique('m')}@test>\r\n"
		f"Date: Fri, 20 Nov 2026 09:00:00 +0000\r\n\r\nbody\r\n"
	).encode()


def test_connecting_an_account_saved_without_a_start_date_starts_at_today_not_at_all_mail(web, browser):
	gmail = GmailEmulator(address=f"{unique('gm')}@gmail-workspace.example").start()
	try:
		settings = frappe.get_single("Email Sync Settings")
		settings.google_client_id, settings.google_client_secret = gmail.client_id, gmail.client_secret
		settings.save()
		set_site_config("email_sync_endpoints", {"google_auth": gmail.base, "google_api": gmail.url})
		account = frappe.get_doc(
			{"doctype": "Email Sync Account", "provider": "Gmail", "email_address": gmail.address, "status": "Draft"}
		).insert().name
		frappe.db.set_value("Email Sync Account", account, "sync_start_date", None)  # saved before the form showed it
		frappe.db.commit()
		gmail.add_message(sender="old@example.org", subject="Years old", date=datetime(2019, 5, 1, tzinfo=timezone.utc))

		consent = requests.get(connect_url(web, browser, account), allow_redirects=False)
		assert browser.get(consent.headers["Location"], allow_redirects=False).status_code in (301, 302, 303)
		doc = account_doc(account)
		assert doc.status == "Active" and str(doc.sync_start_date) == frappe.utils.today()
		assert sync_account(account)["fetched"] == 0  # the 2019 mail is not read by the sync
	finally:
		gmail.stop()
