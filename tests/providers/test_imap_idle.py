"""IdleWatcher against a real Dovecot on 127.0.0.1: new mail is news within seconds, IDLE is renewed on its
timer, a dropped connection is reconnected with growing delays, and stop() logs out at once. No mocks."""

from __future__ import annotations

import socket
import ssl
import threading
import time

import pytest
from dovecot import Mailbox, free_port
from test_imap import config, make_message
from test_imap_xoauth2 import box, gmail, gmail_config, google_provider, introspection, oauth_dovecot  # noqa: F401

from email_sync.providers.imap import IMAPProvider
from email_sync.providers.imap_idle import (
	MAX_LINE,
	RETRYING,
	STOPPED,
	WATCHING,
	IdleWatcher,
	_Dropped,
	_LineReader,
)


class Recorder:
	"""on_news and on_state for a watcher: what it said, when."""

	def __init__(self):
		self.news: list[tuple[float, str]] = []
		self.states: list[tuple[str, str]] = []
		self.changed = threading.Condition()

	def on_news(self, reason: str) -> None:
		with self.changed:
			self.news.append((time.monotonic(), reason))
			self.changed.notify_all()

	def on_state(self, state: str, detail: str) -> None:
		with self.changed:
			self.states.append((state, detail))
			self.changed.notify_all()

	def wait(self, predicate, seconds: float = 10.0) -> bool:
		with self.changed:
			return self.changed.wait_for(predicate, seconds)

	def news_after(self, moment: float) -> list[str]:
		return [reason for at, reason in self.news if at >= moment]


def watch(provider: IMAPProvider, recorder: Recorder, **options) -> IdleWatcher:
	options.setdefault("debounce", 0.2)
	return IdleWatcher(provider, recorder.on_news, on_state=recorder.on_state, **options).start()


def watching(watcher: IdleWatcher, recorder: Recorder, idles: int = 1) -> bool:
	return recorder.wait(lambda: watcher.state == WATCHING and watcher.idles >= idles)


@pytest.fixture
def recorder():
	return Recorder()


def test_new_mail_is_news_within_seconds(mailbox: Mailbox, recorder: Recorder):
	watcher = watch(IMAPProvider(config(mailbox)), recorder)
	try:
		assert watching(watcher, recorder)
		assert [reason for _, reason in recorder.news] == ["connected"]  # a (re)connect always looks once
		time.sleep(0.3)  # past the debounce window of that first look
		appended = time.monotonic()
		mailbox.append("INBOX", [make_message(1)])
		assert recorder.wait(lambda: recorder.news_after(appended), 5)
		assert recorder.news_after(appended) == ["new mail"]
		assert recorder.news[-1][0] - appended < 3
	finally:
		watcher.stop()


def test_over_tls_with_the_certificate_trusted(mailbox: Mailbox, recorder: Recorder):
	context = ssl.create_default_context(cafile=str(mailbox.server.cert))
	provider = IMAPProvider(config(mailbox, port=mailbox.server.ssl_port, security="SSL", host="localhost"), context)
	watcher = watch(provider, recorder)
	try:
		assert watching(watcher, recorder)
		time.sleep(0.3)
		appended = time.monotonic()
		mailbox.append("INBOX", [make_message(1), make_message(2)])
		assert recorder.wait(lambda: recorder.news_after(appended), 5)
	finally:
		watcher.stop()


def test_idle_is_sent_again_on_its_timer_on_the_same_connection(mailbox: Mailbox, recorder: Recorder):
	watcher = watch(IMAPProvider(config(mailbox)), recorder, reidle_after=0.3)
	try:
		assert watching(watcher, recorder, idles=4)
		assert watcher.connects == 1  # renewed, not reconnected
		appended = time.monotonic()
		mailbox.append("INBOX", [make_message(1)])
		assert recorder.wait(lambda: recorder.news_after(appended), 5)
		assert watcher.connects == 1
	finally:
		watcher.stop()


def test_reconnects_after_the_server_drops_the_connection(mailbox: Mailbox, recorder: Recorder):
	watcher = watch(IMAPProvider(config(mailbox)), recorder, backoff_start=0.1)
	try:
		assert watching(watcher, recorder)
		mailbox.server.doveadm("kick", mailbox.user.name)  # the server ends the session, as on a restart
		assert recorder.wait(lambda: watcher.connects == 2 and watcher.state == WATCHING)
		retry = next(detail for state, detail in recorder.states if state == RETRYING)
		assert "closed the connection" in retry or "broke" in retry
		assert watcher.delays == [0.1]
		# caught up after the gap (within the debounce window of the first look: at its end)
		assert recorder.wait(lambda: [reason for _, reason in recorder.news].count("connected") == 2, 2)
		time.sleep(0.3)
		appended = time.monotonic()
		mailbox.append("INBOX", [make_message(1)])
		assert recorder.wait(lambda: recorder.news_after(appended), 5)
	finally:
		watcher.stop()


def test_a_server_that_cannot_be_reached_is_retried_with_doubling_delays_up_to_the_cap(recorder: Recorder):
	from email_sync.providers.base import AccountConfig

	cfg = AccountConfig(provider="IMAP", address="a@example.com", host="127.0.0.1", port=free_port(),
		security="None", password="x", timeout=2)  # fmt: skip
	watcher = watch(IMAPProvider(cfg), recorder, backoff_start=0.05, backoff_max=0.2)
	try:
		assert recorder.wait(lambda: len(watcher.delays) >= 5)
		assert watcher.delays[:5] == [0.05, 0.1, 0.2, 0.2, 0.2]
		assert watcher.state == RETRYING and "connection refused" in watcher.detail
		assert not recorder.news
	finally:
		watcher.stop()


def test_a_refused_login_says_why_and_keeps_trying(mailbox: Mailbox, recorder: Recorder):
	watcher = watch(IMAPProvider(config(mailbox, password="wrong")), recorder, backoff_start=0.05, backoff_max=0.1)
	try:
		assert recorder.wait(lambda: watcher.delays)
		assert "rejected the login" in watcher.detail and "Check the username and password" in watcher.detail
		assert watcher.connects == 0 and not recorder.news
	finally:
		watcher.stop()


def test_stop_ends_idle_and_logs_out_at_once(mailbox: Mailbox, recorder: Recorder):
	watcher = watch(IMAPProvider(config(mailbox)), recorder)
	assert watching(watcher, recorder)
	assert mailbox.user.name in mailbox.server.doveadm("who")
	started = time.monotonic()
	watcher.stop()
	assert time.monotonic() - started < 2
	assert not watcher.alive and watcher.state == STOPPED
	deadline = time.monotonic() + 5
	while mailbox.user.name in mailbox.server.doveadm("who") and time.monotonic() < deadline:
		time.sleep(0.1)
	assert mailbox.user.name not in mailbox.server.doveadm("who")  # logged out, not left hanging


def test_a_burst_of_mail_is_told_once_then_once_more_after_the_window(mailbox: Mailbox, recorder: Recorder):
	watcher = watch(IMAPProvider(config(mailbox)), recorder, debounce=1.0)
	try:
		assert watching(watcher, recorder)
		time.sleep(1.1)
		appended = time.monotonic()
		for n in range(6):  # six separate APPENDs, each an EXISTS
			mailbox.append("INBOX", [make_message(n)])
		assert recorder.wait(lambda: len(recorder.news_after(appended)) >= 2, 5)
		time.sleep(1.5)
		told = [at for at, _ in recorder.news if at >= appended]
		assert len(told) == 2  # at once, and at the end of the window for the rest
		assert told[1] - told[0] >= 0.9
	finally:
		watcher.stop()


def test_a_keyword_set_in_a_mail_client_is_news_when_watching_flags(mailbox: Mailbox, recorder: Recorder):
	mailbox.append("INBOX", [make_message(1)])
	uid = mailbox.uids("INBOX")[0]
	watcher = watch(IMAPProvider(config(mailbox)), recorder, watch_flags=True)
	try:
		assert watching(watcher, recorder)
		time.sleep(0.3)
		flagged = time.monotonic()
		mailbox.set_flags("INBOX", [uid], ["EmailSync"])
		assert recorder.wait(lambda: recorder.news_after(flagged), 5)
	finally:
		watcher.stop()


def test_lines_are_read_across_packets_and_bounded():
	ours, theirs = socket.socketpair()
	try:
		reader = _LineReader(ours, timeout=1)
		theirs.sendall(b"* 3 EXI")
		assert reader.line(0.1) is None  # no whole line yet
		theirs.sendall(b"STS\r\n+ idling\r\n")
		assert reader.line(1) == b"* 3 EXISTS"
		assert reader.line(1) == b"+ idling"
		theirs.sendall(b"x" * (MAX_LINE + 10))
		with pytest.raises(_Dropped):
			while True:
				reader.line(1)
		theirs.close()
		with pytest.raises(_Dropped):
			_LineReader(ours).line(1)
	finally:
		ours.close()


def test_an_oauth_mailbox_is_watched_over_xoauth2_with_a_refreshed_token(box, gmail, introspection):  # noqa: F811
	refreshed = []
	cfg = gmail_config(box, gmail, refreshed, expires_in=10)  # expiring: refreshed before the login
	recorder = Recorder()
	watcher = watch(google_provider(cfg), recorder)
	try:
		assert watching(watcher, recorder), recorder.states
		assert gmail.refreshes == 1 and len(refreshed) == 1  # handed over for the site to store
		assert introspection.tokens == [refreshed[0].access_token]
		time.sleep(0.3)
		appended = time.monotonic()
		box.append("INBOX", [make_message(3)])
		assert recorder.wait(lambda: recorder.news_after(appended), 5)
	finally:
		watcher.stop()
