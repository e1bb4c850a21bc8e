"""A Gmail account read over IMAP with XOAUTH2 (its own OAuth tokens), end to end on the site."""

import time

import frappe
import pytest
from factories import deliver, mail, make_contact, make_customer, synced, unique
from frappe.installer import update_site_config

from email_sync.sync.context import store_tokens
from email_sync.sync.runner import sync_account
from email_sync.providers.xoauth2 import GOOGLE_IMAP_SCOPE

from dovecot import Dovecot, DovecotUnavailable, IntrospectionServer  # noqa: E402  (tests/providers on sys.path)
from gmail_emulator import GmailEmulator  # noqa: E402


@pytest.fixture
def oauth_imap():
	introspection = IntrospectionServer().start()
	try:
		server = Dovecot.start(oauth2_introspection_url=introspection.url)
	except DovecotUnavailable as e:
		introspection.stop()
		pytest.skip(str(e))
	yield server, introspection
	server.stop()
	server.cleanup()
	introspection.stop()


def test_gmail_account_over_imap_xoauth2_files_mail_and_refreshes_its_token(oauth_imap):
	server, introspection = oauth_imap
	user = server.add_user(name=f"{unique('gx')}@mail.example")
	google = GmailEmulator(address=user.name).start()
	try:

		def check(token):
			with google.lock:
				info = google.access_tokens.get(token)
				good = info is not None and info["expires"] > time.time() and GOOGLE_IMAP_SCOPE in info["scopes"]
			return google.address if good else None

		introspection.check = check
		update_site_config("email_sync_endpoints", {"google_auth": google.base, "google_api": google.url})
		frappe.local.conf["email_sync_endpoints"] = {"google_auth": google.base, "google_api": google.url}
		settings = frappe.get_single("Email Sync Settings")
		settings.google_client_id, settings.google_client_secret = google.client_id, google.client_secret
		settings.save()

		domain = f"{unique('hooli')}.test"
		make_contact("Gav", [f"gav@{domain}"], make_customer(f"Hooli {domain}"))
		deliver(server, user, [mail(f"gav@{domain}", user.name, subject="Over IMAP")])
		account = frappe.get_doc({
			"doctype": "Email Sync Account", "provider": "Gmail", "mail_access": "IMAP (XOAUTH2)",
			"email_address": user.name, "imap_host": server.host, "imap_port": server.port, "imap_security": "None",
			"status": "Active", "auth_type": "OAuth", "sync_start_date": "2000-01-01",
		}).insert().name
		issued = google.issue_tokens(scopes=(GOOGLE_IMAP_SCOPE,))
		from email_sync.providers import OAuthTokens

		# an access token that has already lapsed: the sync must refresh it at Google's token endpoint
		store_tokens(account, OAuthTokens(google.client_id, google.client_secret, issued["refresh_token"], "stale", 1.0))
		frappe.db.commit()

		counts = sync_account(account)
		assert counts.get("Filed") == 1, frappe.get_last_doc("Email Sync Log", filters={"account": account}).as_dict()
		assert synced(account)[0].subject == "Over IMAP"
		frappe.db.rollback()
		doc = frappe.get_doc("Email Sync Account", account)
		assert doc.get_password("access_token") not in ("stale", None) and doc.access_token_expires_at > time.time()
	finally:
		google.stop()
		update_site_config("email_sync_endpoints", "None")
		frappe.local.conf.pop("email_sync_endpoints", None)
