"""Fixtures for the Gmail provider tests (a pytest plugin: test_gmail.py lists it in `pytest_plugins`).

`gmail`: a fresh Gmail API + Google OAuth emulator per test (see gmail_emulator.py), started on 127.0.0.1.
`gmail_config`: builds an AccountConfig pointed at it, with tokens the emulator issued.
"""

from __future__ import annotations

import pytest
from gmail_emulator import GmailEmulator

from email_sync.providers.base import INBOUND_ONLY, AccountConfig, OAuthTokens


@pytest.fixture
def gmail():
	emulator = GmailEmulator(
		page_size=7
	).start()  # small pages, so listing and history page even in small tests
	yield emulator
	emulator.stop()


@pytest.fixture
def gmail_config(gmail):
	"""gmail_config(**overrides) -> AccountConfig for the emulator's mailbox, with freshly issued tokens."""

	def make(*, scopes=None, refreshed=None, **overrides) -> AccountConfig:
		issued = gmail.issue_tokens(**({"scopes": scopes} if scopes else {}))
		values = {
			"provider": "Gmail",
			"address": gmail.address,
			"direction": INBOUND_ONLY,
			"oauth": OAuthTokens(
				client_id=gmail.client_id,
				client_secret=gmail.client_secret,
				refresh_token=issued["refresh_token"],
				access_token=issued["access_token"],
				scopes=issued["scope"].split(),
			),
			"api_base": gmail.url,
			"auth_base": gmail.base,
			"timeout": 10.0,
			"on_tokens_refreshed": refreshed.append if refreshed is not None else None,
		}
		values.update(overrides)
		return AccountConfig(**values)

	return make
