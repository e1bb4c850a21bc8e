"""fetch_one: one message downloaded again by its provider id (the Retry of an Error Synced Email), for Gmail
and Microsoft Graph against their emulators, told to refuse the message once and then hand it out. (IMAP's is
in test_imap_fetch_errors.py, against a real Dovecot.)"""

from __future__ import annotations

import email
from datetime import datetime, timedelta, timezone

import pytest

from email_sync.providers.base import AccessRevoked, Throttled
from email_sync.providers.gmail import GmailProvider

pytest_plugins = ["conftest_gmail", "conftest_graph"]


def subject(message) -> str:
	return email.message_from_bytes(message.raw)["Subject"]


# -- Gmail ----------------------------------------------------------------------------------------------------


def gmail_provider(config) -> GmailProvider:
	return GmailProvider(config, sleep=lambda seconds: None, backoff=0.001)


def test_gmail_fetch_one_refused_then_handed_out(gmail, gmail_config):
	message_id = gmail.add_message(labels=("INBOX",), date=datetime(2024, 3, 4, 12))
	gmail.poison(message_id, 400, "failedPrecondition", "Precondition check failed.")
	with gmail_provider(gmail_config()) as provider:
		refused = provider.fetch_one(message_id)
	assert refused.failed and refused.raw == b"" and refused.error_code == "message_unavailable"
	assert "Precondition check failed." in refused.error and refused.provider_id == message_id

	del gmail.poisoned[message_id]  # the message is fine again
	with gmail_provider(gmail_config()) as provider:
		fetched = provider.fetch_one(message_id)
	assert not fetched.failed and subject(fetched) and fetched.raw
	assert (fetched.provider_id, fetched.folder, fetched.received_at) == (message_id, "INBOX", datetime(2024, 3, 4, 12))
	assert fetched.thread_id


def test_gmail_fetch_one_of_a_deleted_or_trashed_message_is_none(gmail, gmail_config):
	deleted = gmail.add_message(labels=("INBOX",))
	trashed = gmail.add_message(labels=("TRASH",))
	gmail.delete_message(deleted)
	with gmail_provider(gmail_config()) as provider:
		assert provider.fetch_one(deleted) is None
		assert provider.fetch_one(trashed) is None


def test_gmail_fetch_one_when_access_is_gone_raises(gmail, gmail_config):
	message_id = gmail.add_message(labels=("INBOX",))
	gmail.poison(message_id, 401, "authError", "Invalid Credentials")
	with gmail_provider(gmail_config()) as provider, pytest.raises(AccessRevoked):
		provider.fetch_one(message_id)


# -- Microsoft Graph ------------------------------------------------------------------------------------------


def test_graph_fetch_one_refused_then_handed_out(graph, make_provider):
	received = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0) - timedelta(days=2)
	message_id = graph.add_message("inbox", received, subject="Signed contract", conversation_id="conv-1")
	graph.poison(message_id, 500, "ErrorMimeContentConversionFailed")
	refused = make_provider().fetch_one(message_id)
	assert refused.failed and refused.raw == b"" and refused.error_code == "message_unavailable"
	assert "ErrorMimeContentConversionFailed" in refused.error

	del graph.poisoned[message_id]
	fetched = make_provider().fetch_one(message_id)
	assert not fetched.failed and subject(fetched) == "Signed contract"
	assert (fetched.provider_id, fetched.folder, fetched.thread_id) == (message_id, "Inbox", "conv-1")
	assert fetched.received_at == received


def test_graph_fetch_one_reads_before_the_sync_start_and_from_sent(graph, make_provider, make_config):
	"""A retry is of a message already handed out once: a later sync start does not hide it."""
	old = graph.add_message("sentitems", datetime(2020, 1, 2, 3, 4, 5), subject="Old reply")
	fetched = make_provider(make_config(sync_start=datetime(2024, 1, 1).date())).fetch_one(old)
	assert subject(fetched) == "Old reply" and fetched.from_sent_folder


def test_graph_fetch_one_of_a_deleted_or_junked_message_is_none(graph, make_provider):
	deleted = graph.add_message("inbox", datetime(2024, 5, 1))
	junked = graph.add_message("inbox", datetime(2024, 5, 2))
	graph.delete(deleted)
	graph.move(junked, "junkemail")
	provider = make_provider()
	assert provider.fetch_one(deleted) is None
	assert provider.fetch_one(junked) is None


def test_graph_fetch_one_when_graph_is_throttling_raises(graph, make_provider):
	message_id = graph.add_message("inbox", datetime(2024, 5, 1))
	graph.poison(message_id, 429, "ApplicationThrottled")
	with pytest.raises(Throttled):
		make_provider().fetch_one(message_id)
