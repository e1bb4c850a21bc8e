"""Fixtures for provider tests: one real Dovecot for the session, a fresh mail user per test.

Without Dovecot installed, tests that need it are skipped; with EMAIL_SYNC_REQUIRE_DOVECOT=1 (set in CI, which
installs it) they fail instead, so a broken CI image cannot silently skip them.
"""

from __future__ import annotations

import os

import pytest
from dovecot import Dovecot, DovecotUnavailable, Mailbox


@pytest.fixture(scope="session")
def dovecot_server():
	try:
		server = Dovecot.start()
	except DovecotUnavailable as e:
		if os.environ.get("EMAIL_SYNC_REQUIRE_DOVECOT") == "1":
			pytest.fail(f"Dovecot is required here: {e}")
		pytest.skip(f"Dovecot IMAP tests need Dovecot: {e}")
	yield server
	server.cleanup()


@pytest.fixture
def mailbox(dovecot_server: Dovecot) -> Mailbox:
	"""A new user on the session's server: empty INBOX plus Sent, Junk, Trash and Drafts with special-use."""
	return Mailbox(dovecot_server, dovecot_server.add_user())
