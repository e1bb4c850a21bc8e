"""A Microsoft 365 shared mailbox read through a person's own sign-in, end to end on the real site.

Ana clicks Connect on an account for support@ (Mailbox *Shared, through my sign-in*) and signs in as herself
at the Graph emulator of tier 1; the shared mailbox's mail is filed on its Customer, and Test Connection says
who signed in and whether they may read the mailbox.
"""

import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import frappe
import pytest
import requests
from conftest import set_site_config
from factories import make_contact, make_customer, site_user, synced, unique

from email_sync.sync import realtime
from email_sync.sync.connect import CALLBACK
from email_sync.sync.runner import sync_account

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "providers"))
from graph_emulator import GraphEmulator, make_certificates

KIND = "Shared, through my sign-in"


@pytest.fixture(scope="module")
def browser(web):
	"""A logged-in desk session of a System Manager, as a browser would hold it."""
	password = "Es-" + unique("pw") + "-9Qx"
	email = site_user("admin", "System Manager", password=password)
	session = requests.Session()
	assert session.post(f"{web}/api/method/login", data={"usr": email, "pwd": password}).ok
	session.user = email
	return session


@pytest.fixture
def graph(tmp_path):
	"""support@'s mailbox; Ana, who signs in, was given access to it unless a test takes it away."""
	emulator = GraphEmulator(make_certificates(tmp_path), address=f"{unique('support')}@contoso.example").start()
	emulator.sign_in_as = f"{unique('ana')}@contoso.example"
	emulator.shared_access.add(emulator.sign_in_as)
	settings = frappe.get_single("Email Sync Settings")
	settings.microsoft_client_id, settings.microsoft_client_secret = emulator.client_id, emulator.client_secret
	settings.microsoft_push = 1
	settings.save()
	set_site_config(
		"email_sync_endpoints",
		{"microsoft_auth": emulator.auth_base, "microsoft_api": emulator.api_base, "ca_bundle": emulator.certs.ca_file},
	)
	frappe.db.commit()
	yield emulator
	emulator.stop()


def new_account(address: str) -> str:
	name = frappe.get_doc(
		{"doctype": "Email Sync Account", "provider": "Microsoft", "email_address": address, "mailbox_kind": KIND,
		 "microsoft_tenant": "organizations", "status": "Draft", "frequency": "Real-time",
		 "sync_start_date": "2000-01-01"}
	).insert().name
	frappe.db.commit()
	return name


def sign_in(web, browser, graph, account):
	"""Connect, consent at the emulator as Ana, and come back to the site's callback; the callback's answer."""
	r = browser.post(f"{web}/api/method/email_sync.api.connect", data={"account": account})
	assert r.ok, r.text
	url = r.json()["message"]["url"]
	query = parse_qs(urlsplit(url).query)
	assert "Mail.Read.Shared" in query["scope"][0]
	assert graph.address not in url  # Ana signs in as herself: no hint of the shared address
	consent = requests.get(url, verify=graph.certs.ca_file, allow_redirects=False)
	code = parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0]
	return browser.get(f"{web}{CALLBACK}", params={"state": query["state"][0], "code": code}, allow_redirects=False)


def run_test_connection(web, browser, account) -> dict:
	r = browser.post(f"{web}/api/method/email_sync.api.test_connection", data={"account": account, "preview": 0})
	assert r.ok, r.text
	return r.json()["message"]


def account_doc(name):
	frappe.db.rollback()
	return frappe.get_doc("Email Sync Account", name)


def test_a_person_connects_a_shared_mailbox_and_its_mail_is_filed(web, browser, graph):
	ana = graph.sign_in_as
	domain = f"{unique('fabrikam')}.test"
	contact = make_contact("Mia", [f"mia@{domain}"], make_customer(f"Fabrikam {domain}"))
	account = new_account(graph.address)
	graph.add_message("inbox", "2026-11-20T09:00:00Z", mime=rfc822(f"mia@{domain}", graph.address, "Quote for support"))

	back = sign_in(web, browser, graph, account)
	assert back.status_code in (301, 302, 303), back.text
	assert "connect_error" not in back.headers["Location"]  # signed in as Ana, not as support@: accepted
	doc = account_doc(account)
	assert (doc.status, doc.connected_by, doc.email_address) == ("Active", browser.user, graph.address)
	assert doc.get_password("refresh_token")

	assert sync_account(account)["Filed"] == 1
	[row] = synced(account)
	assert (row.subject, row.status) == ("Quote for support", "Filed")
	assert frappe.db.exists("Communication Link", {"parent": row.communication, "link_name": contact})
	assert any(target.startswith(f"/v1.0/users/{graph.address}/") for _, target in graph.requests)

	answer = run_test_connection(web, browser, account)
	assert answer["ok"], answer
	assert answer["message"].startswith(f"Signed in as {ana}, who can read {graph.address}")
	assert "Mail.Read.Shared" in answer["message"]

	# Real-time is polling for this kind: Graph has no subscriptions for mail read through Mail.Read.Shared.
	assert not realtime.wants_push(account_doc(account))

	graph.shared_access.discard(ana)  # the Exchange admin takes Ana's access away
	answer = run_test_connection(web, browser, account)
	assert not answer["ok"] and answer["code"] == "shared_mailbox_denied"
	assert f"Signed in as {ana}, who may not read the shared mailbox {graph.address}" in answer["message"]
	assert f"give {ana} Full Access" in answer["message"] and "Shared or delegated" in answer["message"]
	assert graph.client_secret not in answer["message"]


def test_connect_is_refused_for_a_person_without_access(web, browser, graph):
	ana = graph.sign_in_as
	graph.shared_access.clear()
	account = new_account(graph.address)
	back = sign_in(web, browser, graph, account)
	assert back.status_code in (301, 302, 303) and back.headers["Location"].endswith("?connect_error=1")
	reason = browser.get(f"{web}/api/method/email_sync.api.connect_error").json()["message"]
	assert f"Signed in as {ana}, who may not read the shared mailbox {graph.address}" in reason
	assert "Full Access" in reason
	doc = account_doc(account)
	assert doc.status == "Draft" and not doc.connected_on
	assert not doc.get_password("refresh_token", raise_exception=False)  # no tokens kept


def test_gmail_has_no_shared_mailbox_through_a_sign_in():
	with pytest.raises(frappe.ValidationError, match="Gmail cannot read another person's mailbox"):
		frappe.get_doc(
			{"doctype": "Email Sync Account", "provider": "Gmail", "email_address": f"{unique('s')}@example.com",
			 "mailbox_kind": KIND, "status": "Draft"}
		).insert()
	frappe.db.rollback()


def rfc822(sender: str, to: str, subject: str) -> bytes:
	return (
		f"From: {sender}\r\nTo: {to}\r\nSubject: {subject}\r\nMessage-ID: <{unique('m')}@test>\r\n"
		f"Date: Fri, 20 Nov 2026 09:00:00 +0000\r\n\r\nbody\r\n"
	).encode()
