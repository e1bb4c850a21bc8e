"""Real-time for IMAP: the listener behind `bench --site SITE email-sync listen`.

One IMAP IDLE connection (providers/imap_idle.py, a thread each) per Active IMAP account whose Frequency is
Real-time: IMAP accounts, and Gmail or Microsoft accounts that read mail through IMAP (XOAUTH2). New mail
queues a sync of that account (tasks.enqueue_sync, whose job id keeps one queued per account); while the
account's sync is running the news waits for it to end, because that run may have read the folder already.

The set of accounts is read again every `refresh_every` seconds: accounts added or made Real-time get a
connection, deactivated ones lose it, changed connection settings or credentials reconnect it, refreshed
OAuth tokens are used at the next reconnect. Tokens an IDLE login refreshes are stored from this thread
(the watchers never touch the database).

Each listener beats a heartbeat into the site's Redis cache (a key per listener under HEARTBEAT_KEY, lapsing
after HEARTBEAT_TTL seconds): that it runs, where, and what each connection is doing. `email-sync doctor`
and `email-sync status` read them all (several listeners may share a site's accounts, see `only`).
Polling every minute stays on for these accounts: it is the fallback when the listener or a connection is
down, and costs a cursor check when the listener already caught the mail.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import socket
import threading
import time
from collections.abc import Callable, Collection

import frappe
from frappe.utils import now_datetime

from email_sync.providers.base import MANUAL_SELECTION, ProviderError
from email_sync.providers.imap_idle import REIDLE_AFTER, IdleWatcher
from email_sync.sync.context import account_config, provider_for, store_tokens
from email_sync.sync.tasks import enqueue_sync, job_id

HEARTBEAT_KEY = "email_sync:imap_listener"
HEARTBEAT_TTL = 90  # seconds; a listener beats every HEARTBEAT_EVERY
HEARTBEAT_EVERY = 15
XOAUTH2 = "IMAP (XOAUTH2)"


def realtime_imap_accounts(only: Collection[str] | None = None) -> list[str]:
	"""Active accounts on Real-time that read their mail over IMAP: the ones a listener watches (of `only`)."""
	filters = {"status": "Active", "frequency": "Real-time"}
	if only is not None:
		filters["name"] = ("in", list(only) or [""])
	return frappe.get_all(
		"Email Sync Account",
		filters=filters,
		or_filters={"provider": "IMAP", "mail_access": XOAUTH2},
		pluck="name",
		order_by="name asc",
	)


def heartbeat() -> dict | None:
	"""What the running listeners last said, merged: {"listeners": [{pid, host, started, beat, queued}, ...],
	"accounts": {account: {state, detail, connects}}}; None when none has beaten lately."""
	listeners, accounts = [], {}
	for key in frappe.cache.get_keys(f"{HEARTBEAT_KEY}:"):
		# shared: the key is already the site's; expires: never from the per-request copy
		beat = frappe.cache.get_value(key, shared=True, expires=True)
		if beat:
			accounts.update(beat.pop("accounts", {}))
			listeners.append(beat)
	return {"listeners": listeners, "accounts": accounts} if listeners else None


class Listener:
	"""The listener's loop; `run(stop)` returns once `stop` is set, with every connection logged out."""

	def __init__(
		self,
		*,
		reidle_after: float = REIDLE_AFTER,
		refresh_every: float = 60.0,
		heartbeat_every: float = HEARTBEAT_EVERY,
		debounce: float = 2.0,
		backoff_max: float = 300.0,
		tick: float = 0.25,
		only: Collection[str] | None = None,
		log: Callable[[str], None] = print,
	):
		"""`only`: watch just these accounts (several listeners can share a site's accounts between them)."""
		self.only = set(only) if only else None
		self.reidle_after = reidle_after
		self.refresh_every = refresh_every
		self.heartbeat_every = heartbeat_every
		self.debounce = debounce
		self.backoff_max = backoff_max
		self.tick = tick
		self.log = log
		self.watchers: dict[str, tuple[str, IdleWatcher]] = {}  # account -> (settings fingerprint, watcher)
		self.errors: dict[str, str] = {}  # accounts that could not be watched, and why
		self.queued = 0  # syncs queued on news, for the heartbeat
		self.started = now_datetime()
		self._news: queue.SimpleQueue = queue.SimpleQueue()  # account names, from the watchers' threads
		self._tokens: queue.SimpleQueue = queue.SimpleQueue()  # (account, OAuthTokens), ditto
		self._pending: set[str] = set()
		self._next_refresh = self._next_beat = 0.0
		self._beat_key = f"{HEARTBEAT_KEY}:{socket.gethostname()}:{os.getpid()}:{id(self)}"

	def run(self, stop: threading.Event) -> None:
		failures = 0
		try:
			while not stop.is_set():
				try:
					self.step()
					failures = 0
				except Exception as e:  # noqa: BLE001 - the database or Redis went away: keep the connections, retry
					failures += 1
					self.log(f"Site unreachable ({e}); trying again.")
					_reconnect_database()
					stop.wait(min(2**failures, 60))
				stop.wait(self.tick)
		finally:
			self.close()

	def step(self) -> None:
		now = time.monotonic()
		if now >= self._next_refresh:
			self.refresh()
			self._next_refresh = now + self.refresh_every
		self._store_tokens()
		self._deliver()
		if now >= self._next_beat:
			self.beat()
			self._next_beat = now + self.heartbeat_every

	# -- accounts ----------------------------------------------------------------------------------

	def refresh(self) -> None:
		"""Match the connections to the accounts that want one now."""
		wanted = set(realtime_imap_accounts(self.only))
		for name in sorted(set(self.watchers) - wanted):
			self._drop(name, "no longer Active on Real-time")
		for name in list(self.errors):
			if name not in wanted:
				del self.errors[name]
		for name in sorted(wanted):
			try:
				self._watch(name)
			except Exception as e:  # noqa: BLE001 - one account's settings never stop the others being watched
				reason = f"{e.message} {e.fix}" if isinstance(e, ProviderError) else f"{type(e).__name__}: {e}"
				if self.errors.get(name) != reason:
					self.log(f"{name}: cannot be watched: {reason}")
				self.errors[name] = reason
			else:
				self.errors.pop(name, None)
		frappe.db.rollback()  # end the read snapshot, so the next refresh sees later changes

	def _watch(self, name: str) -> None:
		account = frappe.get_doc("Email Sync Account", name)
		config = account_config(account)
		config.on_tokens_refreshed = lambda tokens: self._tokens.put((name, tokens))
		provider = provider_for(account, config)
		folder = next(iter(config.folders), "") or "INBOX"
		fingerprint = _fingerprint(provider, folder, config.direction)
		current = self.watchers.get(name)
		if current and current[0] == fingerprint and current[1].alive:
			current[1].provider = provider  # same mailbox and login: fresh tokens for its next reconnect
			return
		if current:
			self._drop(name, "its connection settings changed" if current[1].alive else "its watcher ended")
		watcher = IdleWatcher(
			provider,
			lambda reason: self._news.put(name),
			folder=folder,
			watch_flags=config.direction == MANUAL_SELECTION,  # a keyword set in a mail client is news too
			reidle_after=self.reidle_after,
			debounce=self.debounce,
			backoff_max=self.backoff_max,
			on_state=lambda state, detail: self._state(name, state, detail),
			name=name,
		)
		self.watchers[name] = (fingerprint, watcher.start())
		self.log(f"{name}: watching {folder} on {provider.host}")

	def _drop(self, name: str, why: str) -> None:
		_, watcher = self.watchers.pop(name)
		watcher.stop()
		self._pending.discard(name)
		self.log(f"{name}: stopped watching: {why}")

	def _state(self, name: str, state: str, detail: str) -> None:
		if detail:
			self.log(f"{name}: {state}: {detail}")

	# -- news --------------------------------------------------------------------------------------

	def _deliver(self) -> None:
		while True:
			try:
				self._pending.add(self._news.get_nowait())
			except queue.Empty:
				break
		for name in sorted(self._pending):
			if name not in self.watchers:
				self._pending.discard(name)
			elif not _sync_running(name):  # else its run may be past the new mail: queue once it ends
				enqueue_sync(name, "Push")
				frappe.db.commit()  # enqueue_sync queues after the commit
				self._pending.discard(name)
				self.queued += 1
				self.log(f"{name}: new mail: sync queued")

	def _store_tokens(self) -> None:
		while True:
			try:
				name, tokens = self._tokens.get_nowait()
			except queue.Empty:
				return
			store_tokens(name, tokens)
			frappe.db.commit()

	# -- heartbeat ---------------------------------------------------------------------------------

	def status(self) -> dict:
		accounts = {name: {"state": w.state, "detail": w.detail, "connects": w.connects}
			for name, (_, w) in self.watchers.items()}  # fmt: skip
		for name, error in self.errors.items():
			accounts[name] = {"state": "error", "detail": error, "connects": 0}
		return {
			"pid": os.getpid(),
			"host": socket.gethostname(),
			"started": str(self.started),
			"beat": str(now_datetime()),
			"queued": self.queued,
			"accounts": accounts,
		}

	def beat(self) -> None:
		frappe.cache.set_value(self._beat_key, self.status(), expires_in_sec=HEARTBEAT_TTL)

	def close(self) -> None:
		watchers = [w for _, w in self.watchers.values()]
		for watcher in watchers:
			watcher.stop(wait=0)  # all at once: each logs out on its own thread
		deadline = time.monotonic() + 10  # one still connecting may hold on for its timeout: it is a daemon thread
		for watcher in watchers:
			watcher.join(max(0.0, deadline - time.monotonic()))
		self.watchers.clear()
		with contextlib.suppress(Exception):
			frappe.cache.delete_value(self._beat_key)


def _sync_running(name: str) -> bool:
	from frappe.utils.background_jobs import get_job
	from rq.job import JobStatus

	job = get_job(job_id(name))
	return bool(job) and job.get_status() == JobStatus.STARTED


def _fingerprint(provider, folder: str, direction: str) -> str:
	"""What, when it changes, needs a new connection: server, login, folder. A hash: it holds the password."""
	config = provider.config
	oauth = config.oauth.refresh_token if config.oauth else ""
	parts = (provider.host, provider.port, config.security, config.username, config.password, bool(oauth), folder,
		direction)  # fmt: skip
	# str() of each: the password is a Secret, whose repr is a mask that would hide a change
	return hashlib.sha256("\0".join(str(part) for part in parts).encode()).hexdigest()


def _reconnect_database() -> None:
	with contextlib.suppress(Exception):
		frappe.db.close()
	with contextlib.suppress(Exception):
		frappe.db.connect()
