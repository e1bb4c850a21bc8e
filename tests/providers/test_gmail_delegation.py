"""Google Workspace mailboxes read by domain-wide delegation: a service account acts as the user, nobody signs in.

google-auth signs the JWT with the service account's key (service_account.Credentials.with_subject) and the
emulator's token endpoint checks it as Google does: signature, key id, audience, the user, and that an
administrator delegated gmail.readonly to the service account's client id.
"""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from leaks import assert_clean, failure
from transport_faults import CUT

from email_sync.providers.base import (
	AccountConfig,
	AppCredentials,
	AuthenticationFailed,
	MailboxNotHosted,
	ProviderError,
)
from email_sync.providers.gmail import GmailProvider
from email_sync.providers.google_oauth import GMAIL_READONLY

pytest_plugins = ["conftest_gmail"]


@pytest.fixture
def key(gmail):
	"""A service account's JSON key, with gmail.readonly delegated to it by the (emulated) Workspace admin."""
	info = gmail.add_service_account()
	gmail.delegate(info["client_id"])
	return info


def delegated_config(gmail, key_info, **overrides) -> AccountConfig:
	values = {
		"provider": "Gmail",
		"address": gmail.address,
		"app": AppCredentials(service_account_key=json.dumps(key_info)),
		"api_base": gmail.url,
		"auth_base": gmail.base,
		"timeout": 10.0,
	}
	values.update(overrides)
	return AccountConfig(**values)


def provider(config) -> GmailProvider:
	return GmailProvider(config, sleep=lambda s: None, backoff=0.001)


def test_a_workspace_mailbox_is_read_by_domain_wide_delegation(gmail, key):
	ids = [gmail.add_message(date=datetime(2026, 11, d, 9)) for d in (1, 2, 3)]
	with provider(delegated_config(gmail, key, batch_size=2)) as p:
		batches = list(p.fetch(None))
		assert p.email_address == gmail.address
	assert [m.provider_id for b in batches for m in b.messages] == ids
	claims = gmail.jwt_grants[0]
	assert claims["iss"] == key["client_email"] and claims["sub"] == gmail.address
	assert claims["scope"] == GMAIL_READONLY
	# Incremental sync goes on from the cursor like any Gmail account.
	new = gmail.add_message()
	with provider(delegated_config(gmail, key)) as p:
		assert [m.provider_id for b in p.fetch(batches[-1].cursor) for m in b.messages] == [new]


def test_an_expired_token_is_replaced_by_a_new_jwt(gmail, key):
	ids = [gmail.add_message(date=datetime(2026, 11, d, 9)) for d in (1, 2, 3, 4)]
	with provider(delegated_config(gmail, key, batch_size=2)) as p:
		fetching = p.fetch(None)
		got = [m.provider_id for m in next(fetching).messages]
		gmail.expire_access_tokens()
		got += [m.provider_id for b in fetching for m in b.messages]
	assert got == ids and len(gmail.jwt_grants) == 2


def test_test_connection_names_the_mode(gmail, key):
	result = provider(delegated_config(gmail, key)).test()
	assert result.ok and "domain-wide delegation" in result.message and gmail.address in result.message


def test_delegation_not_allowed_by_the_admin_says_where(gmail, key):
	gmail.delegations.clear()
	with pytest.raises(ProviderError) as caught:
		provider(delegated_config(gmail, key)).connect()
	assert caught.value.code == "delegation_not_allowed" and "unauthorized_client" in caught.value.message
	assert key["client_id"] in caught.value.fix and GMAIL_READONLY in caught.value.fix
	assert "Domain-wide delegation" in caught.value.fix


def test_a_user_outside_the_organization_is_mailbox_not_hosted(gmail, key):
	with pytest.raises(MailboxNotHosted) as caught:
		provider(delegated_config(gmail, key, address="someone@gmail.com")).connect()
	assert "someone@gmail.com" in caught.value.message and "Invalid email or User ID" in caught.value.message


def test_a_deleted_key_is_authentication_failed(gmail, key):
	other = gmail.add_service_account("other")
	stale = {**key, "private_key": other["private_key"]}  # signed with a key Google does not have on file
	with pytest.raises(AuthenticationFailed) as caught:
		provider(delegated_config(gmail, stale)).connect()
	assert "Invalid JWT Signature" in caught.value.message and "new JSON key" in caught.value.fix


@pytest.mark.parametrize("text", ["", "not json", '{"type": "authorized_user"}', '{"type": "service_account"}'])
def test_anything_but_a_service_account_key_is_refused_plainly(gmail, text):
	with pytest.raises(ProviderError) as caught:
		provider(delegated_config(gmail, {}, app=AppCredentials(service_account_key=text))).connect()
	assert caught.value.code == "bad_service_account_key" and "JSON key" in caught.value.fix
	assert gmail.jwt_grants == []


@pytest.mark.parametrize("break_it", ["refused", "cut"])
def test_the_private_key_never_shows(gmail, key, break_it):
	"""A delegation refused, or its token request cut: neither the error nor its traceback's locals hold the key."""
	if break_it == "refused":
		gmail.delegations.clear()
	else:
		gmail.transport.add(CUT, match="/token", count=100)
	p = provider(delegated_config(gmail, key))
	error = failure(p.connect)
	lines = key["private_key"].split("-----")[2].strip().splitlines()
	assert_clean(error, {*lines[1:-1], *gmail.access_tokens})  # any full line from inside the PEM
