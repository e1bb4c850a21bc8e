"""Fixtures for the Microsoft provider tests, loaded with `pytest_plugins = ["conftest_graph"]`.

`graph`: a fresh Graph + identity emulator per test (HTTPS on 127.0.0.1 with a throwaway CA, see
graph_emulator); `make_config` / `make_provider`: an AccountConfig signed in to it and a MicrosoftProvider
trusting its CA, with tiny backoffs and a recording `sleep` (`sleeps`), so throttling tests run in
milliseconds.
"""

from __future__ import annotations

import pytest
from graph_emulator import GraphEmulator, make_certificates

from email_sync.providers.base import AccountConfig, OAuthTokens
from email_sync.providers.microsoft import MicrosoftProvider


@pytest.fixture(scope="session")
def graph_certs(tmp_path_factory):
	return make_certificates(tmp_path_factory.mktemp("graph-tls"))


@pytest.fixture
def graph(graph_certs):
	emulator = GraphEmulator(graph_certs).start()
	yield emulator
	emulator.stop()
	# Every Graph request must ask for immutable ids, or ids change when users move mail.
	assert not emulator.missing_immutable_prefer, emulator.missing_immutable_prefer[:3]


@pytest.fixture
def refreshed_tokens():
	"""What on_tokens_refreshed received, in order."""
	return []


@pytest.fixture
def make_config(graph, refreshed_tokens):
	def make(tenant: str = "organizations", scopes=None, **overrides) -> AccountConfig:
		oauth = overrides.pop("oauth", None) or OAuthTokens(
			client_id=graph.client_id,
			client_secret=graph.client_secret,
			refresh_token=graph.issue_refresh_token(**({"scopes": scopes} if scopes else {}), tenant=tenant),
			tenant=tenant,
		)
		values = {
			"provider": "Microsoft",
			"address": graph.address,
			"oauth": oauth,
			"api_base": graph.api_base,
			"auth_base": graph.auth_base,
			"timeout": 10.0,
			"on_tokens_refreshed": refreshed_tokens.append,
		}
		values.update(overrides)
		return AccountConfig(**values)

	return make


@pytest.fixture
def sleeps():
	"""Every delay the provider asked to sleep, in seconds (nothing really sleeps)."""
	return []


@pytest.fixture
def make_provider(graph, make_config, sleeps):
	providers = []

	def make(config: AccountConfig | None = None, **kwargs) -> MicrosoftProvider:
		options = {
			"verify": graph.certs.ca_file,
			"backoff": 0.01,
			"max_backoff": 0.05,
			"sleep": sleeps.append,
		}
		options.update(kwargs)
		provider = MicrosoftProvider(config or make_config(), **options)
		providers.append(provider)
		return provider

	yield make
	for provider in providers:
		provider.close()
