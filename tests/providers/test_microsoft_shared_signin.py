"""A Microsoft 365 shared mailbox read through a person's own sign-in (delegated Mail.Read.Shared).

Ana signs in as herself; the account is for support@, a shared mailbox the Exchange admin gave her access to.
The real msal refreshes Ana's token against the emulator, and every mailbox call goes to /users/support@...;
the emulator refuses it (403 ErrorAccessDenied, as Graph does) when her token lacks Mail.Read.Shared or when
she was given no access to that mailbox.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest
import requests
from graph_emulator import DEFAULT_SCOPES, MAIL_READ_SHARED, GraphEmulator

from email_sync.providers.base import AccountConfig, MissingScopes, OAuthTokens
from email_sync.providers.microsoft import MicrosoftProvider, PushUnavailable, SharedMailboxDenied

pytest_plugins = ["conftest_graph"]

SHARED = "support@contoso.example"
ANA = "ana@contoso.example"
NOW = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)
SHARED_SCOPES = (*DEFAULT_SCOPES, MAIL_READ_SHARED)


@pytest.fixture
def shared(graph_certs):
	"""The emulator serving the shared mailbox support@; Ana is a delegate who signs in as herself."""
	emulator = GraphEmulator(graph_certs, address=SHARED).start()
	yield emulator
	emulator.stop()
	assert not emulator.missing_immutable_prefer


def ana_config(emulator, scopes=SHARED_SCOPES, **overrides) -> AccountConfig:
	oauth = OAuthTokens(
		client_id=emulator.client_id,
		client_secret=emulator.client_secret,
		refresh_token=emulator.issue_refresh_token(scopes, tenant="organizations", user=ANA),
		tenant="organizations",
	)
	values = {"provider": "Microsoft", "address": SHARED, "api_base": emulator.api_base, "timeout": 10.0}
	values.update(overrides)
	return AccountConfig(**values, oauth=oauth, through_sign_in=True, auth_base=emulator.auth_base)


def provider(emulator, config=None) -> MicrosoftProvider:
	return MicrosoftProvider(
		config or ana_config(emulator), verify=emulator.certs.ca_file, backoff=0.01, sleep=lambda s: None
	)


def paths(emulator) -> list[str]:
	return [urlsplit(target).path for _, target in emulator.requests]


def secrets_of(config: AccountConfig, emulator) -> list[str]:
	return [config.oauth.refresh_token, config.oauth.access_token, emulator.client_secret] + [
		t for t in emulator.access_tokens
	]


def test_the_shared_mailbox_syncs_with_the_persons_token(shared):
	shared.shared_access.add(ANA)
	first = shared.add_message("inbox", NOW - dt.timedelta(days=2))
	sent = shared.add_message("sentitems", NOW - dt.timedelta(days=1))
	config = ana_config(shared, direction="Bidirectional")
	with provider(shared, config) as p:
		batches = list(p.fetch(None))
		assert (p.signed_in_as, p.mailbox_address) == (ANA, SHARED)
	assert [m.provider_id for b in batches for m in b.messages] == [first, sent]
	assert all(m.raw.startswith(b"From: Customer") for b in batches for m in b.messages)
	# Ana's own refresh token, asking for Mail.Read.Shared; never a client-credentials (app-only) token.
	assert {r["grant_type"] for r in shared.token_requests} == {"refresh_token"}
	assert all("Mail.Read.Shared" in r["scope"] for r in shared.token_requests)
	# Only who signed in is read from /me; the mailbox is read under /users/{shared address}.
	mailbox_calls = [p for p in paths(shared) if p != "/v1.0/me"]
	assert mailbox_calls and all(p.startswith(f"/v1.0/users/{SHARED}/") for p in mailbox_calls), paths(shared)
	cursor = batches[-1].cursor
	assert all(f"/users/{SHARED}/" in s["delta_link"] for s in cursor["folders"].values())

	new = shared.add_message("inbox", NOW)
	with provider(shared, config) as p:
		assert [m.provider_id for b in p.fetch(cursor) for m in b.messages] == [new]
		again = p.fetch_one(first)  # Retry on an Error row fetches the same message again
		assert again is not None and again.provider_id == first and again.raw
		ranged = [m.provider_id for b in p.fetch_range(NOW.date() - dt.timedelta(days=3), NOW.date()) for m in b.messages]
		assert ranged == [first, sent]  # received in [3 days ago, today), in the folders the account reads
	result = provider(shared, config).test()
	assert result.ok, result.message
	assert result.message.startswith(f"Signed in as {ANA}, who can read {SHARED}")


def test_refused_when_the_person_has_no_access_to_the_shared_mailbox(shared):
	shared.add_message("inbox", NOW)
	config = ana_config(shared)
	with pytest.raises(SharedMailboxDenied) as caught:
		provider(shared, config).connect()
	error = caught.value
	assert error.code == "shared_mailbox_denied"
	assert f"Signed in as {ANA}, who may not read the shared mailbox {SHARED}" in error.message
	assert "ErrorAccessDenied" in error.message and "HTTP 403" in error.message
	assert f"give {ANA} Full Access" in error.fix and "Shared or delegated" in error.fix
	# The refresh that rules out a missing Mail.Read.Shared went through: the denial is about access.
	assert [r["grant_type"] for r in shared.token_requests] == ["refresh_token", "refresh_token"]
	text = f"{error.message} {error.fix}"
	assert not [s for s in secrets_of(config, shared) if s and s in text]

	result = provider(shared, ana_config(shared)).test()
	assert not result.ok and result.code == "shared_mailbox_denied"
	assert f"Signed in as {ANA}, who may not read" in result.message and "Full Access" in result.message

	# Access given in Exchange admin: the same sign-in now works, no reconnect needed.
	shared.shared_access.add(ANA)
	assert provider(shared, ana_config(shared)).test().ok


@pytest.mark.parametrize("stored", ["refresh token only", "an access token as well"])
def test_refused_when_the_sign_in_lacks_mail_read_shared(shared, stored):
	shared.shared_access.add(ANA)  # she has access, but signed in before Mail.Read.Shared was asked for
	config = ana_config(shared, scopes=DEFAULT_SCOPES)
	if stored == "an access token as well":  # still valid: Graph itself refuses it (403), then the refresh
		config.oauth.access_token = shared.issue_access_token(DEFAULT_SCOPES, user=ANA)
		config.oauth.expires_at = NOW.replace(tzinfo=dt.timezone.utc).timestamp() + 3600
	with pytest.raises(MissingScopes) as caught:
		provider(shared, config).connect()
	error = caught.value
	assert error.code == "missing_scopes" and not isinstance(error, SharedMailboxDenied)
	assert "Mail.Read.Shared" in error.message
	assert error.fix.startswith("Click Reconnect and sign in again to grant Mail.Read.Shared")
	text = f"{error.message} {error.fix}"
	assert not [s for s in secrets_of(config, shared) if s and s in text]
	mailbox_calls = [p for p in paths(shared) if p.startswith(f"/v1.0/users/{SHARED}/")]
	assert len(mailbox_calls) == (1 if stored == "an access token as well" else 0)
	assert [r["grant_type"] for r in shared.token_requests] == ["refresh_token"]


def test_access_removed_later_stops_the_sync_with_the_fix(shared):
	shared.shared_access.add(ANA)
	shared.add_message("inbox", NOW)
	config = ana_config(shared)
	p = provider(shared, config)
	p.connect()
	shared.shared_access.discard(ANA)
	with pytest.raises(SharedMailboxDenied) as caught:
		list(p.fetch(None))
	assert "Full Access" in caught.value.fix
	p.close()


def test_no_push_subscription_for_mail_read_through_a_sign_in(shared):
	"""Microsoft documents that Mail.Read.Shared does not support change notifications on a shared mailbox: the
	emulator refuses such a subscription as Graph does, and the provider does not ask for one."""
	shared.shared_access.add(ANA)
	token = shared.issue_access_token(SHARED_SCOPES, user=ANA)
	body = {
		"changeType": "created",
		"notificationUrl": "https://erp.example.com/api/method/email_sync.push.microsoft",
		"resource": f"users/{SHARED}/mailFolders('inbox')/messages",
		"expirationDateTime": (NOW + dt.timedelta(days=1)).isoformat() + "Z",
		"clientState": "x" * 32,
	}
	refused = requests.post(
		f"{shared.api_base}/subscriptions",
		json=body,
		headers={"Authorization": f"Bearer {token}", "Prefer": 'IdType="ImmutableId"'},
		verify=shared.certs.ca_file,
		timeout=10,
	)
	assert refused.status_code == 403 and not shared.subscriptions

	with provider(shared) as p:
		asked = len(shared.requests)
		with pytest.raises(PushUnavailable) as caught:
			p.create_subscription("https://erp.example.com/push", "y" * 32)
		assert len(shared.requests) == asked  # nothing sent to Graph
	assert "checked every minute" in caught.value.fix
