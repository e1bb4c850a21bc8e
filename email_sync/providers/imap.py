"""IMAP provider on the standard library's imaplib: read-only, resumable, in bounded batches.

Read-only: folders are opened with EXAMINE and bodies read with BODY.PEEK[], so no flag (\\Seen included)
and no message ever changes on the server.

Which mail: the configured folders (default INBOX), plus the Sent folder when bidirectional; junk/spam
folders never, even when configured. `sync_start` limits by INTERNALDATE. In manual selection mode only
messages carrying the keyword (default "EmailSync") are read, whatever their date: flagging is explicit.

Resumable: the cursor is plain JSON; per folder its UIDVALIDITY and the highest UID already handed out, and,
in manual selection mode on CONDSTORE servers, the HIGHESTMODSEQ seen:

    {"folders": {"INBOX": {"uidvalidity": 1700000000, "last_uid": 4711},
                 "Sent": {"uidvalidity": 1700000001, "last_uid": 815, "highestmodseq": 9120}}}

Bounded: sizes are read first (RFC822.SIZE) to plan batches of at most `batch_size` messages and about
`batch_bytes` bytes; only one batch of raw mail is held at a time.

Login: LOGIN with the password (AUTHENTICATE PLAIN for non-ASCII ones) or, for accounts with OAuth tokens and
no password, AUTHENTICATE XOAUTH2 with a Google or Microsoft access token (xoauth2.py).

Folder names: `Folder.name` and the cursor's keys are names as people read them ("Entwürfe"); on the wire
IMAP uses modified UTF-7 ("Entw&APw-rfe"). The raw name seen in LIST is remembered and used for EXAMINE;
a name never listed is encoded with `encode_mutf7`.
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import copy
import imaplib
import json
import re
import socket
import ssl
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone

from email_sync.providers.base import (
	BIDIRECTIONAL,
	MANUAL_SELECTION,
	AccountConfig,
	AuthenticationFailed,
	Batch,
	ConnectionFailed,
	FetchedMessage,
	Folder,
	FolderMissing,
	Provider,
	ProviderError,
	TestResult,
)

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

# RFC 6154 special-use attributes, lower-cased.
SPECIAL_USE_ROLES = {
	"\\sent": "sent",
	"\\junk": "junk",
	"\\trash": "trash",
	"\\drafts": "drafts",
	"\\archive": "archive",
	"\\all": "all",
}
# For servers without SPECIAL-USE: the usual names of the last path component, lower-cased.
NAME_ROLES = {
	"sent": "sent",
	"sent items": "sent",
	"sent messages": "sent",
	"sent mail": "sent",
	"junk": "junk",
	"spam": "junk",
	"junk e-mail": "junk",
	"junk email": "junk",
	"trash": "trash",
	"deleted items": "trash",
	"deleted messages": "trash",
	"drafts": "drafts",
}

SIZE_CHUNK = 1000  # UIDs per RFC822.SIZE request while planning batches
MAX_UID_SET = 1000  # characters of a UID set per command, to stay far below servers' line limits
LOGOUT_TIMEOUT = 5.0  # seconds; closing must never hang for the full timeout
# A server answers a connection at once: Security set wrong for the port (plain IMAP to an SSL port) shows as
# silence, so connecting and the greeting wait this long at most, whatever the account's timeout.
HANDSHAKE_TIMEOUT = 6.0  # seconds
PROBE_TIMEOUT = 3.0  # seconds, for the second look that tells which Security the port speaks
PLAIN_GREETINGS = (b"* OK", b"* PREAUTH", b"* BYE")
FETCH_ITEMS = "(UID RFC822.SIZE INTERNALDATE BODY.PEEK[])"
MAX_DROPS = 12  # reconnects after dropped FETCHes per provider: each message that drops it costs up to three


class IMAPProvider(Provider):
	"""Reads mail from an IMAP server. Pass `ssl_context` to trust other certificates (tests, private CAs).

	With `config.oauth` set and no password it logs in with AUTHENTICATE XOAUTH2 (see xoauth2.py), using the
	Google or Microsoft tokens of the account: `oauth_issuer` ("Google" or "Microsoft") says who issued them,
	by default inferred from the host (imap.gmail.com: Google; outlook.office365.com, imap-mail.outlook.com:
	Microsoft). `verify` (True, False or a CA bundle path) is for the issuer's token endpoint.
	"""

	def __init__(
		self,
		config: AccountConfig,
		ssl_context: ssl.SSLContext | None = None,
		*,
		oauth_issuer: str | None = None,
		verify: bool | str = True,
	):
		super().__init__(config)
		self.ssl_context = ssl_context
		self.oauth_issuer = oauth_issuer
		self.verify = verify
		self.skipped_folders: list[str] = []  # configured junk folders left out of the last fetch
		self._imap: imaplib.IMAP4 | None = None
		self._caps: set[str] = set()
		self._raw_names: dict[str, str] = {}  # display name -> name on the wire, from the last LIST
		self._selected: str | None = None  # the folder EXAMINEd last on this connection
		self._drops = 0  # connections the server dropped while handing out messages (see _answers)

	# -- connection --------------------------------------------------------------------------------

	@property
	def host(self) -> str:
		return self.config.host.strip()

	@property
	def port(self) -> int:
		return self.config.port or (993 if self._security() == "SSL" else 143)

	def connect(self) -> None:
		self.close()
		security = self._security()
		try:
			imap = self._greet(self._open_greeted_socket(self._handshake_timeout()))
		except _SlowGreeting:
			# Not a Security mismatch (the port does not speak TLS either): a slow server, given the account's
			# whole timeout on a new connection.
			imap = self._greet(self._open_greeted_socket(self.config.timeout), patient=True)
		imap.sock.settimeout(self.config.timeout)  # the handshake is over: commands get the account's timeout
		try:
			if security == "STARTTLS":
				self._starttls(imap)
			self._caps = {c.upper() for c in imap.capabilities}  # imaplib refreshes them after STARTTLS
			self._login(imap)
			self._caps = self._capabilities(imap)  # servers announce more (CONDSTORE...) after login
			imap.capabilities = tuple(sorted(self._caps))  # imaplib's enable() checks this tuple
			if {"CONDSTORE", "ENABLE"} <= self._caps:
				self._enable_condstore(imap)
		except BaseException:
			_quiet_logout(imap)
			raise
		self._imap = imap

	def close(self) -> None:
		imap, self._imap, self._selected = self._imap, None, None
		if imap is not None:
			_quiet_logout(imap)

	def _security(self) -> str:
		value = (self.config.security or "None").strip().upper()
		if value in ("SSL", "TLS", "SSL/TLS"):
			return "SSL"
		if value == "STARTTLS":
			return "STARTTLS"
		if value in ("NONE", "PLAIN", ""):
			return "None"
		raise ProviderError(
			f"Unknown security setting {self.config.security!r}.", fix="Choose SSL, STARTTLS or None."
		)

	def _context(self) -> ssl.SSLContext:
		return self.ssl_context or ssl.create_default_context()

	def _where(self) -> str:
		return f"{self.host}:{self.port}"

	def _open_socket(self) -> socket.socket:
		if not self.host:
			raise ConnectionFailed("No IMAP host is set.", fix="Enter the server name, for example imap.example.com.")
		try:
			return socket.create_connection((self.host, self.port), self._handshake_timeout())
		except socket.gaierror:
			raise ConnectionFailed(
				f"Could not find the mail server {self.host}: the name does not resolve.",
				fix="Check the host name (for example imap.example.com) and this site's DNS.",
			) from None
		except ConnectionRefusedError:
			raise ConnectionFailed(
				f"Could not reach {self._where()}: connection refused.",
				fix="Check the port (usually 993 for SSL, 143 for STARTTLS or None) and that the server accepts "
				"IMAP connections.",
			) from None
		except TimeoutError:
			raise ConnectionFailed(
				f"Could not reach {self._where()}: no answer within {self._handshake_timeout():g} seconds.",
				fix="Check the host and port, and that no firewall blocks this site from the mail server.",
			) from None
		except OSError as e:
			raise ConnectionFailed(f"Could not reach {self._where()}: {e.strerror or e}.") from None

	def _wrap_tls(self, sock: socket.socket) -> socket.socket:
		try:
			return self._context().wrap_socket(sock, server_hostname=self.host)
		except (ssl.SSLError, ssl.CertificateError, OSError) as e:
			sock.close()
			raise self._tls_error(e) from None

	def _tls_error(self, e: Exception) -> ConnectionFailed:
		if isinstance(e, ssl.SSLCertVerificationError):
			err = ConnectionFailed(
				f"The certificate of {self.host} is not trusted: {e.verify_message or e.reason}.",
				fix="Use the exact host name the server's certificate was issued for (ask your mail provider), "
				"or have a certificate from a trusted authority installed on the mail server.",
			)
			err.transient = False  # retrying will not make the certificate valid
			return err
		if self._security() == "SSL" and self._speaks_plain_imap():
			return ConnectionFailed(
				f"Port {self.port} speaks plain IMAP, not SSL/TLS from the start ({self._where()} answered "
				"unencrypted).",
				fix=f"Choose Security STARTTLS for port {self.port} (or None only on a trusted network), or enter the "
				"server's SSL port (usually 993).",
			)
		if isinstance(e, TimeoutError):
			return ConnectionFailed(
				f"{self._where()} did not complete a secure (TLS) connection within {self._handshake_timeout():g} "
				"seconds.",
				fix="Check that the Security setting matches the port: SSL usually uses port 993, "
				"STARTTLS and None use port 143.",
			)
		reason = getattr(e, "reason", None) or str(e)
		return ConnectionFailed(
			f"Could not set up a secure connection to {self._where()}: {reason}.",
			fix="Check that the Security setting matches the port: SSL usually uses port 993, "
			"STARTTLS and None use port 143.",
		)

	def _open_greeted_socket(self, timeout: float) -> socket.socket:
		"""A connected socket (TLS-wrapped for SSL) whose reads wait at most `timeout` seconds."""
		sock = self._open_socket()
		sock.settimeout(timeout)
		return self._wrap_tls(sock) if self._security() == "SSL" else sock

	def _greet(self, sock: socket.socket, patient: bool = False) -> imaplib.IMAP4:
		try:
			return _IMAP4(sock, self.host, self.port)
		except TimeoutError:
			sock.close()
			if not patient and self._security() != "SSL" and self._speaks_tls():
				raise ConnectionFailed(
					f"Port {self.port} expects SSL/TLS from the start: {self._where()} sends no plain IMAP greeting.",
					fix=f"Choose Security SSL for port {self.port}, or enter the server's STARTTLS port (usually 143).",
				) from None
			if not patient and self.config.timeout > self._handshake_timeout():
				raise _SlowGreeting from None
			waited = self.config.timeout if patient else self._handshake_timeout()
			raise ConnectionFailed(
				f"Connected to {self._where()}, but no IMAP greeting came within {waited:g} seconds.",
				fix="This port probably expects an encrypted connection from the start: set Security to SSL "
				"(usually port 993), or use port 143 for STARTTLS or None.",
			) from None
		except ssl.SSLError as e:
			raise self._tls_error(e) from None
		except (imaplib.IMAP4.error, OSError) as e:
			raise ConnectionFailed(
				f"{self._where()} did not answer like an IMAP server ({_text(e)}).",
				fix="Check the port and the Security setting: IMAP uses 993 with SSL, 143 with STARTTLS or None.",
			) from None

	def _handshake_timeout(self) -> float:
		return min(self.config.timeout, HANDSHAKE_TIMEOUT)

	# A second, short connection that only looks at what the port speaks, so a failure can name the fix.
	def _speaks_plain_imap(self) -> bool:
		"""Whether the port greets in plain text, as an IMAP server without implicit TLS does."""
		try:
			with socket.create_connection((self.host, self.port), PROBE_TIMEOUT) as probe:
				probe.settimeout(PROBE_TIMEOUT)
				return probe.recv(64).startswith(PLAIN_GREETINGS)
		except OSError:
			return False

	def _speaks_tls(self) -> bool:
		"""Whether the port answers a TLS hello (any certificate: nothing is sent or read past the handshake)."""
		context = ssl.create_default_context()
		context.check_hostname = False
		context.verify_mode = ssl.CERT_NONE
		try:
			with socket.create_connection((self.host, self.port), PROBE_TIMEOUT) as raw:
				raw.settimeout(PROBE_TIMEOUT)
				with context.wrap_socket(raw, server_hostname=self.host):
					return True
		except ssl.SSLError as e:  # a TLS alert is still TLS; a plain answer is not
			return getattr(e, "reason", "") not in ("WRONG_VERSION_NUMBER", "UNKNOWN_PROTOCOL", "RECORD_LAYER_FAILURE")
		except OSError:
			return False

	def _starttls(self, imap: imaplib.IMAP4) -> None:
		if "STARTTLS" not in {c.upper() for c in imap.capabilities}:
			raise ConnectionFailed(
				f"{self._where()} does not offer STARTTLS.",
				fix="Set Security to SSL (usually port 993), or to None only if the server is on a trusted network.",
			)
		try:
			imap.starttls(self._context())
		except (ssl.SSLError, ssl.CertificateError) as e:
			raise self._tls_error(e) from None
		except (imaplib.IMAP4.error, OSError) as e:
			raise ConnectionFailed(f"STARTTLS with {self._where()} failed: {_text(e)}.") from None

	def _login(self, imap: imaplib.IMAP4) -> None:
		if self.config.oauth is not None and not self.config.password:
			self._login_xoauth2(imap)
			return
		username = (self.config.username or self.config.address).strip()
		password = self.config.password or ""
		if "LOGINDISABLED" in self._caps:
			raise AuthenticationFailed(
				f"{self.host} does not accept passwords over an unencrypted connection.",
				fix="Set Security to STARTTLS (port 143) or SSL (port 993).",
			)
		try:
			if (username + password).isascii():
				imap.login(_quote(username), password)
			else:  # LOGIN is ASCII-only in imaplib; AUTHENTICATE PLAIN carries UTF-8
				# Built inside the callback: a bytes local here would show in a traceback's locals.
				imap.authenticate("PLAIN", lambda _: b"\0" + username.encode() + b"\0" + password.encode())
		except (imaplib.IMAP4.abort, OSError) as e:
			raise ConnectionFailed(f"The connection to {self.host} broke during login: {_text(e)}.") from None
		except imaplib.IMAP4.error as e:
			code, text = _response_code(_text(e))
			if code in ("UNAVAILABLE", "INUSE"):  # RFC 5530: a server-side problem, not the password
				raise ConnectionFailed(f"{self.host} cannot log you in right now: {text}.") from None
			raise AuthenticationFailed(
				f"{self.host} rejected the login for {username}: {text}.",
				fix="Check the username and password. Gmail and Microsoft 365 refuse normal passwords over IMAP: "
				"use an app password, or connect the account with the Gmail or Microsoft provider (OAuth).",
			) from None

	# -- XOAUTH2 ----------------------------------------------------------------------------------------

	def _login_xoauth2(self, imap: imaplib.IMAP4) -> None:
		"""AUTHENTICATE XOAUTH2 with the account's token; a refused stored token is refreshed and tried once more."""
		from email_sync.providers import xoauth2

		issuer = self._oauth_issuer()
		username = (self.config.username or self.config.address).strip()
		if any(c.startswith("AUTH=") for c in self._caps) and "AUTH=XOAUTH2" not in self._caps:
			raise AuthenticationFailed(
				f"{self.host} does not offer OAuth sign-in (XOAUTH2).",
				fix="Use the provider's own IMAP host (imap.gmail.com, outlook.office365.com), or log in with a "
				"password instead.",
			)
		stored = not xoauth2.needs_refresh(self.config.oauth, issuer)  # else the first token is a fresh one
		token = xoauth2.access_token_for(self.config, issuer=issuer, verify=self.verify)
		refusal = self._authenticate_xoauth2(imap, username, token)
		if refusal is None:
			return
		if stored:  # revoked, expired early or for another resource: one fresh token, one more try
			token = xoauth2.access_token_for(self.config, issuer=issuer, verify=self.verify, force_refresh=True)
			refusal = self._authenticate_xoauth2(imap, username, token)
			if refusal is None:
				return
		if xoauth2.has_imap_scope(self.config.oauth, issuer) is False:
			raise xoauth2.missing_scope_error(issuer, username)
		raise AuthenticationFailed(
			f"The mailbox refused the OAuth token: {self.host} did not accept the {issuer} sign-in for {username} "
			f"({refusal}).",
			fix=f"Check that the username is the address you signed in with. {xoauth2.reconnect_fix(issuer)} If it "
			"still fails, IMAP may be turned off for this mailbox: ask its administrator to enable it.",
		)

	def _authenticate_xoauth2(self, imap: imaplib.IMAP4, username: str, token: str) -> str | None:
		"""None once logged in, else what the server said. On a refusal XOAUTH2 servers first send a base64 JSON
		challenge ({"status":"400",...} from Gmail, {"status":"401",...} from Dovecot) that only an empty
		response ends; the tagged NO follows and the connection stays usable for another attempt."""
		from email_sync.providers import xoauth2

		challenges: list[bytes] = []

		def respond(challenge: bytes) -> bytes:
			challenges.append(challenge)
			return xoauth2.sasl_xoauth2(username, token) if len(challenges) == 1 else b""

		try:
			typ, data = imap.authenticate("XOAUTH2", respond)
		except (imaplib.IMAP4.abort, OSError) as e:
			raise ConnectionFailed(f"The connection to {self.host} broke during login: {_text(e)}.") from None
		except imaplib.IMAP4.error as e:
			code, text = _response_code(_text(e))
			if code in ("UNAVAILABLE", "INUSE"):  # RFC 5530: a server-side problem, not the token
				raise ConnectionFailed(f"{self.host} cannot log you in right now: {text}.") from None
			status = _xoauth2_status(challenges[1:])
			return f"{text}; status {status}" if status else text
		if typ != "OK":  # imaplib raises on NO and BAD; kept for safety
			return _text(data)
		return None

	def _oauth_issuer(self) -> str:
		from email_sync.providers import xoauth2

		if self.oauth_issuer:
			return xoauth2.normalise_issuer(self.oauth_issuer)
		issuer = xoauth2.issuer_for_host(self.host) or xoauth2.issuer_for_tokens(self.config.oauth)
		if issuer is None:
			raise ProviderError(
				f"Email Sync cannot tell whether {self.host} takes Google or Microsoft sign-ins.",
				code="oauth_issuer_unknown",
				fix="Use imap.gmail.com for Gmail and Google Workspace, outlook.office365.com for Microsoft 365 and "
				"Outlook.com, or log in with a password.",
			)
		return issuer

	def _capabilities(self, imap: imaplib.IMAP4) -> set[str]:
		typ, data = self._run_typed("reading its capabilities", imap.capability)
		words = b" ".join(d for d in data if isinstance(d, bytes)).decode("ascii", "replace").upper().split()
		return set(words) if typ == "OK" and words else {c.upper() for c in imap.capabilities}

	def _enable_condstore(self, imap: imaplib.IMAP4) -> None:
		# Without ENABLE, EXAMINE does not report HIGHESTMODSEQ. A failure just means no incremental search.
		try:
			typ, _ = imap.enable("CONDSTORE")
		except imaplib.IMAP4.abort as e:
			raise ConnectionFailed(f"The connection to {self.host} broke: {_text(e)}.") from None
		except imaplib.IMAP4.error:
			typ = "NO"
		if typ != "OK":
			self._caps.discard("CONDSTORE")

	def _session(self) -> imaplib.IMAP4:
		if self._imap is None:
			self.connect()
		return self._imap

	def _run(self, what: str, command, *args, allow_no: bool = False) -> list:
		"""Run an imaplib call, turning its failures into ProviderErrors that say what was being done."""
		typ, data = self._run_typed(what, command, *args)
		if typ != "OK" and not (allow_no and typ == "NO"):
			raise ProviderError(f"{self.host} refused {what}: {_text(data)}.")
		return data

	def _run_typed(self, what: str, command, *args) -> tuple[str, list]:
		try:
			return command(*args)
		except (imaplib.IMAP4.abort, OSError) as e:
			raise ConnectionFailed(f"The connection to {self.host} broke while {what}: {_text(e)}.") from None
		except imaplib.IMAP4.error as e:
			raise ProviderError(f"{self.host} refused {what}: {_text(e)}.") from None

	# -- folders -----------------------------------------------------------------------------------

	def list_folders(self) -> list[Folder]:
		data = self._run("listing folders", self._session().list, '""', "*")
		folders = []
		for folder, raw in folders_from_list(data):
			self._raw_names[folder.name] = raw
			folders.append(folder)
		return folders

	def _folders_to_read(self) -> list[Folder]:
		"""The configured folders (default INBOX), plus Sent when bidirectional; junk is never read."""
		folders = self.list_folders()
		by_name = {f.name: f for f in folders}
		wanted = list(dict.fromkeys(_normalise_inbox(n) for n in self.config.folders if n.strip())) or ["INBOX"]
		chosen: list[Folder] = []
		self.skipped_folders = []
		if missing := [name for name in wanted if name not in by_name]:
			listed = ", ".join(f'"{name}"' for name in missing)
			verb = "does not exist" if len(missing) == 1 else "do not exist"
			existing = [f.name for f in folders if f.selectable and f.role != "junk"]
			raise FolderMissing(f"The folder {listed} {verb} on {self.host}.", missing=missing, existing=existing)
		for name in wanted:
			folder = by_name[name]
			if not folder.selectable:
				raise FolderMissing(f'The folder "{name}" on {self.host} only holds other folders and has no mail.')
			if folder.role == "junk":  # spam is never synced, whatever the settings say
				self.skipped_folders.append(name)
				continue
			chosen.append(folder)
		if self.config.direction == BIDIRECTIONAL:
			sent = next((f for f in folders if f.role == "sent" and f.selectable), None)
			if sent is not None and sent not in chosen:
				chosen.append(sent)
		return chosen

	def _wire_name(self, name: str) -> str:
		return self._raw_names.get(name) or encode_mutf7(name)

	# -- fetching ----------------------------------------------------------------------------------

	def fetch(self, cursor: dict | None) -> Iterator[Batch]:
		cursor = copy.deepcopy(cursor) if cursor else {}
		states = cursor.setdefault("folders", {})
		plans = [self._plan(folder, states.get(folder.name)) for folder in self._folders_to_read()]
		for i, plan in enumerate(plans):
			later = sum(len(p.uids) for p in plans[i + 1 :])
			for batch_state, messages, left in self._read(plan):
				states[plan.folder.name] = batch_state
				# A fresh copy per batch: the caller may keep it while we move on.
				yield Batch(messages, copy.deepcopy(cursor), plan.folder.name, left + later)
				del messages  # hold no raw mail while the next batch is read

	def fetch_range(
		self, since: date, before: date, folders: list[str] | None = None, position: dict | None = None
	) -> Iterator[Batch]:
		"""SEARCH SINCE/BEFORE (INTERNALDATE) in each folder the sync reads; see Provider.fetch_range.

		The position is per folder, like the cursor but of this listing only:
		{"folders": {"INBOX": {"uidvalidity": 1700000000, "last_uid": 815, "done": true}}}"""
		position = copy.deepcopy(position) if position else {}
		states = position.setdefault("folders", {})
		plans = []
		for folder in self._range_folders(folders):
			old, box = states.get(folder.name), self._examine(folder)
			if not (old and old.get("done")) or box.uidvalidity != old.get("uidvalidity"):
				plans.append(self._plan_range(folder, old, since, before, box))

		def replan(folder, old, box):
			return self._plan_range(folder, old, since, before, box)

		for i, plan in enumerate(plans):
			later = sum(len(p.uids) for p in plans[i + 1 :])
			for batch_state, messages, left in self._read(plan, replan):
				states[plan.folder.name] = batch_state
				yield Batch(messages, copy.deepcopy(position), plan.folder.name, left + later)
				del messages

	def _range_folders(self, names: list[str] | None) -> list[Folder]:
		reading = self._folders_to_read()
		if not names:
			return reading
		wanted = {_normalise_inbox(n) for n in names}
		chosen = [f for f in reading if f.name in wanted]
		if not chosen:
			listed = ", ".join(f'"{n}"' for n in sorted(wanted))
			raise FolderMissing(
				f"{listed} is not among the folders this account syncs ({', '.join(f.name for f in reading)}).",
				fix="Pick one of the account's folders, or add the folder to the account first.",
			)
		return chosen

	def _plan_range(
		self, folder: Folder, old: dict | None, since: date, before: date, box: _Examined | None = None
	) -> _Plan:
		box = box or self._examine(folder)
		if not old or old.get("uidvalidity") != box.uidvalidity:
			old = None  # renumbered since the last run: search the range again, identity dedupes what was filed
		last = int((old or {}).get("last_uid") or 0)
		criteria = ["SINCE", _imap_date(since), "BEFORE", _imap_date(before)]
		if self.config.direction == MANUAL_SELECTION:
			criteria = ["KEYWORD", self._keyword(), *criteria]
		uids = [uid for uid in self._search(folder, criteria) if uid > last] if box.exists else []
		start = {"uidvalidity": box.uidvalidity, "last_uid": last}
		end = {**start, "last_uid": max([last, *uids]), "done": True}
		return _Plan(folder, box.uidvalidity, uids, old, start, end)

	def _plan(self, folder: Folder, old: dict | None, box: _Examined | None = None) -> _Plan:
		"""EXAMINE the folder and SEARCH for what to fetch; no message is read yet."""
		box = box or self._examine(folder)
		if old and old.get("uidvalidity") == box.uidvalidity:
			base = dict(old)
		else:
			# New folder, or the server renumbered it (UIDVALIDITY changed): start from UID 0. Mail fetched
			# again is not filed twice, because the app dedupes by message identity (Message-ID and content).
			base = {"uidvalidity": box.uidvalidity}
		if self.config.direction == MANUAL_SELECTION:
			return self._plan_manual(folder, old, base, box)
		last = int(base.get("last_uid") or 0)
		start = {**base, "last_uid": last}
		start.pop("highestmodseq", None)  # only meaningful to manual selection
		uids = self._search_new(folder, last, box)
		return _Plan(folder, box.uidvalidity, uids, old, start, {**start, "last_uid": max([last, *uids])})

	def _plan_manual(self, folder: Folder, old: dict | None, base: dict, box: _Examined) -> _Plan:
		since = base.get("highestmodseq") if box.highestmodseq else None
		criteria = ["KEYWORD", self._keyword()]
		if since:  # CONDSTORE: only messages changed (e.g. newly flagged) since the last run
			criteria += ["MODSEQ", str(int(since) + 1)]
		uids = self._search(folder, criteria) if box.exists else []
		# Until the folder is done, keep the old HIGHESTMODSEQ: a resumed run searches again, the app dedupes.
		end = {**base}
		if box.highestmodseq:
			end["highestmodseq"] = box.highestmodseq
		else:
			end.pop("highestmodseq", None)  # no CONDSTORE: every run searches all flagged mail
		return _Plan(folder, box.uidvalidity, uids, old, base, end, manual=True)

	def _search_new(self, folder: Folder, last: int, box: _Examined) -> list[int]:
		if not box.exists or (box.uidnext and box.uidnext <= last + 1):
			return []  # nothing arrived since last_uid, no need to ask
		criteria = [f"UID {last + 1}:*"] if last else ["ALL"]
		if self.config.sync_start:
			criteria += ["SINCE", _imap_date(self.config.sync_start)]
		# "n:*" always matches the highest UID, even when it is below n: keep only the really new ones.
		return [uid for uid in self._search(folder, criteria) if uid > last]

	def _search(self, folder: Folder, criteria: list[str]) -> list[int]:
		data = self._run(f'searching "{folder.name}"', self._imap.uid, "SEARCH", *criteria)
		return sorted(set(_parse_search(data)))

	def _keyword(self) -> str:
		keyword = (self.config.manual_keyword or "").strip()
		if not re.fullmatch(r"[A-Za-z0-9_.$+-]+", keyword):
			raise ProviderError(
				f"The keyword {keyword!r} cannot be used as an IMAP keyword.",
				fix="Use letters, digits, dots, dashes or underscores only, for example EmailSync.",
			)
		return keyword

	def _examine(self, folder: Folder) -> _Examined:
		imap = self._session()
		what = f'opening "{folder.name}"'
		# EXAMINE, not SELECT: read-only, so the server never changes flags on our behalf.
		self._selected = None
		typ, data = self._run_typed(what, imap.select, _quote(self._wire_name(folder.name)), True)
		if typ != "OK":
			raise FolderMissing(f'The folder "{folder.name}" cannot be opened on {self.host}: {_text(data)}.')
		self._selected = folder.name
		return _Examined(
			uidvalidity=_response_int(imap, "UIDVALIDITY"),
			uidnext=_response_int(imap, "UIDNEXT"),
			exists=_response_int(imap, "EXISTS", default=1),
			highestmodseq=_response_int(imap, "HIGHESTMODSEQ") if "CONDSTORE" in self._caps else 0,
		)

	def _read(self, plan: _Plan, replan=None) -> Iterator[tuple[dict, list[FetchedMessage], int]]:
		"""Yield (folder state after the batch, its messages, messages left in this folder) per batch."""
		if self._selected != plan.folder.name:  # other folders were planned since: open this one again
			box = self._examine(plan.folder)
			if box.uidvalidity != plan.uidvalidity:  # renumbered between planning and reading: plan again
				plan = (replan or self._plan)(plan.folder, plan.old, box)
		batches = self._plan_batches(plan.uids)
		current, yielded = next(batches, None), False
		while current is not None:
			following = next(batches, None)
			messages = self._fetch_bodies(plan, current)
			if following is None:
				state, left = plan.end, 0
			else:
				state = plan.after(current[-1])
				left = len(plan.uids) - bisect.bisect_right(plan.uids, current[-1])
			yield copy.deepcopy(state), messages, left
			del messages  # hold no raw mail while the next batch is read
			current, yielded = following, True
		if not yielded and plan.end != plan.old:  # no mail, but a new state (new folder, new UIDVALIDITY)
			yield copy.deepcopy(plan.end), [], 0

	def _plan_batches(self, uids: list[int]) -> Iterator[list[int]]:
		"""Group UIDs into batches of at most batch_size messages, closing once batch_bytes is reached."""
		limit_count = max(1, self.config.batch_size)
		limit_bytes = max(1, self.config.batch_bytes)
		batch, size = [], 0
		for start in range(0, len(uids), SIZE_CHUNK):
			for uid, msg_size in self._sizes(uids[start : start + SIZE_CHUNK]):
				if batch and size + msg_size > limit_bytes:  # would overflow: close first; a big one goes alone
					yield batch
					batch, size = [], 0
				batch.append(uid)
				size += msg_size
				if len(batch) >= limit_count or size >= limit_bytes:
					yield batch
					batch, size = [], 0
		if batch:
			yield batch

	def _sizes(self, uids: list[int]) -> list[tuple[int, int]]:
		"""(uid, RFC822.SIZE) in UID order; messages deleted since the search are simply absent."""
		wanted, sizes = set(uids), {}
		for uid_set in uid_sets(uids):
			for item in self._uid_fetch(uid_set, "(UID RFC822.SIZE)")[0]:
				uid, size = _int(item.get("UID")), _int(item.get("RFC822.SIZE"))
				if uid in wanted and size is not None:
					sizes[uid] = size
		return sorted(sizes.items())

	def _fetch_bodies(self, plan: _Plan, uids: list[int]) -> list[FetchedMessage]:
		"""The messages of `uids` that still exist, in UID order. One the server answers without its content
		(FETCH refused with NO or BAD, or a reply lacking the body) comes back as an error item: skipping it
		would lose it, and stopping would block the folder at it on every run."""
		wanted, found, refusals, dropped_on = set(uids), {}, [], []
		from_sent = plan.folder.role == "sent"
		answers = self._answers(plan, uids, dropped_on)
		for items, refusal in answers:
			if refusal:
				refusals.append(refusal)
			for item in items:
				uid, raw = _int(item.get("UID")), item.get("BODY[]")
				if uid not in wanted or not isinstance(raw, bytes):
					continue  # an unsolicited FLAGS update, a message expunged meanwhile, or one refused
				found[uid] = FetchedMessage(
					raw=raw,
					folder=plan.folder.name,
					provider_id=provider_id_for(plan.folder.name, plan.uidvalidity, uid),
					from_sent_folder=from_sent,
					received_at=parse_internaldate(item.get("INTERNALDATE")),
				)
		for uid in dropped_on:
			found[uid] = FetchedMessage(
				raw=b"",
				folder=plan.folder.name,
				provider_id=provider_id_for(plan.folder.name, plan.uidvalidity, uid),
				from_sent_folder=from_sent,
				error=f"{self.host} closes the connection whenever this message is read, so it cannot be "
				"downloaded (the server's own log says why).",
				error_code="message_unavailable",
			)
		missing = [uid for uid in uids if uid not in found]
		if missing:
			# Expunged since the search: gone, nothing to file. Still there: the server would not hand it out.
			reason = refusals[-1] if refusals else "the server's answer did not include the message"
			for uid in self._still_there(plan.folder, missing):
				found[uid] = FetchedMessage(
					raw=b"",
					folder=plan.folder.name,
					provider_id=provider_id_for(plan.folder.name, plan.uidvalidity, uid),
					from_sent_folder=from_sent,
					error=f"{self.host} would not hand out this message: {reason}.",
					error_code="message_unavailable",
				)
		return [found[uid] for uid in uids if uid in found]

	def _answers(self, plan: _Plan, uids: list[int], dropped_on: list[int]) -> Iterator[tuple[list[dict], str]]:
		"""The FETCH answers for the bodies of `uids`. Some servers answer a message they cannot read by
		dropping the connection (Dovecot's default `imap_fetch_failure`): then the rest is read one message at
		a time on a new connection, and a message that drops it again when read alone, twice, is put in
		`dropped_on` instead of stopping the folder at it on every run. When the server cannot be reached
		again, or keeps dropping, the run stops (ConnectionFailed) and resumes from the cursor."""
		sets = list(uid_sets(uids))
		for done, uid_set in enumerate(sets):
			try:
				yield self._uid_fetch(uid_set, FETCH_ITEMS)
			except ConnectionFailed:
				break
		else:
			return
		received, broken = {uid for s in sets[:done] for uid in _uids_in(s)}, True
		for uid in uids:
			if uid in received:
				continue
			for _ in range(2):
				if broken:
					self._reopen(plan)
				try:
					answer = self._uid_fetch(str(uid), FETCH_ITEMS)
				except ConnectionFailed:
					broken = True
					continue
				broken = False
				yield answer
				break
			else:
				dropped_on.append(uid)
		if broken:
			self._reopen(plan)  # the next batch or folder needs a working connection

	def _reopen(self, plan: _Plan) -> None:
		"""A new connection with the plan's folder open, after the server dropped the last one. Bounded per
		provider: a server that drops every connection is down, not refusing one message."""
		self._drops += 1
		if self._drops > MAX_DROPS:
			raise ConnectionFailed(f"{self.host} keeps closing the connection while messages are read.")
		self.connect()
		if self._examine(plan.folder).uidvalidity != plan.uidvalidity:
			raise ConnectionFailed(f'The folder "{plan.folder.name}" on {self.host} was renumbered during the sync.')

	def _still_there(self, folder: Folder, uids: list[int]) -> list[int]:
		"""Which of `uids` the open folder still holds (UID SEARCH reads the index, never the messages)."""
		present: set[int] = set()
		for uid_set in uid_sets(uids):
			present.update(self._search(folder, ["UID", uid_set]))
		return [uid for uid in uids if uid in present]

	def _uid_fetch(self, uid_set: str, items: str) -> tuple[list[dict], str]:
		"""The FETCH responses for `uid_set`, and the server's reason when it refused some of it ("" if not).

		NO (some messages vanished, [EXPUNGEISSUED], or a message the server cannot read) and BAD still come
		with the responses for the messages it could hand out; imaplib leaves those among the untagged ones.
		A dropped connection or a timeout raises ConnectionFailed: the run stops and resumes from the cursor."""
		imap = self._imap
		imap.untagged_responses.pop("FETCH", None)  # drop unsolicited FETCHes so only this answer is parsed
		try:
			typ, data = imap.uid("FETCH", uid_set, items)
		except (imaplib.IMAP4.abort, OSError) as e:
			raise ConnectionFailed(f"The connection to {self.host} broke while reading messages: {_text(e)}.") from None
		except imaplib.IMAP4.error as e:  # BAD: imaplib's text is "UID command error: BAD [b'<server text>']"
			typ, data = "BAD", [_bad_text(e)]
		if typ == "OK":
			return _parse_fetch(data), ""
		refusal = _text(data)
		return _parse_fetch(imap.untagged_responses.pop("FETCH", None) or []), refusal

	def fetch_one(self, provider_id: str) -> FetchedMessage | None:
		"""The message at `provider_id` ("folder/uidvalidity/uid") again; None when that folder or message is
		gone or the folder was renumbered (a new UIDVALIDITY: its UIDs now name other messages)."""
		folder_name, uidvalidity, uid = parse_provider_id(provider_id)
		folder = next((f for f in self.list_folders() if f.name == folder_name and f.selectable), None)
		if folder is None or uid is None:
			return None
		box = self._examine(folder)
		if box.uidvalidity != uidvalidity:
			return None
		plan = _Plan(folder, uidvalidity, [uid], None, {}, {})
		messages = self._fetch_bodies(plan, [uid])
		return messages[0] if messages else None

	# -- test --------------------------------------------------------------------------------------

	def test(self) -> TestResult:
		"""Connect, list folders and count the mail a first sync with these settings would read."""
		folders: list[Folder] = []
		try:
			self.connect()
			folders = self.list_folders()
			reading = self._folders_to_read()
			count = sum(len(self._plan(folder, None).uids) for folder in reading)
		except FolderMissing as e:
			return TestResult(False, f"{e.message} {e.fix}", folders, code=e.code)
		except ProviderError as e:
			return TestResult(False, f"{e.message} {e.fix}", code=e.code)
		finally:
			self.close()
		names = ", ".join(f.name for f in reading)
		noun = "message matches" if count == 1 else "messages match"
		who = self.config.address or self.host
		return TestResult(True, f"Connected to {who}. Reading {names}: {count:,} {noun} the settings.", folders)


# -- plans -----------------------------------------------------------------------------------------


@dataclass
class _Examined:
	uidvalidity: int
	uidnext: int
	exists: int
	highestmodseq: int


@dataclass
class _Plan:
	folder: Folder
	uidvalidity: int
	uids: list[int]  # ascending
	old: dict | None  # the folder's state in the incoming cursor
	start: dict  # the state before the first batch
	end: dict  # the state once every planned message is handed out
	manual: bool = False

	def after(self, uid: int) -> dict:
		"""The state after a batch ending at `uid` (manual mode keeps `start` until the folder is done)."""
		return dict(self.start) if self.manual else {**self.start, "last_uid": uid}


class _SlowGreeting(Exception):
	"""No greeting within the short handshake wait, and the port is not TLS either."""


class _IMAP4(imaplib.IMAP4):
	"""imaplib on a socket we connected (and maybe wrapped in TLS) ourselves, so each step has its own error."""

	def __init__(self, sock: socket.socket, host: str, port: int):
		self._ready_socket = sock
		super().__init__(host, port, sock.gettimeout())

	def _create_socket(self, timeout):
		return self._ready_socket


def _quiet_logout(imap: imaplib.IMAP4) -> None:
	try:
		imap.sock.settimeout(LOGOUT_TIMEOUT)
		imap.logout()
	except Exception:  # noqa: BLE001 - closing never raises: the socket may already be gone
		with contextlib.suppress(Exception):
			imap.shutdown()


def _xoauth2_status(challenges: list[bytes]) -> str:
	"""The "status" of an XOAUTH2 error challenge (base64 JSON, already decoded by imaplib), or ""."""
	for challenge in challenges:
		with contextlib.suppress(ValueError):
			data = json.loads(challenge.decode("utf-8", "replace"))
			if isinstance(data, dict) and data.get("status"):
				return str(data["status"])
	return ""


def _response_int(imap: imaplib.IMAP4, code: str, default: int = 0) -> int:
	_, data = imap.response(code)
	for item in reversed(data or []):
		value = _int(item.split()[0] if isinstance(item, bytes) and item.split() else None)
		if value is not None:
			return value
	return default


# -- wire formats ----------------------------------------------------------------------------------


def encode_mutf7(name: str) -> str:
	"""A mailbox name in IMAP's modified UTF-7 (RFC 3501 5.1.3): "Entwürfe" -> "Entw&APw-rfe"."""
	out, pending = [], []

	def flush() -> None:
		if pending:
			encoded = base64.b64encode("".join(pending).encode("utf-16-be")).decode().rstrip("=")
			out.append("&" + encoded.replace("/", ",") + "-")
			pending.clear()

	for ch in name:
		if 0x20 <= ord(ch) <= 0x7E:
			flush()
			out.append("&-" if ch == "&" else ch)
		else:
			pending.append(ch)
	flush()
	return "".join(out)


def decode_mutf7(name: str) -> str:
	"""The inverse of encode_mutf7; raises ValueError on malformed input."""

	def decode(match: re.Match) -> str:
		chunk = match.group(1)
		if not chunk:
			return "&"
		data = chunk.replace(",", "/")
		try:
			return base64.b64decode(data + "=" * (-len(data) % 4), validate=True).decode("utf-16-be")
		except (ValueError, UnicodeDecodeError) as e:
			raise ValueError(f"bad modified UTF-7 in {name!r}") from e

	if re.search(r"&(?![A-Za-z0-9+,]*-)", name):
		raise ValueError(f"unterminated modified UTF-7 in {name!r}")
	return re.sub(r"&([A-Za-z0-9+,]*)-", decode, name)


def folders_from_list(data: list) -> list[tuple[Folder, str]]:
	"""(Folder with display name and role, raw wire name) for each LIST response in imaplib's `data`."""
	listed, attr_roles = [], set()
	for attrs, delimiter, raw in _parse_list(data):
		name = _display_name(raw)
		role = _role_from_attributes(attrs) or ("inbox" if name == "INBOX" else "")
		attr_roles.add(role)
		listed.append((Folder(name, role, not {"\\noselect", "\\nonexistent"} & attrs), delimiter, raw))
	# Name fallbacks only for roles no folder announces itself, so a plain "Sent" never shadows a real \Sent.
	for folder, delimiter, _ in listed:
		if not folder.role:
			leaf = folder.name.rsplit(delimiter, 1)[-1] if delimiter else folder.name
			role = NAME_ROLES.get(leaf.strip().lower(), "")
			folder.role = "" if role in attr_roles else role
	return [(folder, raw) for folder, _, raw in listed]


def _display_name(raw: str) -> str:
	if raw.upper() == "INBOX":
		return "INBOX"  # INBOX is case-insensitive in IMAP; one spelling everywhere
	try:
		return decode_mutf7(raw)
	except ValueError:
		return raw  # some servers send UTF-8 or broken names: show them as they are


def _normalise_inbox(name: str) -> str:
	name = name.strip()
	return "INBOX" if name.upper() == "INBOX" else name


def _role_from_attributes(attrs: set[str]) -> str:
	return next((SPECIAL_USE_ROLES[a] for a in attrs if a in SPECIAL_USE_ROLES), "")


def provider_id_for(folder: str, uidvalidity: int, uid: int) -> str:
	"""A message's id within the account: "INBOX/1700000000/42" (folder names may hold slashes themselves)."""
	return f"{folder}/{uidvalidity}/{uid}"


def parse_provider_id(value: str) -> tuple[str, int | None, int | None]:
	"""(folder, uidvalidity, uid) of a provider_id; None for the numbers of a malformed one."""
	folder, _, numbers = (value or "").rpartition("/")
	folder, _, uidvalidity = folder.rpartition("/")
	return folder, _int(uidvalidity), _int(numbers)


def uid_sets(uids: Iterable[int], max_chars: int = MAX_UID_SET) -> Iterator[str]:
	"""Compact UID sets ("1:500,502,510:520") of at most about max_chars characters each, in UID order."""
	parts: list[str] = []
	length = 0
	for first, last in _ranges(sorted(set(uids))):
		part = str(first) if first == last else f"{first}:{last}"
		if parts and length + len(part) + 1 > max_chars:
			yield ",".join(parts)
			parts, length = [], 0
		parts.append(part)
		length += len(part) + 1
	if parts:
		yield ",".join(parts)


def _uids_in(uid_set: str) -> Iterator[int]:
	"""The UIDs of a set made by uid_sets (its ranges hold only UIDs that were asked for)."""
	for part in uid_set.split(","):
		first, _, last = part.partition(":")
		yield from range(int(first), int(last or first) + 1)


def _ranges(uids: list[int]) -> Iterator[tuple[int, int]]:
	start = prev = None
	for uid in uids:
		if prev is not None and uid == prev + 1:
			prev = uid
			continue
		if start is not None:
			yield start, prev
		start = prev = uid
	if start is not None:
		yield start, prev


def _imap_date(day: date) -> str:
	return f"{day.day:02d}-{MONTHS[day.month - 1]}-{day.year}"  # English month names whatever the locale


_INTERNALDATE = re.compile(
	rb'"?\s*(\d{1,2})-([A-Za-z]{3})-(\d{4}) (\d{1,2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2})"?'
)


def parse_internaldate(value) -> datetime | None:
	"""INTERNALDATE ("17-Jul-1996 02:44:25 -0700") as a naive UTC datetime; None if unreadable."""
	if isinstance(value, str):
		value = value.encode()
	match = _INTERNALDATE.fullmatch(value.strip()) if isinstance(value, bytes) else None
	if not match:
		return None
	day, month, year, hour, minute, second, sign, off_h, off_m = match.groups()
	try:
		offset = timedelta(hours=int(off_h), minutes=int(off_m)) * (-1 if sign == b"-" else 1)
		stamp = datetime(
			int(year), MONTHS.index(month.decode().title()) + 1, int(day), int(hour), int(minute), int(second),
			tzinfo=timezone(offset),
		)  # fmt: skip
	except ValueError:
		return None
	return stamp.astimezone(timezone.utc).replace(tzinfo=None)


def _quote(text: str) -> str:
	return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _response_code(text: str) -> tuple[str, str]:
	"""("AUTHENTICATIONFAILED", "Authentication failed") from "[AUTHENTICATIONFAILED] Authentication failed"."""
	match = re.match(r"\[([A-Za-z-]+)[^\]]*\]\s*(.*)", text)
	return (match.group(1).upper(), match.group(2) or text) if match else ("", text)


def _bad_text(e: Exception) -> str:
	"""The server's words in imaplib's error for a tagged BAD, without imaplib's wrapping."""
	text = _text(e)
	_, found, rest = text.partition(" BAD [b")
	if not found or len(rest) < 3:
		return text
	return rest[1:].rsplit(rest[0], 1)[0].strip() or text  # between the quotes of the bytes repr


def _int(value) -> int | None:
	try:
		return int(value)
	except (TypeError, ValueError):
		return None


def _text(value) -> str:
	"""Server text from an exception or imaplib data, for messages."""
	if isinstance(value, Exception):
		value = value.args[0] if value.args else str(value)
	if isinstance(value, list):
		value = b" ".join(v if isinstance(v, bytes) else str(v).encode() for v in value if v is not None)
	if isinstance(value, bytes):
		value = value.decode("utf-8", "replace")
	return str(value).strip().rstrip(".") or "no details"


# -- response parsing ------------------------------------------------------------------------------
# imaplib hands back each untagged response as bytes, or, when it carries literals, as (text ending in "{n}",
# literal) tuples followed by the rest of the line. We rebuild one token tree per response.

_LITERAL_END = re.compile(rb"\{(\d+)\}\s*$")
_FETCH_START = re.compile(rb"^\d+ \(")


def _groups(data: list, starts: re.Pattern) -> Iterator[list]:
	"""Split imaplib's data list into one list of pieces per response."""
	group: list = []
	for piece in data:
		if piece is None:
			continue
		text = piece[0] if isinstance(piece, tuple) else piece
		if starts.match(text) and group:
			yield group
			group = []
		group.append(piece)
	if group:
		yield group


def _tokenize(pieces: list) -> list:
	"""Parse pieces of one response into nested lists of bytes (atoms, strings, literals) and None (NIL)."""
	text, literals = b"", []
	for piece in pieces:
		if isinstance(piece, tuple):
			head, literal = piece
			match = _LITERAL_END.search(head)
			head = head[: match.start()] if match else head
			text += head + b" \x00%d\x00 " % len(literals)  # NUL never occurs in IMAP text: a safe marker
			literals.append(literal)
		else:
			text += piece
	root: list = []
	stack = [root]
	pos, end = 0, len(text)
	while pos < end:
		match = _TOKEN.match(text, pos)
		if match is None:  # a stray character (e.g. an unbalanced quote): skip it
			pos += 1
			continue
		pos = match.end()
		kind = match.lastgroup
		if kind == "open":
			stack[-1].append([])
			stack.append(stack[-1][-1])
		elif kind == "close":
			if len(stack) > 1:
				stack.pop()
		elif kind == "quoted":
			stack[-1].append(_UNESCAPE.sub(rb"\1", match.group("quoted")))
		elif kind == "literal":
			stack[-1].append(literals[int(match.group("literal"))])
		elif kind == "atom":
			atom = match.group("atom")
			stack[-1].append(None if atom.upper() == b"NIL" else atom)
	return root


# One token per match; atoms keep bracketed sections whole, as in BODY[HEADER.FIELDS (FROM TO)]<0>.
_TOKEN = re.compile(
	rb"""[ \t\r\n]+
	| (?P<open>\()
	| (?P<close>\))
	| "(?P<quoted>(?:[^"\\]|\\.)*)"
	| \x00(?P<literal>\d+)\x00
	| (?P<atom>(?:[^ \t\r\n()"\x00\[]|\[[^\]]*\])+)""",
	re.VERBOSE | re.DOTALL,
)
_UNESCAPE = re.compile(rb"\\(.)", re.DOTALL)


def _parse_fetch(data: list) -> list[dict]:
	"""FETCH responses as dicts {"UID": b"5", "BODY[]": b"...", ...}; item names upper-cased, order-free."""
	items = []
	for group in _groups(data, _FETCH_START):
		tokens = _tokenize(group)
		values = next((t for t in tokens if isinstance(t, list)), None)
		if values is None:
			continue
		item = {}
		for key, value in zip(values[0::2], values[1::2], strict=False):
			if isinstance(key, bytes):
				name = key.decode("ascii", "replace").upper()
				item["BODY[]" if name in ("BODY[]", "RFC822") else name] = value
		items.append(item)
	return items


def _parse_list(data: list) -> Iterator[tuple[set[str], str, str]]:
	"""LIST responses as (lower-cased attributes, delimiter, raw mailbox name)."""
	for group in _groups(data, re.compile(rb"^\(")):
		tokens = _tokenize(group)
		if len(tokens) < 3 or not isinstance(tokens[0], list):
			continue
		attrs = {a.decode("ascii", "replace").lower() for a in tokens[0] if isinstance(a, bytes)}
		delimiter = tokens[1].decode("ascii", "replace") if isinstance(tokens[1], bytes) else ""
		raw = tokens[2]
		if not isinstance(raw, bytes):
			continue
		yield attrs, delimiter, raw.decode("utf-8", "replace")


def _parse_search(data: list) -> Iterator[int]:
	for piece in data:
		if isinstance(piece, tuple):
			piece = piece[0]
		if not isinstance(piece, bytes):
			continue
		piece = re.sub(rb"\([^)]*\)", b" ", piece)  # "(MODSEQ 42)" after CONDSTORE searches
		for word in piece.split():
			if word.isdigit():
				yield int(word)
