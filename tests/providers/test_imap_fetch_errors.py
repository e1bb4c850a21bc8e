"""A message the IMAP server will not hand out never blocks its folder; a dropped connection still stops the run.

Against real Dovecot servers storing Maildir (one file per message), so one message can be made unreadable on
disk: Dovecot then fails that message alone ("Internal error occurred", and its own log says Permission
denied). What Dovecot does next is its `imap_fetch_failure` setting: `no-after` hands out the rest of the
FETCH and answers NO; the default, `disconnect-immediately`, drops the connection.
"""

from __future__ import annotations

import email
import os
from email.message import EmailMessage

import pytest
from dovecot import Dovecot, DovecotUnavailable, Mailbox

from email_sync.providers.base import AccountConfig, ConnectionFailed, FetchedMessage
from email_sync.providers.imap import IMAPProvider, parse_provider_id


def _server(**options) -> Dovecot:
	try:
		return Dovecot.start(maildir=True, **options)
	except DovecotUnavailable as e:
		if os.environ.get("EMAIL_SYNC_REQUIRE_DOVECOT") == "1":
			pytest.fail(f"Dovecot is required here: {e}")
		pytest.skip(f"Dovecot IMAP tests need Dovecot: {e}")


@pytest.fixture(scope="module")
def answering_server():
	"""Refuses an unreadable message with NO and hands out the rest of the FETCH."""
	server = _server(settings={"imap_fetch_failure": "no-after"})
	yield server
	server.cleanup()


@pytest.fixture(scope="module")
def dropping_server():
	"""Dovecot's default: a FETCH that hits an unreadable message drops the connection."""
	server = _server()
	yield server
	server.cleanup()


def message(n: int) -> bytes:
	msg = EmailMessage()
	msg["From"] = "alice@example.org"
	msg["To"] = "me@example.com"
	msg["Subject"] = f"Message {n}"
	msg["Message-ID"] = f"<poison-{n}@example.org>"
	msg.set_content(f"Body of message {n}.")
	return msg.as_bytes()


def config(mailbox: Mailbox, **overrides) -> AccountConfig:
	values = dict(
		provider="IMAP",
		address=mailbox.user.name,
		host=mailbox.host,
		port=mailbox.port,
		security="None",
		password=mailbox.user.password,
		timeout=10,
	)
	return AccountConfig(**{**values, **overrides})


def uid(m: FetchedMessage) -> int:
	return parse_provider_id(m.provider_id)[2]


def subject(m: FetchedMessage) -> str:
	return email.message_from_bytes(m.raw)["Subject"]


def test_an_unreadable_message_is_an_error_item_and_the_folder_goes_on(answering_server: Dovecot):
	mailbox = Mailbox(answering_server, answering_server.add_user())
	mailbox.append("INBOX", [message(n) for n in range(1, 6)])
	uidvalidity = mailbox.status("INBOX")["uidvalidity"]
	mailbox.make_unreadable("INBOX", 3)

	with IMAPProvider(config(mailbox, batch_size=2)) as provider:
		batches = list(provider.fetch(None))

	handed = [m for b in batches for m in b.messages]
	assert [uid(m) for m in handed] == [1, 2, 3, 4, 5]
	bad = handed[2]
	assert bad.failed and bad.raw == b"" and bad.error_code == "message_unavailable"
	assert "would not hand out this message" in bad.error and "Internal error" in bad.error
	assert (bad.folder, bad.provider_id) == ("INBOX", f"INBOX/{uidvalidity}/3")
	assert [subject(m) for m in handed if not m.failed] == ["Message 1", "Message 2", "Message 4", "Message 5"]
	# The cursor is past it: the next run reads only what is new.
	assert batches[-1].cursor == {"folders": {"INBOX": {"uidvalidity": uidvalidity, "last_uid": 5}}}
	mailbox.append("INBOX", [message(6)])
	with IMAPProvider(config(mailbox)) as provider:
		again = [m for b in provider.fetch(batches[-1].cursor) for m in b.messages]
	assert [subject(m) for m in again] == ["Message 6"]


def test_a_dropped_connection_still_stops_the_run_and_resumes_from_the_cursor(dropping_server: Dovecot):
	mailbox = Mailbox(dropping_server, dropping_server.add_user())
	mailbox.append("INBOX", [message(n) for n in range(1, 6)])
	path = mailbox.make_unreadable("INBOX", 3)

	handed = []
	with pytest.raises(ConnectionFailed), IMAPProvider(config(mailbox, batch_size=2)) as provider:
		for batch in provider.fetch(None):
			handed.append(batch)
	assert [[uid(m) for m in b.messages] for b in handed] == [[1, 2]]
	assert handed[0].cursor["folders"]["INBOX"]["last_uid"] == 2

	path.chmod(0o644)  # the server is well again: the next run goes on from the cursor, nothing skipped
	with IMAPProvider(config(mailbox, batch_size=2)) as provider:
		resumed = [m for b in provider.fetch(handed[0].cursor) for m in b.messages]
	assert [subject(m) for m in resumed] == ["Message 3", "Message 4", "Message 5"]


def test_fetch_one_downloads_a_message_again_once_the_server_hands_it_out(answering_server: Dovecot):
	mailbox = Mailbox(answering_server, answering_server.add_user())
	mailbox.append("INBOX", [message(n) for n in range(1, 4)])
	path = mailbox.make_unreadable("INBOX", 2)
	with IMAPProvider(config(mailbox)) as provider:
		bad = [m for b in provider.fetch(None) for m in b.messages][1]
	assert bad.failed

	with IMAPProvider(config(mailbox)) as provider:
		still = provider.fetch_one(bad.provider_id)
	assert still.failed and still.provider_id == bad.provider_id and "Internal error" in still.error

	path.chmod(0o644)
	with IMAPProvider(config(mailbox)) as provider:
		good = provider.fetch_one(bad.provider_id)
	assert not good.failed and subject(good) == "Message 2"
	assert (good.folder, good.provider_id, good.from_sent_folder) == ("INBOX", bad.provider_id, False)
	assert good.received_at is not None


def test_fetch_one_of_a_message_that_is_gone_is_none(answering_server: Dovecot):
	mailbox = Mailbox(answering_server, answering_server.add_user())
	mailbox.append("INBOX", [message(n) for n in range(1, 4)])
	mailbox.append("Sent", [message(9)])
	uidvalidity = mailbox.status("INBOX")["uidvalidity"]
	mailbox.delete("INBOX", [2])
	with IMAPProvider(config(mailbox)) as provider:
		assert provider.fetch_one(f"INBOX/{uidvalidity}/2") is None  # expunged
		assert provider.fetch_one(f"INBOX/{uidvalidity + 1}/3") is None  # the folder was renumbered since
		assert provider.fetch_one(f"Gone/{uidvalidity}/3") is None  # the folder was deleted
		assert subject(provider.fetch_one(f"INBOX/{uidvalidity}/3")) == "Message 3"
		sent_validity = mailbox.status("Sent")["uidvalidity"]
		sent = provider.fetch_one(f"Sent/{sent_validity}/1")
	assert subject(sent) == "Message 9" and sent.from_sent_folder


def test_provider_ids_with_slashes_in_the_folder_name():
	assert parse_provider_id("Archive/2024/1700000000/42") == ("Archive/2024", 1700000000, 42)
	assert parse_provider_id("garbage") == ("", None, None)
