"""A message the IMAP server will not hand out never blocks its folder; a dropped connection still stops the run.

Against real Dovecot servers storing Maildir (one file per message), so one message can be made unreadable on
disk: Dovecot then fails that message alone ("Internal error occurred", and its own log says Permission
denied). What Dovecot does next is its `imap_fetch_failure` setting: `no-after` hands out the rest of the
FETCH and answers NO; the default, `disconnect-immediately`, drops the connection.
"""

from __future__ import annotations

import contextlib
import email
import os
import signal
import socket
import subprocess
import threading
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
	values = {
		"provider": "IMAP",
		"address": mailbox.user.name,
		"host": mailbox.host,
		"port": mailbox.port,
		"security": "None",
		"password": mailbox.user.password,
		"timeout": 10,
	}
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


def test_a_message_the_server_drops_the_connection_on_is_an_error_item_and_the_folder_goes_on(
	dropping_server: Dovecot,
):
	mailbox = Mailbox(dropping_server, dropping_server.add_user())
	mailbox.append("INBOX", [message(n) for n in range(1, 7)])
	mailbox.make_unreadable("INBOX", 3)
	mailbox.make_unreadable("INBOX", 5)

	with IMAPProvider(config(mailbox, batch_size=4)) as provider:
		batches = list(provider.fetch(None))

	handed = [m for b in batches for m in b.messages]
	assert [uid(m) for m in handed] == [1, 2, 3, 4, 5, 6]
	assert [uid(m) for m in handed if m.failed] == [3, 5]
	assert all("closes the connection whenever this message is read" in m.error for m in handed if m.failed)
	assert [subject(m) for m in handed if not m.failed] == ["Message 1", "Message 2", "Message 4", "Message 6"]
	assert batches[-1].cursor["folders"]["INBOX"]["last_uid"] == 6


def take_down(server: Dovecot) -> None:
	"""Stop the server and the processes serving its open connections (they outlive Dovecot's master)."""
	children = subprocess.run(["pgrep", "-P", str(server._proc.pid)], capture_output=True, text=True).stdout.split()
	server.stop()
	for pid in children:
		with contextlib.suppress(ProcessLookupError):
			os.kill(int(pid), signal.SIGKILL)


def test_a_server_that_goes_away_stops_the_run_which_resumes_from_the_cursor():
	server = _server(settings={"imap_fetch_failure": "no-after"})
	try:
		mailbox = Mailbox(server, server.add_user())
		mailbox.append("INBOX", [message(n) for n in range(1, 6)])
		handed = []
		with pytest.raises(ConnectionFailed), IMAPProvider(config(mailbox, batch_size=2, timeout=3)) as provider:
			for batch in provider.fetch(None):
				handed.append(batch)
				take_down(server)  # after the first batch: nothing after it may be taken as read
		assert [[uid(m) for m in b.messages] for b in handed] == [[1, 2]]
		assert handed[0].cursor["folders"]["INBOX"]["last_uid"] == 2

		server._run()  # back up: the next run goes on from the cursor, nothing skipped
		with IMAPProvider(config(mailbox, batch_size=2)) as provider:
			resumed = [m for b in provider.fetch(handed[0].cursor) for m in b.messages]
		assert [subject(m) for m in resumed] == ["Message 3", "Message 4", "Message 5"]
	finally:
		server.cleanup()


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


# -- answers Dovecot does not give: a scripted IMAP server -----------------------------------------------------


class ScriptedImapServer:
	"""An IMAP server holding three messages in INBOX, whose answer to the body FETCH leaves out UID 2: with a
	tagged BAD (`refusal="BAD"`), or with OK and a FETCH response for UID 2 that has no body (`refusal=""`).
	Only what IMAPProvider.fetch sends is understood; UID SEARCH UID n answers whether n exists."""

	def __init__(self, refusal: str):
		self.refusal = refusal
		self.bodies = {uid: message(uid).replace(b"\n", b"\r\n") for uid in (1, 2, 3)}
		self.listener = socket.create_server(("127.0.0.1", 0))
		threading.Thread(target=self._serve, daemon=True).start()

	@property
	def port(self) -> int:
		return self.listener.getsockname()[1]

	def _serve(self):
		while True:
			try:
				conn, _ = self.listener.accept()
			except OSError:
				return
			threading.Thread(target=self._session, args=(conn,), daemon=True).start()

	def _session(self, conn: socket.socket):
		with conn, conn.makefile("rb") as lines:
			conn.sendall(b"* OK IMAP4rev1 ready\r\n")
			for line in lines:
				tag, _, command = line.decode().strip().partition(" ")
				conn.sendall(self._answer(tag, command.upper()))
				if command.upper() == "LOGOUT":
					return

	def _answer(self, tag: str, command: str) -> bytes:
		ok = f"{tag} OK done\r\n".encode()
		if command.startswith("CAPABILITY"):
			return b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n" + ok
		if command.startswith("LIST"):
			return b'* LIST (\\HasNoChildren) "/" INBOX\r\n' + ok
		if command.startswith("EXAMINE"):
			return b"* 3 EXISTS\r\n* OK [UIDVALIDITY 77] ok\r\n* OK [UIDNEXT 4] ok\r\n" + ok
		if command.startswith("UID SEARCH UID"):
			asked = command.rsplit(" ", 1)[1]
			return f"* SEARCH {asked if asked.isdigit() and int(asked) in self.bodies else ''}\r\n".encode() + ok
		if command.startswith("UID SEARCH"):
			return b"* SEARCH 1 2 3\r\n" + ok
		if command.startswith("UID FETCH") and "BODY.PEEK[]" in command:
			out = b""
			for n, (uid, body) in enumerate(self.bodies.items(), start=1):
				date = b'INTERNALDATE "01-Jul-2024 10:00:00 +0000"'
				if uid == 2:
					out += b"* %d FETCH (UID %d %s)\r\n" % (n, uid, date)
				else:
					out += b"* %d FETCH (UID %d %s BODY[] {%d}\r\n%s)\r\n" % (n, uid, date, len(body), body)
			if self.refusal:
				return out + f"{tag} {self.refusal} [SERVERBUG] Message 2 is broken\r\n".encode()
			return out + ok
		if command.startswith("UID FETCH"):
			sizes = b"".join(b"* %d FETCH (UID %d RFC822.SIZE %d)\r\n" % (n, n, len(self.bodies[n])) for n in self.bodies)
			return sizes + ok
		if command.startswith("LOGOUT"):
			return b"* BYE bye\r\n" + ok
		return ok  # LOGIN and anything else

	def stop(self):
		self.listener.close()


@pytest.mark.parametrize("refusal", ["BAD", ""], ids=["bad", "ok-without-body"])
def test_a_fetch_answered_bad_or_without_the_body_is_an_error_item(refusal):
	server = ScriptedImapServer(refusal)
	try:
		cfg = AccountConfig(
			provider="IMAP", address="me@example.com", host="127.0.0.1", port=server.port, security="None",
			password="pw", timeout=5,
		)  # fmt: skip
		with IMAPProvider(cfg) as provider:
			batches = list(provider.fetch(None))
	finally:
		server.stop()
	handed = [m for b in batches for m in b.messages]
	assert [uid(m) for m in handed] == [1, 2, 3]
	assert [subject(m) for m in handed if not m.failed] == ["Message 1", "Message 3"]
	bad = handed[1]
	assert bad.failed and bad.error_code == "message_unavailable" and bad.provider_id == "INBOX/77/2"
	assert ("Message 2 is broken" if refusal else "did not include the message") in bad.error
	assert batches[-1].cursor == {"folders": {"INBOX": {"uidvalidity": 77, "last_uid": 3}}}
