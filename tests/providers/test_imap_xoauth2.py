"""IMAP with AUTHENTICATE XOAUTH2, end to end and without mocks.

A real Dovecot (dovecot.py, started with an oauth2 passdb) checks every XOAUTH2 token at a local introspection
endpoint (dovecot.IntrospectionServer), which asks the emulator that issued the token whether it is still good:
the Google token emulator (gmail_emulator.py, plain HTTP) or the Microsoft identity emulator (graph_emulator.py,
HTTPS with a throwaway CA, used through msal). Tokens are refreshed at the emulators' real token endpoints.

A token passes introspection when its issuer still honours it *and* it carries the IMAP scope, as with the
real servers: Gmail IMAP refuses gmail.readonly tokens, Outlook IMAP refuses Graph tokens.
"""

from __future__ import annotations

import email
import os
import time
from email.message import EmailMessage

import pytest
from dovecot import Dovecot, DovecotUnavailable, IntrospectionServer, Mailbox
from gmail_emulator import GMAIL_READONLY, GmailEmulator
from graph_emulator import DEFAULT_SCOPES, MAIL_READ, GraphEmulator

from email_sync.providers import get_provider
from email_sync.providers.base import (
	AccessRevoked,
	AccountConfig,
	AuthenticationFailed,
	MissingScopes,
	OAuthTokens,
	ProviderError,
)
from email_sync.providers.imap import IMAPProvider
from email_sync.providers.xoauth2 import (
	GOOGLE_IMAP_SCOPE,
	MICROSOFT_IMAP_SCOPE,
	access_token_for,
	sasl_xoauth2,
)

pytest_plugins = ["conftest_graph"]  # graph_certs: the throwaway CA of the Microsoft emulator


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def introspection():
	server = IntrospectionServer().start()
	yield server
	server.stop()


@pytest.fixture(scope="module")
def oauth_dovecot(introspection):
	"""A Dovecot taking passwords and XOAUTH2/OAUTHBEARER tokens (checked at `introspection`)."""
	try:
		server = Dovecot.start(oauth2_introspection_url=introspection.url)
	except DovecotUnavailable as e:
		if os.environ.get("EMAIL_SYNC_REQUIRE_DOVECOT") == "1":
			pytest.fail(f"Dovecot is required here: {e}")
		pytest.skip(f"Dovecot IMAP tests need Dovecot: {e}")
	yield server
	server.cleanup()


@pytest.fixture
def box(oauth_dovecot, introspection) -> Mailbox:
	"""A fresh user on the OAuth Dovecot with two messages in INBOX (put there with its password)."""
	introspection.tokens.clear()
	introspection.check = lambda token: None
	box = Mailbox(oauth_dovecot, oauth_dovecot.add_user())
	box.append("INBOX", [make_message(1, box.user.name), make_message(2, box.user.name)])
	return box


@pytest.fixture
def gmail(box, introspection):
	"""Google's token endpoint for the test user; Dovecot accepts its live https://mail.google.com/ tokens."""
	emulator = GmailEmulator(address=box.user.name).start()

	def check(token: str) -> str | None:
		with emulator.lock:
			info = emulator.access_tokens.get(token)
			good = (
				info is not None
				and info["expires"] > time.time()
				and GOOGLE_IMAP_SCOPE in info["scopes"]
				and not emulator.refresh_tokens[info["refresh"]]["revoked"]
			)
		return emulator.address if good else None

	introspection.check = check
	yield emulator
	emulator.stop()


@pytest.fixture
def graph(box, introspection, graph_certs):  # overrides conftest_graph's: the address is the test user's
	"""Microsoft's identity endpoints for the test user; Dovecot accepts its valid IMAP-scoped tokens."""
	emulator = GraphEmulator(graph_certs, address=box.user.name).start()

	def check(token: str) -> str | None:
		with emulator.lock:
			info = emulator.access_tokens.get(token)
			good = info is not None and info.valid and MICROSOFT_IMAP_SCOPE in info.scopes
		return emulator.address if good else None

	introspection.check = check
	yield emulator
	emulator.stop()


@pytest.fixture
def refreshed() -> list[OAuthTokens]:
	return []


def make_message(n: int, to: str) -> bytes:
	msg = EmailMessage()
	msg["From"] = "alice@example.org"
	msg["To"] = to
	msg["Subject"] = f"Message {n}"
	msg["Message-ID"] = f"<xoauth2-{n}@example.org>"
	msg["Date"] = "Mon, 06 May 2024 10:00:00 +0000"
	msg.set_content(f"Body of message {n}.\n")
	return msg.as_bytes()


def imap_config(box: Mailbox, oauth: OAuthTokens, **overrides) -> AccountConfig:
	values = {
		"provider": "IMAP",
		"address": box.user.name,
		"host": box.host,
		"port": box.port,
		"security": "None",
		"oauth": oauth,  # and no password: XOAUTH2
		"timeout": 10,
	}
	values.update(overrides)
	return AccountConfig(**values)


def gmail_config(box, gmail, refreshed, *, scopes=(GOOGLE_IMAP_SCOPE,), expires_in=3000.0) -> AccountConfig:
	issued = gmail.issue_tokens(scopes=scopes)
	oauth = OAuthTokens(
		client_id=gmail.client_id,
		client_secret=gmail.client_secret,
		refresh_token=issued["refresh_token"],
		access_token=issued["access_token"],
		expires_at=time.time() + expires_in,
		scopes=issued["scope"].split(),
	)
	return imap_config(box, oauth, auth_base=gmail.base, on_tokens_refreshed=refreshed.append)


def graph_config(box, graph, refreshed, *, scopes=(MICROSOFT_IMAP_SCOPE, *DEFAULT_SCOPES)) -> AccountConfig:
	oauth = OAuthTokens(
		client_id=graph.client_id,
		client_secret=graph.client_secret,
		refresh_token=graph.issue_refresh_token(scopes=scopes, tenant="organizations"),
		# What the Microsoft (Graph) provider leaves behind: a live Graph token, useless for IMAP.
		access_token=graph.issue_access_token(DEFAULT_SCOPES),
		expires_at=time.time() + 3000,
		tenant="organizations",
		scopes=list(DEFAULT_SCOPES),
	)
	return imap_config(box, oauth, auth_base=graph.auth_base, on_tokens_refreshed=refreshed.append)


def google_provider(cfg: AccountConfig) -> IMAPProvider:
	return IMAPProvider(cfg, oauth_issuer="Google")  # 127.0.0.1 is not imap.gmail.com: say who issued the tokens


def microsoft_provider(cfg: AccountConfig, graph: GraphEmulator) -> IMAPProvider:
	return IMAPProvider(cfg, oauth_issuer="Microsoft", verify=graph.certs.ca_file)


def subjects(provider: IMAPProvider) -> list[str]:
	return [email.message_from_bytes(m.raw)["Subject"] for b in provider.fetch(None) for m in b.messages]


def imap_token_requests(graph: GraphEmulator) -> list[dict]:
	return [r for r in graph.token_requests if r["grant_type"] == "refresh_token"]


# -- Google ----------------------------------------------------------------------------------------


def test_gmail_token_logs_in_over_xoauth2_and_fetches_mail(box, gmail, introspection, refreshed):
	cfg = gmail_config(box, gmail, refreshed)
	stored = cfg.oauth.access_token
	with google_provider(cfg) as provider:
		assert subjects(provider) == ["Message 1", "Message 2"]
	assert introspection.tokens == [stored]  # the stored token, as is: nothing refreshed
	assert gmail.refreshes == 0 and refreshed == []
	assert "method=XOAUTH2" in (box.server.root / "dovecot.log").read_text()


def test_expiring_gmail_token_is_refreshed_at_googles_token_endpoint(box, gmail, introspection, refreshed):
	cfg = gmail_config(box, gmail, refreshed, expires_in=30)  # inside the 60 s margin
	old = cfg.oauth.access_token
	with google_provider(cfg) as provider:
		assert subjects(provider) == ["Message 1", "Message 2"]
	assert gmail.refreshes == 1
	assert len(refreshed) == 1
	new = refreshed[0]
	assert new.access_token not in ("", old) and new.access_token == cfg.oauth.access_token
	assert new.refresh_token == cfg.oauth.refresh_token  # kept: Google did not rotate it
	assert new.expires_at > time.time() + 3000
	assert new.scopes == [GOOGLE_IMAP_SCOPE]
	assert introspection.tokens == [new.access_token]  # the expiring token was never sent


@pytest.mark.parametrize("stored_looks_valid", [False, True], ids=["stored-token-expired", "stored-token-refused"])
def test_revoked_google_grant_is_access_revoked(box, gmail, introspection, refreshed, stored_looks_valid):
	cfg = gmail_config(box, gmail, refreshed, expires_in=3000 if stored_looks_valid else 0.5)
	gmail.revoke_grant()
	with pytest.raises(AccessRevoked) as info:
		google_provider(cfg).connect()
	assert "Google no longer accepts" in info.value.message and "invalid_grant" in info.value.message
	assert "Reconnect" in info.value.fix
	# refused by the server first (one attempt) or never sent at all (it had expired)
	assert len(introspection.tokens) == (1 if stored_looks_valid else 0)
	assert refreshed == []


def test_token_refused_by_the_server_is_refreshed_once_and_retried(box, gmail, introspection, refreshed):
	cfg = gmail_config(box, gmail, refreshed)
	old = cfg.oauth.access_token
	gmail.expire_access_tokens()  # Google ended it early; the stored expiry still says 50 minutes
	with google_provider(cfg) as provider:
		assert subjects(provider) == ["Message 1", "Message 2"]  # the same connection, after the refused try
	assert gmail.refreshes == 1 and len(refreshed) == 1
	assert introspection.tokens == [old, refreshed[0].access_token]


def test_token_the_server_keeps_refusing_is_a_clear_error(box, gmail, introspection, refreshed):
	cfg = gmail_config(box, gmail, refreshed)
	introspection.check = lambda token: None  # e.g. IMAP disabled for the mailbox: no token is good enough
	with pytest.raises(AuthenticationFailed) as info:
		google_provider(cfg).connect()
	message = info.value.message
	assert message.startswith("The mailbox refused the OAuth token: 127.0.0.1 did not accept the Google sign-in")
	assert box.user.name in message
	assert "status 401" in message  # from Dovecot's XOAUTH2 error challenge
	assert "Reconnect" in info.value.fix
	assert gmail.refreshes == 1 and len(refreshed) == 1  # exactly one refresh...
	assert len(introspection.tokens) == 2  # ...and one retry


def test_gmail_readonly_grant_is_missing_the_imap_scope(box, gmail, introspection, refreshed):
	cfg = gmail_config(box, gmail, refreshed, scopes=(GMAIL_READONLY,))  # what the Gmail API provider asks for
	with pytest.raises(MissingScopes) as info:
		google_provider(cfg).connect()
	assert GOOGLE_IMAP_SCOPE in info.value.message
	assert "Reconnect" in info.value.fix
	assert gmail.refreshes == 1 and len(introspection.tokens) == 2


def test_test_connection_reports_the_oauth_failure(box, gmail, refreshed):
	cfg = gmail_config(box, gmail, refreshed)
	gmail.revoke_grant()
	result = get_provider(cfg, oauth_issuer="Google").test()
	assert not result.ok
	assert "Google no longer accepts" in result.message and "Reconnect" in result.message


# -- Microsoft -------------------------------------------------------------------------------------


def test_microsoft_refresh_token_logs_in_over_xoauth2(box, graph, introspection, refreshed):
	cfg = graph_config(box, graph, refreshed)
	graph_token, old_refresh = cfg.oauth.access_token, cfg.oauth.refresh_token
	with microsoft_provider(cfg, graph) as provider:
		assert subjects(provider) == ["Message 1", "Message 2"]
	# The stored Graph token is for another resource: redeemed the refresh token for an IMAP token instead.
	assert graph_token not in introspection.tokens
	requests = imap_token_requests(graph)
	assert len(requests) == 1 and requests[0]["tenant"] == "organizations"
	assert MICROSOFT_IMAP_SCOPE in requests[0]["scope"].split()
	assert MAIL_READ not in requests[0]["scope"].split()
	assert len(refreshed) == 1
	assert refreshed[0].access_token == cfg.oauth.access_token == introspection.tokens[0]
	assert refreshed[0].refresh_token not in ("", old_refresh)  # Entra rotated it; stored via the callback
	assert MICROSOFT_IMAP_SCOPE in cfg.oauth.scopes

	# The next connection reuses the IMAP token: no trip to the token endpoint.
	introspection.tokens.clear()
	with microsoft_provider(cfg, graph) as provider:
		assert provider.list_folders()
	assert introspection.tokens == [refreshed[0].access_token]
	assert len(imap_token_requests(graph)) == 1 and len(refreshed) == 1


def test_refused_microsoft_token_is_refreshed_once_and_retried(box, graph, introspection, refreshed):
	cfg = graph_config(box, graph, refreshed)
	access_token_for(cfg, issuer="Microsoft", verify=graph.certs.ca_file)  # an IMAP token is stored now
	stored = cfg.oauth.access_token
	refreshed.clear()
	graph.expire_access_tokens()
	with microsoft_provider(cfg, graph) as provider:
		assert subjects(provider) == ["Message 1", "Message 2"]
	assert len(imap_token_requests(graph)) == 2 and len(refreshed) == 1
	assert introspection.tokens == [stored, refreshed[0].access_token]


def test_revoked_microsoft_grant_is_access_revoked(box, graph, introspection, refreshed):
	cfg = graph_config(box, graph, refreshed)
	graph.revoke_grants()
	with pytest.raises(AccessRevoked) as info:
		microsoft_provider(cfg, graph).connect()
	assert "AADSTS50173" in info.value.message
	assert "Reconnect" in info.value.fix
	assert refreshed == [] and introspection.tokens == []


def test_microsoft_grant_without_imap_consent_is_missing_scopes(box, graph, introspection, refreshed):
	cfg = graph_config(box, graph, refreshed, scopes=DEFAULT_SCOPES)  # consented to Graph only
	with pytest.raises(MissingScopes) as info:
		microsoft_provider(cfg, graph).connect()
	assert "not consented" in info.value.message
	assert "IMAP.AccessAsUser.All" in info.value.fix and "Reconnect" in info.value.fix
	assert introspection.tokens == []


def test_microsoft_tls_is_verified_against_the_given_ca(box, graph, refreshed):
	cfg = graph_config(box, graph, refreshed)
	with pytest.raises(ProviderError) as info:
		IMAPProvider(cfg, oauth_issuer="Microsoft").connect()  # system CAs only: the emulator is not trusted
	assert "not trusted" in info.value.message


# -- login choice and plumbing ---------------------------------------------------------------------


def test_password_wins_when_both_are_set(box, gmail, introspection, refreshed):
	cfg = gmail_config(box, gmail, refreshed)
	cfg.password = box.user.password
	with google_provider(cfg) as provider:
		assert provider.list_folders()
	assert introspection.tokens == []


def test_server_without_xoauth2_is_a_clear_error(dovecot_server):
	user = dovecot_server.add_user()  # the password-only Dovecot of the other IMAP tests
	cfg = AccountConfig(
		"IMAP",
		user.name,
		host=dovecot_server.host,
		port=dovecot_server.port,
		security="None",
		oauth=OAuthTokens(client_id="x.apps.googleusercontent.com", access_token="t", refresh_token="r"),
	)
	with pytest.raises(AuthenticationFailed) as info:
		IMAPProvider(cfg).connect()  # the issuer comes from the client id here
	assert info.value.message == "127.0.0.1 does not offer OAuth sign-in (XOAUTH2)."


def test_sasl_xoauth2_message():
	assert sasl_xoauth2("me@example.com", "ya29.abc") == b"user=me@example.com\x01auth=Bearer ya29.abc\x01\x01"


@pytest.mark.parametrize(
	("host", "oauth", "issuer"),
	[
		("imap.gmail.com", OAuthTokens(client_id="c"), "Google"),
		("IMAP.GMAIL.COM", OAuthTokens(client_id="c", tenant="common"), "Google"),  # the host decides
		("outlook.office365.com", OAuthTokens(client_id="c"), "Microsoft"),
		("imap-mail.outlook.com", OAuthTokens(client_id="c"), "Microsoft"),
		("imap.example.com", OAuthTokens(client_id="1-ab.apps.googleusercontent.com"), "Google"),
		("imap.example.com", OAuthTokens(client_id="c", tenant="organizations"), "Microsoft"),
	],
)
def test_issuer_is_inferred_from_the_host(host, oauth, issuer):
	provider = IMAPProvider(AccountConfig("IMAP", "me@example.com", host=host, oauth=oauth))
	assert provider._oauth_issuer() == issuer
	assert IMAPProvider(provider.config, oauth_issuer=issuer.lower())._oauth_issuer() == issuer


def test_unknown_issuer_is_a_clear_error():
	cfg = AccountConfig("IMAP", "me@example.com", host="imap.example.com", oauth=OAuthTokens(client_id="c"))
	with pytest.raises(ProviderError) as info:
		IMAPProvider(cfg)._oauth_issuer()
	assert info.value.code == "oauth_issuer_unknown"
	assert "imap.gmail.com" in info.value.fix
	with pytest.raises(ProviderError) as info:
		IMAPProvider(cfg, oauth_issuer="Yahoo")._oauth_issuer()
	assert info.value.code == "oauth_issuer_unknown"
