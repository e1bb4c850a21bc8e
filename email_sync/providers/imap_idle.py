"""IMAP IDLE (RFC 2177): tell the caller, within a second or two, that new mail reached a mailbox folder.

One `IdleWatcher` holds one connection to one folder, on a thread of its own:

- it logs in as the sync does (IMAPProvider.connect: TLS, STARTTLS, passwords, XOAUTH2), EXAMINEs the folder
  (read-only) and sends IDLE;
- `* n EXISTS` and `* n RECENT` (and, with `watch_flags`, `* n FETCH`: a keyword set in a mail client) call
  `on_news`, debounced: the first at once, any more within `debounce` seconds once at the end of it;
- IDLE is ended (DONE) and sent again every `reidle_after` seconds, before the 29 minutes after which servers
  may drop an idle client; a server that does not answer DONE within `timeout` counts as a dropped connection;
- any failure (network, BYE, a refused login, a missing folder) closes the connection and reconnects after a
  delay that doubles from `backoff_start` up to `backoff_max`; a connection that stayed up `stable_after`
  seconds starts the doubling over. Each (re)connect also calls `on_news`: mail may have come meanwhile;
- TCP keepalives make a connection that died silently fail within minutes, not at the next re-IDLE;
- `stop()` ends IDLE, logs out and returns within about a second.

News only says "look at this mailbox": the sync reads from its cursor, so a spurious or repeated call costs
a cursor check, and a missed one is caught by polling.

Bounded: lines longer than MAX_LINE bytes drop the connection; nothing a server sends makes it loop or hold
more than one line. After login the connection is read with select() on the socket and our own line buffer
(imaplib's blocking reader cannot wait with a deadline without breaking its file object).
"""

from __future__ import annotations

import contextlib
import imaplib
import re
import select
import socket
import ssl
import threading
import time
from collections.abc import Callable

from email_sync.providers.base import ProviderError
from email_sync.providers.imap import IMAPProvider, _quote, encode_mutf7

MAX_LINE = 64 * 1024  # bytes; IDLE responses are a few dozen
REIDLE_AFTER = 25 * 60  # seconds; RFC 2177 servers may log out a client idle for 30 minutes
STABLE_AFTER = 60.0  # seconds up after which a drop is retried quickly again

_UNTAGGED = re.compile(rb"\* (\d{1,10}) (EXISTS|RECENT|FETCH|EXPUNGE)\b", re.IGNORECASE)

# What a watcher is doing, for the listener's heartbeat and logs.
CONNECTING, WATCHING, RETRYING, STOPPED = "connecting", "watching", "retrying", "stopped"


class IdleUnsupported(ProviderError):
	"""The server does not offer IDLE: the account is left to polling."""

	code = "idle_unsupported"
	fix = "Nothing to do: the account is polled every minute instead."


class _Dropped(Exception):
	"""The server closed or broke the connection, or did not answer in time."""


class IdleWatcher:
	"""Watch `folder` of the mailbox `provider` logs into, calling `on_news(reason)` when mail arrives.

	`provider` may be replaced (`watcher.provider = ...`) while running: the next (re)connect uses it, e.g.
	with refreshed OAuth tokens. Callbacks run on the watcher's thread and must be quick; they never raise into
	it. `on_state(state, detail)` reports CONNECTING, WATCHING, RETRYING (detail: the error) and STOPPED."""

	def __init__(
		self,
		provider: IMAPProvider,
		on_news: Callable[[str], None],
		*,
		folder: str = "INBOX",
		watch_flags: bool = False,
		reidle_after: float = REIDLE_AFTER,
		debounce: float = 2.0,
		backoff_start: float = 1.0,
		backoff_max: float = 300.0,
		stable_after: float = STABLE_AFTER,
		on_state: Callable[[str, str], None] | None = None,
		name: str = "",
	):
		self.provider = provider
		self.on_news = on_news
		self.on_state = on_state
		self.folder = folder or "INBOX"
		self.watch_flags = watch_flags
		self.reidle_after = reidle_after
		self.debounce = debounce
		self.backoff_start = backoff_start
		self.backoff_max = backoff_max
		self.stable_after = stable_after
		self.name = name or provider.config.address
		self.state, self.detail = STOPPED, ""
		# Counters, for the listener's heartbeat and for tests.
		self.connects = 0
		self.idles = 0  # IDLE commands the server accepted
		self.delays: list[float] = []  # each wait before a reconnect, in order (last 50)
		self._stop = threading.Event()
		self._wake_r, self._wake_w = socket.socketpair()
		self._thread: threading.Thread | None = None
		self._last_news = float("-inf")
		self._news_pending = ""  # the reason to tell at the end of the debounce window, if any

	# -- lifecycle ---------------------------------------------------------------------------------

	def start(self) -> IdleWatcher:
		self._thread = threading.Thread(target=self.run, name=f"imap-idle {self.name}", daemon=True)
		self._thread.start()
		return self

	def stop(self, wait: float = 5.0) -> None:
		"""End IDLE, log out and let the thread finish (waiting at most `wait` seconds for it)."""
		self._stop.set()
		with contextlib.suppress(OSError):
			self._wake_w.send(b"x")
		self.join(wait)

	def join(self, wait: float) -> None:
		if wait > 0 and self._thread and self._thread is not threading.current_thread():
			self._thread.join(wait)

	@property
	def alive(self) -> bool:
		return bool(self._thread and self._thread.is_alive())

	def run(self) -> None:
		"""Connect, IDLE, reconnect with backoff; until stop()."""
		try:
			self._run()
		finally:
			for sock in (self._wake_r, self._wake_w):
				with contextlib.suppress(OSError):
					sock.close()

	def _run(self) -> None:
		delay = self.backoff_start
		while not self._stop.is_set():
			started = time.monotonic()
			try:
				self._session()
			except Exception as e:  # noqa: BLE001 - whatever broke this connection, the next one may work
				if self._stop.is_set():
					break
				if time.monotonic() - started >= self.stable_after:
					delay = self.backoff_start  # it was up for a while: this is a fresh drop, not a failing server
				self._set_state(RETRYING, _reason(e))
				self.delays = [*self.delays[-49:], delay]
				self._wait(delay)
				delay = min(delay * 2, self.backoff_max)
		self._set_state(STOPPED, "")

	# -- one connection ----------------------------------------------------------------------------

	def _session(self) -> None:
		provider = self.provider
		self._set_state(CONNECTING, self.detail)  # the last error stays visible until a connection works
		provider.connect()
		try:
			imap = provider._imap  # the logged-in imaplib connection IMAPProvider keeps (same package)
			if "IDLE" not in provider._caps:  # upper case, as the server announced them after login
				raise IdleUnsupported(f"{provider.host} does not offer IMAP IDLE.")
			self._examine(imap)
			_keepalive(imap.sock)
			self.connects += 1
			self._news("connected")  # whatever came while we were not watching
			reader = _LineReader(imap.sock, self._wake_r, provider.config.timeout)
			while not self._stop.is_set():
				self._idle(imap.sock, reader)
		finally:
			provider.close()  # LOGOUT, quietly and in bounded time

	def _examine(self, imap: imaplib.IMAP4) -> None:
		wire = "INBOX" if self.folder.upper() == "INBOX" else encode_mutf7(self.folder)
		try:
			typ, data = imap.select(_quote(wire), True)
		except imaplib.IMAP4.abort as e:
			raise _Dropped(str(e)) from None
		if typ != "OK":
			raise ProviderError(f'The folder "{self.folder}" cannot be opened: {_text(data)}.')

	def _idle(self, sock, reader: _LineReader) -> None:
		"""One IDLE command: until it is time to send it again, or stop()."""
		tag = b"ESI%d" % (self.idles + 1)
		sock.sendall(tag + b" IDLE\r\n")
		while True:  # untagged lines may come before the continuation
			line = reader.line(reader.timeout)
			if line is None:
				raise _Dropped("the server did not accept IDLE in time")
			if line.startswith(b"+"):
				break
			self._handle(line, tag)
		self.idles += 1
		self._set_state(WATCHING, "")
		reidle_at = time.monotonic() + self.reidle_after
		while not self._stop.is_set():
			now = time.monotonic()
			until = reidle_at
			if self._news_pending:
				until = min(until, self._last_news + self.debounce)
			if self._news_pending and now >= self._last_news + self.debounce:
				reason, self._news_pending = self._news_pending, ""
				self._fire(reason)
				continue
			if now >= reidle_at:
				break
			line = reader.line(max(0.0, until - now), wake=True)
			if line is not None:
				self._handle(line, tag)
		sock.sendall(b"DONE\r\n")
		deadline = time.monotonic() + reader.timeout
		while True:  # to our tagged answer
			line = reader.line(max(0.0, deadline - time.monotonic()))
			if line is None:
				raise _Dropped("the server did not end IDLE in time")
			if self._handle(line, tag):
				return

	def _handle(self, line: bytes, tag: bytes) -> bool:
		"""Act on one server line; True for the tagged end of our IDLE."""
		if line.startswith(tag + b" "):
			status = line[len(tag) + 1 :].split(b" ", 1)[0].upper()
			if status != b"OK":
				raise ProviderError(f"The server refused IDLE: {_text(line)}.")
			return True
		if line[:6].upper() == b"* BYE ":
			raise _Dropped(f"the server closed the connection ({_text(line[6:])})")
		match = _UNTAGGED.match(line)
		if match:
			kind = match.group(2).upper()
			if kind == b"EXISTS" or (kind == b"RECENT" and int(match.group(1))) or (kind == b"FETCH" and self.watch_flags):
				self._news("new mail")
		return False

	# -- news --------------------------------------------------------------------------------------

	def _news(self, reason: str) -> None:
		if time.monotonic() - self._last_news >= self.debounce:
			self._fire(reason)
		else:
			self._news_pending = self._news_pending or reason  # told once more when the debounce window ends

	def _fire(self, reason: str) -> None:
		self._last_news = time.monotonic()
		with contextlib.suppress(Exception):
			self.on_news(reason)

	def _set_state(self, state: str, detail: str) -> None:
		self.state, self.detail = state, detail
		if self.on_state:
			with contextlib.suppress(Exception):
				self.on_state(state, detail)

	def _wait(self, seconds: float) -> None:
		self._stop.wait(seconds)


class _LineReader:
	"""CRLF-terminated lines from a (TLS) socket, each waited for with a deadline, at most MAX_LINE bytes."""

	def __init__(self, sock, wake: socket.socket | None = None, timeout: float = 30.0):
		self.sock = sock
		self.wake = wake
		self.timeout = timeout or 30.0
		self.buffer = bytearray()

	def line(self, wait: float, wake: bool = False) -> bytes | None:
		"""The next line without its CRLF; None when `wait` seconds pass first, or (with `wake`) when the
		wake-up socket is written to. Raises _Dropped when the connection ends or a line is too long."""
		deadline = time.monotonic() + wait
		while True:
			end = self.buffer.find(b"\n")
			if end >= 0:
				line = bytes(self.buffer[:end]).rstrip(b"\r")
				del self.buffer[: end + 1]
				return line
			if len(self.buffer) > MAX_LINE:
				raise _Dropped(f"the server sent a line over {MAX_LINE} bytes")
			pending = isinstance(self.sock, ssl.SSLSocket) and self.sock.pending()
			if not pending:
				watched = [self.sock, self.wake] if wake and self.wake is not None else [self.sock]
				ready, _, _ = select.select(watched, [], [], max(0.0, deadline - time.monotonic()))
				if self.wake in ready:
					return None  # stop() was called: the caller checks why
				if not ready:
					return None
			try:
				data = self.sock.recv(16384)
			except (ssl.SSLWantReadError, BlockingIOError):
				continue  # a partial TLS record: wait for the rest
			except (OSError, ValueError) as e:
				raise _Dropped(f"the connection broke: {e}") from None
			if not data:
				raise _Dropped("the server closed the connection")
			self.buffer += data


def _keepalive(sock) -> None:
	"""TCP keepalives: a connection that died silently (a NAT or firewall forgot it) fails within about two
	minutes instead of at the next re-IDLE, and the watcher reconnects."""
	options = [(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)]
	for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 15), ("TCP_KEEPCNT", 4)):
		if hasattr(socket, name):  # Linux names; other systems keep their defaults
			options.append((socket.IPPROTO_TCP, getattr(socket, name), value))
	for level, option, value in options:
		with contextlib.suppress(OSError):
			sock.setsockopt(level, option, value)


def _reason(e: Exception) -> str:
	if isinstance(e, ProviderError) and not e.transient:
		return f"{e.message} {e.fix}".strip()  # the user has something to do
	return str(e) or type(e).__name__


def _text(value) -> str:
	if isinstance(value, list):
		value = b" ".join(v for v in value if isinstance(v, bytes))
	if isinstance(value, bytes):
		value = value.decode("utf-8", "replace")
	return str(value).strip()[:300]
