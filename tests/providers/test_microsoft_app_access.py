"""Microsoft 365 company mailboxes (shared or delegated) read with the app's own access, no personal sign-in.

The real msal asks the emulator's token endpoint for a client-credentials token (with the client secret, or a
client assertion signed with a certificate's key), and every Graph call goes to /users/{address}.
"""

from __future__ import annotations

import datetime as dt
from urllib.parse import urlsplit

import pytest

from email_sync.providers.base import (
	AccountConfig,
	AppCredentials,
	AuthenticationFailed,
	MailboxNotHosted,
	MissingScopes,
)
from email_sync.providers.microsoft import MicrosoftProvider

pytest_plugins = ["conftest_graph"]

SHARED = "support@contoso.example"
NOW = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


@pytest.fixture
def shared(graph_certs):
	"""The emulator serving the shared mailbox support@ (its one mailbox)."""
	from graph_emulator import GraphEmulator

	emulator = GraphEmulator(graph_certs, address=SHARED).start()
	yield emulator
	emulator.stop()
	assert not emulator.missing_immutable_prefer


@pytest.fixture(scope="module")
def certificate():
	"""A self-signed RSA certificate and its key, as uploaded to an app registration: (cert PEM, key PEM)."""
	from cryptography import x509
	from cryptography.hazmat.primitives import hashes, serialization
	from cryptography.hazmat.primitives.asymmetric import rsa
	from cryptography.x509.oid import NameOID

	key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
	name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Email Sync app")])
	now = dt.datetime.now(dt.timezone.utc)
	cert = (
		x509.CertificateBuilder()
		.subject_name(name)
		.issuer_name(name)
		.public_key(key.public_key())
		.serial_number(x509.random_serial_number())
		.not_valid_before(now - dt.timedelta(days=1))
		.not_valid_after(now + dt.timedelta(days=365))
		.sign(key, hashes.SHA256())
	)
	key_pem = key.private_bytes(
		serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
	)
	return cert.public_bytes(serialization.Encoding.PEM).decode(), key_pem.decode()


APP_FIELDS = {"client_id", "tenant", "client_secret", "certificate", "private_key"}


def app_config(emulator, **overrides) -> AccountConfig:
	"""A config for the shared mailbox; AppCredentials fields and AccountConfig fields both as keywords."""
	creds = {"client_id": emulator.client_id, "tenant": emulator.tenant_id, "client_secret": emulator.client_secret}
	creds.update({k: v for k, v in overrides.items() if k in APP_FIELDS})
	values = {"provider": "Microsoft", "address": SHARED, "api_base": emulator.api_base, "timeout": 10.0}
	values.update({k: v for k, v in overrides.items() if k not in APP_FIELDS})
	return AccountConfig(**values, app=AppCredentials(**creds), auth_base=emulator.auth_base)


def provider(emulator, config=None, **kwargs) -> MicrosoftProvider:
	return MicrosoftProvider(
		config or app_config(emulator), verify=emulator.certs.ca_file, backoff=0.01, sleep=lambda s: None, **kwargs
	)


def paths(emulator) -> list[str]:
	return [urlsplit(target).path for _, target in emulator.requests]


def test_a_shared_mailbox_is_read_with_the_app_secret_end_to_end(shared):
	first = shared.add_message("inbox", NOW - dt.timedelta(days=2))
	sent = shared.add_message("sentitems", NOW - dt.timedelta(days=1))
	config = app_config(shared, direction="Bidirectional")
	with provider(shared, config) as p:
		batches = list(p.fetch(None))
		assert p.mailbox_address == SHARED
	assert [m.provider_id for b in batches for m in b.messages] == [first, sent]
	assert [(r["grant_type"], r["tenant"], r["scope"]) for r in shared.token_requests] == [
		("client_credentials", shared.tenant_id, "https://graph.microsoft.com/.default")
	]
	assert all(path.startswith(f"/v1.0/users/{SHARED}/") for path in paths(shared)), paths(shared)
	# The stored cursor's links stay under /users/...: the next run reads only what is new.
	cursor = batches[-1].cursor
	assert all(f"/users/{SHARED}/" in s["delta_link"] for s in cursor["folders"].values())
	new = shared.add_message("inbox", NOW)
	again = [m.provider_id for b in provider(shared, config).fetch(cursor) for m in b.messages]
	assert again == [new]


@pytest.mark.parametrize("pasted", ["as is", "on one line"])
def test_a_certificate_works_instead_of_a_secret(shared, certificate, pasted):
	"""A key pasted into a password field loses its line breaks: it still works."""
	cert_pem, key_pem = certificate
	if pasted == "on one line":
		key_pem = key_pem.replace("\n", "")
	shared.add_app_certificate(cert_pem.encode())
	message = shared.add_message("inbox", NOW - dt.timedelta(hours=1))
	config = app_config(shared, client_secret="", certificate=cert_pem, private_key=key_pem)
	with provider(shared, config) as p:
		assert [m.provider_id for b in p.fetch(None) for m in b.messages] == [message]
	assert shared.token_requests[0]["grant_type"] == "client_credentials"


def test_an_unregistered_certificate_is_refused_with_the_fix(shared, certificate):
	cert_pem, key_pem = certificate  # never uploaded to the emulator's app registration
	result = provider(shared, app_config(shared, client_secret="", certificate=cert_pem, private_key=key_pem)).test()
	assert not result.ok
	assert "not registered" in result.message and "Certificates & secrets" in result.message


def test_an_expired_token_mid_sync_is_replaced(shared):
	ids = [shared.add_message("inbox", NOW - dt.timedelta(hours=n)) for n in range(6, 0, -1)]
	shared.expire_access_tokens(after_requests=4)
	with provider(shared, app_config(shared, batch_size=2)) as p:
		got = [m.provider_id for b in p.fetch(None) for m in b.messages]
	assert got == ids
	assert [r["grant_type"] for r in shared.token_requests] == ["client_credentials", "client_credentials"]


def test_test_connection_names_the_mode(shared):
	result = provider(shared).test()
	assert result.ok and "app's own access" in result.message and SHARED in result.message


@pytest.mark.parametrize(
	("setup", "error", "words"),
	[
		(lambda g: setattr(g, "app_roles", set()), MissingScopes, "Grant admin consent"),
		(lambda g: setattr(g, "app_mailboxes", {"sales@contoso.example"}), MissingScopes, "application access policy"),
	],
	ids=["no admin consent", "outside the access policy"],
)
def test_an_app_that_may_not_read_the_mailbox_says_why(shared, setup, error, words):
	setup(shared)
	with pytest.raises(error) as caught:
		provider(shared).connect()
	assert "app access" in caught.value.message and words in caught.value.fix
	result = provider(shared).test()
	assert not result.ok and words in result.message


def test_an_unknown_mailbox_is_mailbox_not_hosted(shared):
	config = app_config(shared)
	config.address = "nobody@contoso.example"
	with pytest.raises(MailboxNotHosted) as caught:
		provider(shared, config).connect()
	assert "nobody@contoso.example" in caught.value.message and "ErrorInvalidUser" in caught.value.message


@pytest.mark.parametrize("tenant", ["", "common", "organizations"])
def test_app_access_needs_the_tenant_id(shared, tenant):
	with pytest.raises(AuthenticationFailed) as caught:
		provider(shared, app_config(shared, tenant=tenant)).connect()
	assert "tenant" in caught.value.message and "Directory (tenant) ID" in caught.value.fix
	assert shared.token_requests == []


def test_a_wrong_secret_says_where_to_fix_it(shared):
	with pytest.raises(AuthenticationFailed) as caught:
		provider(shared, app_config(shared, client_secret="wrong")).connect()
	assert "Invalid client secret" in caught.value.message and "Email Sync Settings" in caught.value.fix


def test_subscriptions_watch_the_shared_mailbox(shared):
	with provider(shared, app_config(shared)) as p:
		shared.validate_notification_urls = False
		created = p.create_subscription("https://erp.example.com/api/method/email_sync.push.microsoft", "state")
	assert shared.subscriptions[created["id"]].resource == f"users/{SHARED}/mailFolders('inbox')/messages"


def test_a_personal_sign_in_to_another_mailbox_points_to_the_shared_mode(graph, make_provider, make_config):
	"""Someone signed in personally for support@: Test Connection says to use the shared mode instead."""
	result = make_provider(make_config(address="support@contoso.example")).test()
	assert not result.ok and "Shared or delegated" in result.message and graph.address in result.message
