"""IMAPProvider against a real Dovecot on 127.0.0.1 (see conftest.py and dovecot.py); no mocks.

Each test gets a fresh user, fills its mailbox over IMAP and checks exactly what the provider hands out.
"""

from __future__ import annotations

import contextlib
import email
import socket
import ssl
import threading
import time
from datetime import date, datetime, timedelta
from email.message import EmailMessage

import pytest
from dovecot import Mailbox, free_port

from email_sync.providers import get_provider
from email_sync.providers.base import (
	BIDIRECTIONAL,
	MANUAL_SELECTION,
	AccountConfig,
	AuthenticationFailed,
	Batch,
	ConnectionFailed,
	Folder,
	FolderMissing,
)
from email_sync.providers.imap import (
	HANDSHAKE_TIMEOUT,
	IMAPProvider,
	decode_mutf7,
	encode_mutf7,
	folders_from_list,
	parse_internaldate,
	uid_sets,
)

# -- helpers ---------------------------------------------------------------------------------------


def make_message(n: int, *, size: int = 0, sender: str = "alice@example.org", to: str = "me@example.com"):
	msg = EmailMessage()
	msg["From"] = sender
	msg["To"] = to
	msg["Subject"] = f"Message {n}"
	msg["Message-ID"] = f"<msg-{n}@example.org>"
	msg["Date"] = "Mon, 06 May 2024 10:00:00 +0000"
	msg.set_content(f"Body of message {n}.\n" + ("x" * 99 + "\n") * (size // 100))
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
	values.update(overrides)
	return AccountConfig(**values)


def fetch_all(cfg: AccountConfig, cursor: dict | None = None) -> list[Batch]:
	with IMAPProvider(cfg) as provider:
		return list(provider.fetch(cursor))


def subjects(batches: list[Batch]) -> list[str]:
	return [email.message_from_bytes(m.raw)["Subject"] for b in batches for m in b.messages]


def numbers(batches: list[Batch]) -> list[int]:
	return [int(s.split()[-1]) for s in subjects(batches)]


def untrusted_tls() -> ssl.SSLContext:
	"""The explicit test override: accept the fixture's self-signed certificate without checking it."""
	context = ssl.create_default_context()
	context.check_hostname = False
	context.verify_mode = ssl.CERT_NONE
	return context


# -- connecting ------------------------------------------------------------------------------------


def test_connect_and_list_folders_with_roles(mailbox: Mailbox):
	mailbox.create("Projects/2024")
	with IMAPProvider(config(mailbox)) as provider:
		folders = {f.name: f for f in provider.list_folders()}
	assert folders["INBOX"].role == "inbox"
	assert folders["Sent"].role == "sent"
	assert folders["Junk"].role == "junk"
	assert folders["Trash"].role == "trash"
	assert folders["Drafts"].role == "drafts"
	assert folders["Projects/2024"].role == ""
	assert folders["Projects/2024"].selectable
	assert not folders["Projects"].selectable  # Dovecot lists the parent as \Noselect
	assert set(folders) == {"INBOX", "Sent", "Junk", "Trash", "Drafts", "Projects", "Projects/2024"}


def test_a_noselect_folder_cannot_be_configured(mailbox: Mailbox):
	mailbox.create("Projects/2024")
	with pytest.raises(FolderMissing) as info:
		fetch_all(config(mailbox, folders=["Projects"]))
	assert '"Projects"' in info.value.message


def test_get_provider_returns_imap(mailbox: Mailbox):
	result = get_provider(config(mailbox)).test()
	assert result.ok, result.message
	assert "INBOX" in {f.name for f in result.folders}


def test_wrong_password_is_authentication_failed(mailbox: Mailbox):
	with pytest.raises(AuthenticationFailed) as info:
		IMAPProvider(config(mailbox, password="wrong")).connect()
	assert mailbox.user.name in info.value.message
	assert "127.0.0.1" in info.value.message
	assert "app password" in info.value.fix
	assert not info.value.transient


def test_nothing_listening_is_connection_failed():
	port = free_port()  # bound and released: nothing listens there now
	with pytest.raises(ConnectionFailed) as info:
		IMAPProvider(AccountConfig("IMAP", "me@x.example", host="127.0.0.1", port=port, security="None")).connect()
	assert info.value.message == f"Could not reach 127.0.0.1:{port}: connection refused."
	assert "port" in info.value.fix
	assert info.value.transient


def test_unknown_host_is_connection_failed():
	with pytest.raises(ConnectionFailed) as info:
		IMAPProvider(AccountConfig("IMAP", "me@example.com", host="imap.invalid", port=993)).connect()
	assert "imap.invalid" in info.value.message


def test_starttls_with_verification_disabled_by_the_test_override(mailbox: Mailbox):
	provider = IMAPProvider(config(mailbox, security="STARTTLS"), ssl_context=untrusted_tls())
	with provider:
		assert "INBOX" in {f.name for f in provider.list_folders()}
		assert isinstance(provider._imap.sock, ssl.SSLSocket)


def test_ssl_port_with_the_certificate_trusted(mailbox: Mailbox):
	trusting = ssl.create_default_context(cafile=str(mailbox.server.cert))  # verification stays on
	cfg = config(mailbox, security="SSL", port=mailbox.server.ssl_port)
	with IMAPProvider(cfg, ssl_context=trusting) as provider:
		assert "INBOX" in {f.name for f in provider.list_folders()}


def test_self_signed_certificate_is_rejected_by_default(mailbox: Mailbox):
	with pytest.raises(ConnectionFailed) as info:
		IMAPProvider(config(mailbox, security="STARTTLS")).connect()
	assert "certificate" in info.value.message
	assert not info.value.transient


def test_ssl_against_a_plain_port_names_starttls_at_once(mailbox: Mailbox):
	started = time.monotonic()
	with pytest.raises(ConnectionFailed) as info:
		IMAPProvider(config(mailbox, security="SSL", timeout=30), ssl_context=untrusted_tls()).connect()
	assert time.monotonic() - started < 5
	assert info.value.message.startswith(f"Port {mailbox.port} speaks plain IMAP")
	assert f"Choose Security STARTTLS for port {mailbox.port}" in info.value.fix


@pytest.mark.parametrize("security", ["None", "STARTTLS"])
def test_plain_against_the_ssl_port_names_ssl_within_the_handshake_timeout(mailbox: Mailbox, security):
	"""The account's timeout (30 s) is for commands; a port that stays silent is told apart in seconds."""
	ssl_port = mailbox.server.ssl_port
	started = time.monotonic()
	with pytest.raises(ConnectionFailed) as info:
		IMAPProvider(config(mailbox, port=ssl_port, security=security, timeout=30)).connect()
	elapsed = time.monotonic() - started
	assert HANDSHAKE_TIMEOUT <= elapsed < HANDSHAKE_TIMEOUT + 4, elapsed
	assert info.value.message.startswith(f"Port {ssl_port} expects SSL/TLS")
	assert f"Choose Security SSL for port {ssl_port}" in info.value.fix


def test_a_silent_port_that_is_not_tls_either_says_no_greeting():
	with socket.socket() as listener:  # accepts, then says nothing, in any protocol
		listener.bind(("127.0.0.1", 0))
		listener.listen(4)
		port = listener.getsockname()[1]
		cfg = AccountConfig("IMAP", "me@example.com", host="127.0.0.1", port=port, security="None", timeout=1)
		with pytest.raises(ConnectionFailed) as info:
			IMAPProvider(cfg).connect()
	assert "no IMAP greeting came within 1 seconds" in info.value.message
	assert "SSL" in info.value.fix


def test_a_server_slower_to_greet_than_the_handshake_wait_still_connects_within_the_account_timeout():
	"""A busy server (or one doing reverse DNS first) may greet after the short wait: that is not a Security
	mismatch, so it gets the account's whole timeout on a second connection."""
	delay = HANDSHAKE_TIMEOUT + 1.5
	with socket.socket() as listener:
		listener.bind(("127.0.0.1", 0))
		listener.listen(8)

		def serve():
			while True:
				try:
					conn, _ = listener.accept()
				except OSError:
					return
				threading.Thread(target=greet_late, args=(conn,), daemon=True).start()

		def greet_late(conn):
			with conn, contextlib.suppress(OSError), conn.makefile("rb") as lines:
				time.sleep(delay)
				conn.sendall(b"* OK slow but here\r\n")
				for line in lines:  # just enough IMAP for a password login (the TLS probe's hello is not read as it)
					tag, _, command = line.decode("latin-1").strip().partition(" ")
					if command.upper().startswith("CAPABILITY"):
						conn.sendall(b"* CAPABILITY IMAP4rev1 AUTH=PLAIN\r\n")
					conn.sendall(f"{tag} OK done\r\n".encode())

		threading.Thread(target=serve, daemon=True).start()
		port = listener.getsockname()[1]
		cfg = AccountConfig("IMAP", "me@example.com", host="127.0.0.1", port=port, security="None", timeout=20)
		cfg.password = "pw"
		provider = IMAPProvider(cfg)
		started = time.monotonic()
		provider.connect()
		provider.close()
		assert time.monotonic() - started >= HANDSHAKE_TIMEOUT + delay  # the short wait, then the patient one


def test_commands_get_the_account_timeout_after_the_handshake(mailbox: Mailbox):
	provider = IMAPProvider(config(mailbox, timeout=25))
	provider.connect()
	try:
		assert provider._imap.sock.gettimeout() == 25
	finally:
		provider.close()


# -- fetching --------------------------------------------------------------------------------------


def test_first_fetch_in_batches_then_nothing_then_only_new(mailbox: Mailbox):
	messages = [make_message(n) for n in range(1, 13)]
	messages[6] = make_message(7, size=5 * 1024 * 1024)  # UID 7: a 5 MB message
	mailbox.append("INBOX", messages)
	uidvalidity = mailbox.status("INBOX")["uidvalidity"]
	cfg = config(mailbox, batch_size=4, batch_bytes=100_000)

	batches = fetch_all(cfg)

	assert [[int(m.provider_id.rsplit("/", 1)[1]) for m in b.messages] for b in batches] == [
		[1, 2, 3, 4],
		[5, 6],  # closed before the big one: it would overflow batch_bytes
		[7],  # the 5 MB message alone
		[8, 9, 10, 11],
		[12],
	]
	assert numbers(batches) == list(range(1, 13))
	assert [b.remaining for b in batches] == [8, 6, 5, 1, 0]
	assert [b.cursor for b in batches] == [
		{"folders": {"INBOX": {"uidvalidity": uidvalidity, "last_uid": last}}} for last in (4, 6, 7, 11, 12)
	]
	assert all(b.folder == "INBOX" for b in batches)
	big = batches[2].messages[0]
	assert len(big.raw) > 5 * 1024 * 1024
	assert big.provider_id == f"INBOX/{uidvalidity}/7"
	assert not big.from_sent_folder
	assert isinstance(big.received_at, datetime) and big.received_at.tzinfo is None
	assert abs(big.received_at - datetime.utcnow()) < timedelta(minutes=5)

	# Batches own their cursors: changing one changes no other.
	batches[0].cursor["folders"]["INBOX"]["last_uid"] = 999
	assert batches[1].cursor["folders"]["INBOX"]["last_uid"] == 6

	final = batches[-1].cursor
	assert fetch_all(cfg, final) == []

	mailbox.append("INBOX", [make_message(n) for n in (13, 14, 15)])
	more = fetch_all(cfg, final)
	assert numbers(more) == [13, 14, 15]
	assert more[-1].cursor == {"folders": {"INBOX": {"uidvalidity": uidvalidity, "last_uid": 15}}}


def test_nothing_new_when_the_newest_message_was_deleted(mailbox: Mailbox):
	# UIDNEXT moved past last_uid but no message is above it: "UID 4:*" still matches UID 3 (the highest).
	mailbox.append("INBOX", [make_message(n) for n in range(1, 4)])
	cfg = config(mailbox)
	cursor = fetch_all(cfg)[-1].cursor
	mailbox.append("INBOX", [make_message(4)])
	mailbox.delete("INBOX", [4])
	assert mailbox.uids("INBOX") == [1, 2, 3]
	assert fetch_all(cfg, cursor) == []
	mailbox.append("INBOX", [make_message(5)])
	assert [m.provider_id.rsplit("/", 1)[1] for b in fetch_all(cfg, cursor) for m in b.messages] == ["5"]


def test_resume_from_a_mid_run_cursor(mailbox: Mailbox):
	mailbox.append("INBOX", [make_message(n) for n in range(1, 11)])
	cfg = config(mailbox, batch_size=3)
	full = fetch_all(cfg)
	assert [len(b.messages) for b in full] == [3, 3, 3, 1]

	# The run "crashed" after committing batch 1: the next run starts at batch 2, no overlap, no gap.
	resumed = fetch_all(cfg, full[0].cursor)
	assert numbers(resumed) == list(range(4, 11))
	assert [[m.provider_id for m in b.messages] for b in resumed] == [
		[m.provider_id for m in b.messages] for b in full[1:]
	]
	assert resumed[-1].cursor == full[-1].cursor


def test_fetch_leaves_seen_flags_alone(mailbox: Mailbox):
	mailbox.append("INBOX", [make_message(1), make_message(2)])
	mailbox.append("INBOX", [make_message(3)], flags=["\\Seen", "\\Flagged"])
	before = mailbox.flags("INBOX")
	assert before == {1: set(), 2: set(), 3: {"\\Seen", "\\Flagged"}}

	assert numbers(fetch_all(config(mailbox))) == [1, 2, 3]

	assert mailbox.flags("INBOX") == before


def test_sync_start_date(mailbox: Mailbox):
	mailbox.append("INBOX", [make_message(1)], date=datetime(2023, 12, 30, 12, 0))
	mailbox.append("INBOX", [make_message(2)], date=datetime(2024, 1, 2, 12, 0))
	mailbox.append("INBOX", [make_message(3)], date=datetime(2023, 6, 1, 12, 0))
	mailbox.append("INBOX", [make_message(4)], date=datetime(2024, 3, 1, 8, 30))
	batches = fetch_all(config(mailbox, sync_start=date(2024, 1, 1)))
	assert numbers(batches) == [2, 4]
	assert [m.received_at for b in batches for m in b.messages] == [
		datetime(2024, 1, 2, 12, 0),
		datetime(2024, 3, 1, 8, 30),
	]


def test_uidvalidity_change_refetches_the_folder(mailbox: Mailbox):
	mailbox.append("INBOX", [make_message(n) for n in range(1, 4)])
	cfg = config(mailbox)
	first = fetch_all(cfg)
	old = first[-1].cursor["folders"]["INBOX"]["uidvalidity"]
	assert fetch_all(cfg, first[-1].cursor) == []

	mailbox.set_uidvalidity("INBOX", old + 1000)
	again = fetch_all(cfg, first[-1].cursor)

	assert numbers(again) == [1, 2, 3]  # all again: correct, the app dedupes by message identity
	assert again[-1].cursor == {"folders": {"INBOX": {"uidvalidity": old + 1000, "last_uid": 3}}}
	assert again[0].messages[0].provider_id == f"INBOX/{old + 1000}/1"


def test_bidirectional_reads_sent_inbound_does_not(mailbox: Mailbox):
	mailbox.append("INBOX", [make_message(1)])
	mailbox.append("Sent", [make_message(2, sender="me@example.com", to="bob@example.org")])

	inbound = fetch_all(config(mailbox))
	assert numbers(inbound) == [1]
	assert set(inbound[-1].cursor["folders"]) == {"INBOX"}

	both = fetch_all(config(mailbox, direction=BIDIRECTIONAL))
	assert [(b.folder, [m.from_sent_folder for m in b.messages]) for b in both] == [
		("INBOX", [False]),
		("Sent", [True]),
	]
	assert numbers(both) == [1, 2]
	assert both[-1].remaining == 0
	assert set(both[-1].cursor["folders"]) == {"INBOX", "Sent"}
	assert both[1].messages[0].provider_id.startswith("Sent/")


def test_junk_is_never_read_even_when_configured(mailbox: Mailbox):
	mailbox.append("INBOX", [make_message(1)])
	mailbox.append("Junk", [make_message(2)])
	provider = IMAPProvider(config(mailbox, folders=["INBOX", "Junk"], direction=BIDIRECTIONAL))
	with provider:
		batches = list(provider.fetch(None))
	assert numbers(batches) == [1]
	assert "Junk" not in batches[-1].cursor["folders"]
	assert provider.skipped_folders == ["Junk"]


def test_configured_folders_replace_inbox(mailbox: Mailbox):
	mailbox.create("Customers")
	mailbox.append("INBOX", [make_message(1)])
	mailbox.append("Customers", [make_message(2), make_message(3)])
	batches = fetch_all(config(mailbox, folders=["Customers"]))
	assert numbers(batches) == [2, 3]
	assert {b.folder for b in batches} == {"Customers"}


def test_missing_configured_folder(mailbox: Mailbox):
	with pytest.raises(FolderMissing) as info:
		fetch_all(config(mailbox, folders=["INBOX", "Kunden"]))
	assert '"Kunden"' in info.value.message
	assert info.value.code == "folder_missing"


def test_manual_selection_fetches_only_flagged_mail(mailbox: Mailbox):
	mailbox.append("INBOX", [make_message(1), make_message(2)])
	mailbox.append("INBOX", [make_message(3)], flags=["EmailSync"])
	mailbox.append("INBOX", [make_message(4), make_message(5)])
	mailbox.set_flags("INBOX", [5], ["EmailSync"])
	cfg = config(mailbox, direction=MANUAL_SELECTION)

	first = fetch_all(cfg)
	assert numbers(first) == [3, 5]
	state = first[-1].cursor["folders"]["INBOX"]
	assert state["highestmodseq"] > 0  # Dovecot has CONDSTORE: later runs ask only for changes
	assert fetch_all(cfg, first[-1].cursor) == []

	mailbox.set_flags("INBOX", [2], ["EmailSync"])
	second = fetch_all(cfg, first[-1].cursor)
	assert numbers(second) == [2]
	assert second[-1].cursor["folders"]["INBOX"]["highestmodseq"] > state["highestmodseq"]
	assert mailbox.flags("INBOX")[2] == {"EmailSync"}  # still unread: nothing but our STORE changed it


def test_manual_selection_without_condstore_searches_all_flagged(mailbox: Mailbox):
	mailbox.append("INBOX", [make_message(1)], flags=["EmailSync"])
	mailbox.append("INBOX", [make_message(2)])
	provider = IMAPProvider(config(mailbox, direction=MANUAL_SELECTION))
	with provider:
		provider._caps.discard("CONDSTORE")  # behave as with a server that lacks it
		first = list(provider.fetch(None))
		assert numbers(first) == [1]
		assert "highestmodseq" not in first[-1].cursor["folders"]["INBOX"]
		assert numbers(list(provider.fetch(first[-1].cursor))) == [1]  # again each run; the app dedupes


def test_manual_selection_with_a_custom_keyword(mailbox: Mailbox):
	mailbox.append("INBOX", [make_message(1)], flags=["EmailSync"])
	mailbox.append("INBOX", [make_message(2)], flags=["CRM"])
	assert numbers(fetch_all(config(mailbox, direction=MANUAL_SELECTION, manual_keyword="CRM"))) == [2]


def test_non_ascii_folder_names_round_trip(mailbox: Mailbox):
	# Created with names encoded by hand, so the provider's own encoder is not what makes this pass.
	mailbox.create("Entw&APw-rfe")
	mailbox.create("&BBcEMAQ6BDAENwRL-")  # Заказы
	mailbox.append("Entw&APw-rfe", [make_message(1), make_message(2)])
	mailbox.append("&BBcEMAQ6BDAENwRL-", [make_message(3)])
	cfg = config(mailbox, folders=["Entwürfe", "Заказы"])

	with IMAPProvider(cfg) as provider:
		assert {"Entwürfe", "Заказы"} <= {f.name for f in provider.list_folders()}
		batches = list(provider.fetch(None))

	assert [(b.folder, numbers([b])) for b in batches] == [("Entwürfe", [1, 2]), ("Заказы", [3])]
	assert batches[0].messages[0].provider_id.startswith("Entwürfe/")
	assert set(batches[-1].cursor["folders"]) == {"Entwürfe", "Заказы"}

	# A name never listed on this connection is encoded by the provider itself.
	with IMAPProvider(cfg) as fresh:
		assert fresh._examine(Folder("Заказы")).exists == 1


def test_empty_new_folder_records_its_cursor(mailbox: Mailbox):
	batches = fetch_all(config(mailbox))
	assert len(batches) == 1 and batches[0].messages == []
	assert batches[0].cursor["folders"]["INBOX"]["last_uid"] == 0
	assert fetch_all(config(mailbox), batches[0].cursor) == []


def test_test_counts_what_a_first_sync_reads(mailbox: Mailbox):
	mailbox.append("INBOX", [make_message(n) for n in range(1, 4)])
	mailbox.append("Sent", [make_message(4)])
	result = IMAPProvider(config(mailbox, direction=BIDIRECTIONAL)).test()
	assert result.ok
	assert "INBOX, Sent: 4 messages" in result.message


# -- wire formats (pure functions) -----------------------------------------------------------------


@pytest.mark.parametrize(
	"text, wire",
	[
		("INBOX", "INBOX"),
		("Entwürfe", "Entw&APw-rfe"),
		("Tom & Jerry", "Tom &- Jerry"),
		("~peter/mail/台北/日本語", "~peter/mail/&U,BTFw-/&ZeVnLIqe-"),  # RFC 3501 5.1.3
		("Заказы", "&BBcEMAQ6BDAENwRL-"),
		("😀", "&2D3eAA-"),
	],
)
def test_modified_utf7(text, wire):
	assert encode_mutf7(text) == wire
	assert decode_mutf7(wire) == text


def test_list_parsing_quoted_literal_and_name_fallbacks():
	data = [
		b'(\\HasNoChildren) "." INBOX',
		b'(\\HasNoChildren) "." "INBOX.Sent Items"',
		b'(\\HasNoChildren) "." "INBOX.Spam"',
		b'(\\Noselect \\HasChildren) "." "Archive"',
		(b'(\\HasNoChildren) "." {13}', b'Say "hi" now'),
		b"",
		b'(\\HasNoChildren) "." "Entw&APw-rfe"',
		b'(\\HasNoChildren \\Trash) "." "Papierkorb"',
		b'(\\HasNoChildren) "." "Trash"',
		b'(\\HasNoChildren) NIL "Quote\\\\d \\"x\\""',
	]
	folders = {f.name: (f.role, f.selectable, raw) for f, raw in folders_from_list(data)}
	assert folders == {
		"INBOX": ("inbox", True, "INBOX"),
		"INBOX.Sent Items": ("sent", True, "INBOX.Sent Items"),
		"INBOX.Spam": ("junk", True, "INBOX.Spam"),
		"Archive": ("", False, "Archive"),
		'Say "hi" now': ("", True, 'Say "hi" now'),
		"Entwürfe": ("", True, "Entw&APw-rfe"),
		"Papierkorb": ("trash", True, "Papierkorb"),
		"Trash": ("", True, "Trash"),  # a real \Trash exists, so the name alone means nothing
		'Quote\\d "x"': ("", True, 'Quote\\d "x"'),
	}


def test_uid_sets_compress_and_chunk():
	assert list(uid_sets([5, 1, 2, 3, 7, 8, 10])) == ["1:3,5,7:8,10"]
	chunks = list(uid_sets(range(1, 2000, 2), max_chars=100))
	assert all(len(c) <= 100 for c in chunks)
	assert [int(u) for c in chunks for u in c.split(",")] == list(range(1, 2000, 2))


def test_internaldate():
	assert parse_internaldate(b"17-Jul-1996 02:44:25 -0700") == datetime(1996, 7, 17, 9, 44, 25)
	assert parse_internaldate(b' 7-Jan-2024 23:30:00 +0100') == datetime(2024, 1, 7, 22, 30)
	assert parse_internaldate(b"garbage") is None
	assert parse_internaldate(None) is None


def test_a_server_that_is_not_imap():
	# Not a mock of IMAP: a real listening socket that closes at once, like a broken proxy.
	with socket.socket() as server:
		server.bind(("127.0.0.1", 0))
		server.listen()
		port = server.getsockname()[1]
		cfg = AccountConfig("IMAP", "me@example.com", host="127.0.0.1", port=port, security="None", timeout=2)
		provider = IMAPProvider(cfg)

		def accept_and_close():
			conn, _ = server.accept()
			conn.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")
			conn.close()

		thread = threading.Thread(target=accept_and_close)
		thread.start()
		with pytest.raises(ConnectionFailed) as info:
			provider.connect()
		thread.join()
	assert "did not answer like an IMAP server" in info.value.message
