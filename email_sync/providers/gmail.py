"""Gmail provider on the Gmail API v1, through google-api-python-client and google-auth: read-only, resumable, batched.

Works with google-api-python-client 2.2.0 / google-auth 1.29 (Frappe 15's pins) and with the newest 2.x. Nothing
here imports Frappe or writes anywhere: `fetch` hands out raw RFC 822 bytes and cursors, the caller stores both.

Labels: Gmail has labels, not folders. `Folder.name` is the label's name ("INBOX", "SENT", "Clients/Acme"); the
cursor keeps label ids. Read are the configured labels (names or ids; default INBOX), plus SENT when
Bidirectional; in Manual selection mode exactly one label, `config.manual_keyword` ("EmailSync"), that people put
on the mail they want synced. SPAM and TRASH are never read, whatever the settings say.

The cursor (plain JSON):

    {"history_id": "123456",            # every label below is synced up to this Gmail history id
     "labels": ["INBOX", "SENT"],       # the label ids the cursor covers
     "synced_at": 1700000000,           # epoch seconds when history_id was taken (bounds a re-listing)
     "listing": {...}}                  # only while a (re-)listing is unfinished, see below

Incremental sync reads `users.history.list` from `history_id` (messageAdded, and labelAdded so that mail which
gets a synced label later, e.g. the EmailSync label or a move back to the inbox, is picked up too) and fetches
the messages whose added labels are synced. Intermediate batches carry the id of the last history record all of
whose messages are handed out, the final batch the mailbox's history id as the first history page was read
(records added while paging may be handed out again next time: duplicates the app dedupes, never losses).

First sync, a re-listing after Gmail expired the history (HTTP 404 on an old history id: the listing then starts
one day before the last sync, or at `sync_start`), and the first sync of a label added to the settings list the
label ids with `users.messages.list` (ids only, newest first, reversed so mail is handed out oldest first). The
mailbox's current history id is read *before* the listing starts; it becomes `history_id` only with the last
batch, so that everything arriving while the listing runs is picked up by the next incremental sync. Until then
every batch carries `"history_id": null` and the listing state:

    "listing": {"start_history_id": "123400",   # read before listing; the history id once the listing is done
                "after": 1672531200,            # epoch seconds for q=after: (sync_start), or null
                "synced_at": 1700000000,
                "labels": ["INBOX", "SENT"],    # labels still to list, the one in progress first
                "last_ids": ["18c1...", ...]}   # the last ids handed out from the label in progress

A run that resumes such a cursor lists the label in progress again and skips up to the furthest of `last_ids`
it finds (any one of them is enough, so a few deleted messages do not matter). Nothing is lost: the order is
stable and later arrivals are covered by the history from `start_history_id`. At worst (all of `last_ids` gone)
the label is handed out again, which the app dedupes by message identity.

Company mailboxes (`config.app.service_account_key` set): Google Workspace domain-wide delegation. The service
account's key signs a JWT for the account's address (google-auth's service_account.Credentials.with_subject);
an administrator must have allowed the service account's client id the gmail.readonly scope. Nobody signs in,
nothing is stored: each token comes from a new JWT.

Throttling (HTTP 429, 403 rateLimitExceeded / userRateLimitExceeded, 5xx), also per message inside a batch:
wait as long as Retry-After says, else exponential backoff with jitter, at most `max_retries` times per request
and `max_wait` seconds per run; then `Throttled` is raised, and the cursor of the last batch handed out is safe.

One bad message never blocks a label: a batch part refused for that message alone (a 400, an unreadable
answer, or a 5xx that outlasts the retries while Gmail still serves the message's metadata) is handed out as a
FetchedMessage with `error` set and no content, and the cursor moves past it. 401 and 403 concern the whole
account, 429 and outages the whole service: those still stop the run.
"""

from __future__ import annotations

import base64
import binascii
import calendar
import copy
import dataclasses
import hmac
import http.client
import inspect
import json
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timezone
from email.utils import parsedate_to_datetime

import google_auth_httplib2
import httplib2
from google.auth import exceptions as auth_exceptions
from google.oauth2.credentials import Credentials
from googleapiclient import discovery
from googleapiclient import errors as api_errors
from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from email_sync.providers.base import (
	BIDIRECTIONAL,
	MANUAL_KEYWORD,
	MANUAL_SELECTION,
	AccessRevoked,
	AccountClosed,
	AccountConfig,
	Batch,
	ConnectionFailed,
	FetchedMessage,
	Folder,
	FolderMissing,
	MailboxNotHosted,
	MissingScopes,
	OAuthTokens,
	Provider,
	ProviderError,
	TestResult,
	Throttled,
)
from email_sync.providers.google_oauth import (
	GMAIL_READONLY,
	RECONNECT,
	_first_line,
	begin_sign_in,
	delegation_error,
	finish_sign_in,
	refresh_error,
	revoke_token,
	service_account_info,
	token_uri,
)

__all__ = [
	"GmailProvider",
	"begin_sign_in",
	"finish_sign_in",
	"parse_push",
	"verify_push_jwt",
	"verify_push_token",
]

# System labels and the folder roles they play.
SYSTEM_ROLES = {"INBOX": "inbox", "SENT": "sent", "SPAM": "junk", "TRASH": "trash", "DRAFT": "drafts"}
NEVER_READ = frozenset({"SPAM", "TRASH"})
NOT_FOLDERS = frozenset({"UNREAD", "CHAT"})  # system labels that are states, not places mail is kept
ROLE_ORDER = ("inbox", "sent", "drafts", "junk", "trash")

LIST_PAGE = 500  # ids per messages.list page (Gmail's maximum)
HISTORY_PAGE = 500  # records per history.list page (Gmail's maximum)
HTTP_BATCH = 50  # messages.get calls per batch HTTP request: Google's advice, larger ones get rate limited
TYPICAL_SIZE = 64 * 1024  # bytes of a message, assumed until some were downloaded
MAX_RETRIES = 5  # retries of one throttled request
MAX_WAIT = 60.0  # seconds of waiting for throttling per run, in total
BACKOFF = 1.0  # seconds before the first retry without Retry-After; doubles each time (with jitter)
MAX_BACKOFF = 32.0
NETWORK_RETRIES = 2  # a dropped connection is tried again this often before ConnectionFailed
HISTORY_OVERLAP = 86400  # seconds before the last sync that a re-listing starts, after history expired
MARKERS = 10  # ids of the last handed-out messages kept in a listing cursor

RETRY_REASONS = frozenset(
	{"rateLimitExceeded", "userRateLimitExceeded", "concurrentLimitExceeded", "backendError"}
)
QUOTA_REASONS = frozenset({"dailyLimitExceeded", "quotaExceeded"})
SCOPE_REASONS = frozenset({"insufficientPermissions", "ACCESS_TOKEN_SCOPE_INSUFFICIENT"})
API_DISABLED_REASONS = frozenset({"accessNotConfigured", "SERVICE_DISABLED"})
ACCOUNT_CLOSED_TEXTS = ("disabled", "suspended", "deleted", "account closed")
# 403 domainPolicy ("The domain administrators have disabled Gmail apps."): a Workspace setting, not a
# closed mailbox.
DOMAIN_POLICY_REASONS = frozenset({"domainPolicy"})
ADMIN_GMAIL_FIX = (
	"Ask your Google Workspace administrator to turn Gmail on for this user (Admin console > Apps > Google "
	"Workspace > Gmail > Service status, for the user's organizational unit), then click Test Connection."
)
ADMIN_API_FIX = (
	"Ask your Google Workspace administrator to allow Gmail access for Email Sync: in the Admin console, Apps > "
	"Google Workspace > Gmail must be on for the user, and Security > Access and data control > API controls "
	"must trust the Email Sync OAuth client (or allow third-party API access); then click Test Connection."
)
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


class _Gone(ProviderError):
	"""HTTP 404: a message deleted meanwhile, or a history id Gmail no longer keeps."""

	code = "gmail_not_found"


class _HistoryExpired(Exception):
	pass


class _Credentials(Credentials):
	"""google-auth user credentials that report every refresh (also the ones inside batch requests)."""

	on_refresh: Callable[[Credentials], None] | None = None

	def refresh(self, request):
		super().refresh(request)
		if self.on_refresh is not None:
			self.on_refresh(self)


@dataclasses.dataclass
class _ApiError:
	status: int
	message: str
	reasons: set[str]
	retry_after: float | None


class GmailProvider(Provider):
	"""Reads mail through the Gmail API with the account's OAuth tokens.

	`max_retries`, `max_wait` and `backoff` bound how long throttling is waited out (see the module docstring);
	`sleep` is how waiting is done (tests pass a recorder).
	"""

	def __init__(
		self,
		config: AccountConfig,
		*,
		max_retries: int = MAX_RETRIES,
		max_wait: float = MAX_WAIT,
		backoff: float = BACKOFF,
		sleep: Callable[[float], None] = time.sleep,
	):
		super().__init__(config)
		self.max_retries = max_retries
		self.max_wait = max_wait
		self.backoff = backoff
		self.sleep = sleep
		self.delegated = config.app is not None  # a Workspace mailbox read by domain-wide delegation
		self.profile: dict = {}  # users.getProfile: emailAddress, historyId, messagesTotal, threadsTotal
		self.tokens: OAuthTokens | None = config.oauth  # updated whenever google-auth refreshes
		self.skipped_folders: list[str] = []  # configured SPAM/TRASH labels left out of the last fetch
		self._service = None
		self._label_ids: dict[str, str] = {}  # label name -> id
		self._label_names: dict[str, str] = {}  # label id -> name
		self._names: dict[str, str] = {}  # label id -> name, of the labels being read
		self._folders: list[Folder] = []  # the last list_folders() answer
		self._waited = 0.0  # seconds waited for throttling in this run
		self._seen_bytes = self._seen_count = 0  # sizes of the messages downloaded, for sizing batch requests

	# -- connection ------------------------------------------------------------------------------------------

	@property
	def email_address(self) -> str:
		return str(self.profile.get("emailAddress") or "")

	def connect(self) -> None:
		self.close()
		self._waited = 0.0
		self._service = self._build()
		self.profile = self._call(
			lambda: self._users().getProfile(userId="me").execute(), "reading the profile"
		)

	def close(self) -> None:
		service, self._service = self._service, None
		if service is not None and hasattr(service, "close"):
			try:
				service.close()
			except Exception:  # noqa: BLE001, S110 - closing idle connections must never fail a run
				pass

	def test(self) -> TestResult:
		"""Connect, list labels and check the labels to sync exist (a missing EmailSync label shows up here)."""
		try:
			self.connect()
			self._labels_to_read()
			folders = self._folders
		except ProviderError as e:
			return TestResult(False, f"{e.message} {e.fix}", self._folders or [], code=e.code)
		finally:
			self.close()
		found = self.email_address.lower()
		if self.delegated:
			return TestResult(
				True,
				f"Connected to Gmail as {found or self.config.address} by domain-wide delegation (the service "
				"account acts as this user; no personal sign-in).",
				folders,
			)
		if self.config.address and found and found not in self.config.own_addresses:
			return TestResult(
				False,
				f"Signed in to Gmail as {found}, but this account is for {self.config.address}. Click Reconnect and "
				f"sign in as {self.config.address}, or add {found} to the account's addresses. For a Google "
				"Workspace mailbox nobody signs in to, set Mailbox to Shared or delegated (domain-wide delegation, "
				"set up in Email Sync Settings).",
				folders,
			)
		who = found or self.config.address
		return TestResult(True, f"Connected to Gmail as {who} with a personal sign-in.", folders)

	def _build(self):
		creds = self._delegated_credentials() if self.delegated else self._user_credentials()
		http = google_auth_httplib2.AuthorizedHttp(creds, http=httplib2.Http(timeout=self.config.timeout))
		kwargs: dict = {"http": http, "cache_discovery": False}
		if "static_discovery" in inspect.signature(discovery.build).parameters:
			kwargs["static_discovery"] = True  # the discovery document shipped with the library: no network
		if self._api_root():
			kwargs["client_options"] = {"api_endpoint": self._api_root()}
		try:
			return discovery.build("gmail", "v1", **kwargs)
		except Exception as e:  # noqa: BLE001 - a broken install, not something the user can fix in the account
			raise ProviderError(
				f"Could not set up the Gmail API client: {e!r}.",
				code="gmail_client",
				fix="Reinstall google-api-python-client on this site (bench pip install -U google-api-python-client).",
			) from None

	def _delegated_credentials(self):
		"""Service account credentials acting as the account's address (domain-wide delegation)."""
		from google.oauth2 import service_account

		info = service_account_info(self.config.app.service_account_key, self.config.auth_base)
		try:
			creds = service_account.Credentials.from_service_account_info(info, scopes=[GMAIL_READONLY])
		except (ValueError, KeyError, TypeError) as e:
			raise ProviderError(
				f"The Google service account key cannot be used: {type(e).__name__}.",
				code="bad_service_account_key",
				fix="In Email Sync Settings, paste the whole JSON key file of the service account (Google Cloud "
				"Console > IAM & Admin > Service Accounts > Keys > Add key > JSON).",
			) from None
		return creds.with_subject(self.config.address.strip())

	def _user_credentials(self):
		oauth = self.config.oauth
		if oauth is None or not (oauth.refresh_token or oauth.access_token):
			raise AccessRevoked(
				"This Gmail account is not connected yet.", fix="Click Connect and sign in with Google."
			)
		expiry = (
			datetime.fromtimestamp(oauth.expires_at, timezone.utc).replace(tzinfo=None)
			if oauth.expires_at
			else None
		)
		creds = _Credentials(
			token=oauth.access_token or None,
			refresh_token=oauth.refresh_token or None,
			token_uri=token_uri(self.config.auth_base),
			client_id=oauth.client_id or None,
			client_secret=oauth.client_secret or None,
			scopes=list(oauth.scopes) or None,
			expiry=expiry,
		)
		creds.on_refresh = self._tokens_refreshed
		return creds

	def _api_root(self) -> str:
		base = (self.config.api_base or "").strip()
		return base.rstrip("/") + "/" if base else ""

	def _users(self):
		if self._service is None:
			self.connect()
		return self._service.users()

	def _tokens_refreshed(self, creds: Credentials) -> None:
		old = self.tokens or OAuthTokens(client_id=creds.client_id or "")
		expires_at = float(calendar.timegm(creds.expiry.utctimetuple())) if creds.expiry else 0.0
		self.tokens = dataclasses.replace(
			old,
			access_token=creds.token or "",
			refresh_token=creds.refresh_token or old.refresh_token,
			expires_at=expires_at,
		)
		if self.config.on_tokens_refreshed is not None:
			self.config.on_tokens_refreshed(dataclasses.replace(self.tokens))

	# -- calling the API -------------------------------------------------------------------------------------

	def _call(self, fn: Callable[[], dict], what: str) -> dict:
		"""Run one API call; wait out throttling, retry a dropped connection, map failures to ProviderErrors."""
		attempt = 0
		while True:
			try:
				result = fn()
				if result in (None, "", b""):  # an empty answer (users.stop)
					return {}
				if not isinstance(result, dict):  # newer clients hand a body that is not JSON back as text
					raise ValueError("not a JSON object")
				return result
			except HttpError as e:
				error = _api_error(e)
				if _retryable(error):
					self._pause(attempt, error, what)
					attempt += 1
					continue
				raise self._error(error, what) from None
			except auth_exceptions.RefreshError as e:
				if self.delegated:
					raise delegation_error(e, self.config.app, self.config.address) from None
				raise refresh_error(e) from None
			except auth_exceptions.TransportError as e:
				raise ConnectionFailed(
					f"Could not reach Google's sign-in service while {what}: {e}.",
					fix="Check that this site can make outgoing HTTPS connections to oauth2.googleapis.com.",
				) from None
			except (OSError, httplib2.HttpLib2Error, http.client.HTTPException) as e:
				if attempt >= NETWORK_RETRIES:
					raise ConnectionFailed(
						f"Could not reach Gmail while {what}: {e or type(e).__name__}.",
						fix="Check that this site can make outgoing HTTPS connections to gmail.googleapis.com.",
					) from None
				self._pause(attempt, None, what)
				attempt += 1
			except (ValueError, api_errors.Error) as e:
				# A 200 that is not Gmail's JSON (a captive portal, a proxy's error page, a cut batch answer).
				if attempt >= NETWORK_RETRIES:
					raise ConnectionFailed(
						f"Gmail sent an answer that could not be read while {what} ({type(e).__name__}).",
						fix="Check for a proxy or firewall between this site and gmail.googleapis.com; the sync "
						"tries again later.",
					) from None
				self._pause(attempt, None, what)
				attempt += 1
			except auth_exceptions.GoogleAuthError as e:
				raise ProviderError(
					f"Google's sign-in failed while {what}: {_first_line(e)}", code="google_auth_error"
				) from None

	def _pause(self, attempt: int, error: _ApiError | None, what: str) -> None:
		if error is not None and error.retry_after is not None:
			wait = error.retry_after
		else:
			step = min(self.backoff * 2**attempt, MAX_BACKOFF)
			wait = step / 2 + random.uniform(0, step / 2)
		if error is not None and (attempt >= self.max_retries or self._waited + wait > self.max_wait):
			throttled = Throttled(
				f"Gmail kept limiting requests while {what} (HTTP {error.status}: {error.message}); "
				f"stopped after {attempt} retries and {self._waited:.0f} seconds of waiting."
			)
			throttled.retry_after = max(wait, 1.0)  # a hint for the cool-off
			raise throttled
		self._waited += wait
		self.sleep(wait)

	def _error(self, error: _ApiError, what: str) -> ProviderError:
		message, lowered = error.message, error.message.lower()
		if error.status == 401:
			return AccessRevoked(
				f"Gmail refused this account's authorization while {what}: {message}", fix=RECONNECT
			)
		if error.status == 403 and (
			error.reasons & SCOPE_REASONS or "insufficient authentication scopes" in lowered
		):
			return MissingScopes(f"Email Sync lacks permission to read this Gmail mailbox: {message}")
		if "mail service not enabled" in lowered:  # 400 failedPrecondition: a Google account without Gmail
			return MailboxNotHosted(f"{self.config.address or 'This account'} has no Gmail mailbox: {message}")
		if error.status == 400 and lowered.strip(" .") == "precondition check failed":
			# Gmail's bare answer for a Workspace user whose Gmail service is off, or a mailbox never set up.
			return MailboxNotHosted(
				f"Gmail is not enabled for {self.config.address or 'this account'} ({message})",
				code="gmail_not_enabled",
				fix=ADMIN_GMAIL_FIX,
			)
		if error.status == 403 and (error.reasons & DOMAIN_POLICY_REASONS or "domain policy" in lowered):
			return ProviderError(
				f"The Google Workspace administrators do not allow Gmail access here: {message}",
				code="gmail_blocked_by_admin",
				fix=ADMIN_API_FIX,
			)
		if error.status == 403 and error.reasons & QUOTA_REASONS:
			throttled = Throttled(f"The Gmail API quota is used up for today while {what}: {message}")
			throttled.retry_after = 3600.0
			return throttled
		if error.reasons & API_DISABLED_REASONS:
			return ProviderError(
				f"The Gmail API is not enabled for this OAuth client's Google Cloud project: {message}",
				code="gmail_api_disabled",
				fix="In the Google Cloud Console, open the project of the OAuth client, enable the Gmail API "
				"(APIs & Services > Library > Gmail API), wait a few minutes, then click Test Connection.",
			)
		if error.status == 403 and any(text in lowered for text in ACCOUNT_CLOSED_TEXTS):
			return AccountClosed(f"Gmail refused access while {what}: {message}")
		if error.status == 404:
			return _Gone(f"Gmail could not find what it was asked for while {what}: {message}")
		return ProviderError(
			f"Gmail refused {what}: {message} (HTTP {error.status}).",
			code="gmail_error",
			fix="Try again later; if it keeps failing, click Test Connection and Reconnect the account.",
		)

	# -- labels ----------------------------------------------------------------------------------------------

	def list_folders(self) -> list[Folder]:
		data = self._call(lambda: self._users().labels().list(userId="me").execute(), "listing labels")
		self._label_ids, self._label_names = {}, {}
		system, user = [], []
		for label in data.get("labels") or []:
			label_id = label.get("id")
			if not label_id:
				continue
			name = label.get("name") or label_id
			self._label_ids[name] = label_id
			self._label_names[label_id] = name
			if label_id in NOT_FOLDERS:
				continue
			folder = Folder(name=name, role=SYSTEM_ROLES.get(label_id, ""))
			(system if label.get("type") == "system" or label_id in SYSTEM_ROLES else user).append(folder)
		rank = {role: i for i, role in enumerate(ROLE_ORDER)}
		system.sort(key=lambda f: (rank.get(f.role, len(rank)), f.name))
		user.sort(key=lambda f: f.name.lower())
		self._folders = system + user
		return list(self._folders)

	def _find_label(self, wanted: str) -> str | None:
		if wanted in self._label_ids:
			return self._label_ids[wanted]
		if wanted in self._label_names:
			return wanted
		lowered = wanted.lower()  # Gmail label names are unique regardless of case
		return next((i for n, i in self._label_ids.items() if n.lower() == lowered), None)

	def _labels_to_read(self) -> list[tuple[str, str]]:
		"""(label id, label name) to read: configured or INBOX, plus SENT when Bidirectional; never SPAM or TRASH."""
		self.list_folders()
		self.skipped_folders = []
		if self.config.direction == MANUAL_SELECTION:
			keyword = (self.config.manual_keyword or MANUAL_KEYWORD).strip()
			label_id = self._find_label(keyword)
			if label_id is None:
				raise FolderMissing(
					f'The Gmail label "{keyword}" does not exist in this mailbox.',
					fix=f'In Gmail, create a label named "{keyword}" (Settings > Labels > Create new label) and '
					"apply it to the mail to sync; then sync again.",
				)
			return [(label_id, self._label_names[label_id])]
		chosen: list[tuple[str, str]] = []
		for wanted in dict.fromkeys(n.strip() for n in self.config.folders if n and n.strip()) or ["INBOX"]:
			label_id = self._find_label(wanted)
			if label_id is None:
				existing = [n for i, n in self._label_names.items() if i not in NEVER_READ]
				message = f'The Gmail label "{wanted}" does not exist in this mailbox.'
				raise FolderMissing(message, missing=[wanted], existing=existing)
			if label_id in NEVER_READ:  # spam and trash are never synced, whatever the settings say
				self.skipped_folders.append(self._label_names[label_id])
				continue
			if all(label_id != c for c, _ in chosen):
				chosen.append((label_id, self._label_names[label_id]))
		if self.config.direction == BIDIRECTIONAL and all(c != "SENT" for c, _ in chosen):
			chosen.append(("SENT", self._label_names.get("SENT", "SENT")))
		return chosen

	# -- fetching --------------------------------------------------------------------------------------------

	def fetch(self, cursor: dict | None) -> Iterator[Batch]:
		if self._service is None:
			self.connect()
		self._waited = 0.0
		cursor = copy.deepcopy(cursor) if cursor else {}
		labels = self._labels_to_read()
		self._names = dict(labels)
		ids = [label_id for label_id, _ in labels]
		known = [label for label in cursor.get("labels") or [] if isinstance(label, str)]
		listing = cursor.get("listing")
		if isinstance(listing, dict) and listing.get("start_history_id"):
			pending = [label for label in listing.get("labels") or [] if label in ids]
			todo = pending + [label for label in ids if label not in known and label not in pending]
			yield from self._listing(ids, todo, listing)
			return
		if not cursor.get("history_id") or not set(known) & set(ids):
			yield from self._listing(ids, ids, self._new_listing(_epoch(self.config.sync_start)))
			return
		covered = [label for label in ids if label in known]
		new = [label for label in ids if label not in covered]
		try:
			history_id, synced_at = yield from self._incremental(cursor, covered)
		except _HistoryExpired:
			# Re-list from a day before the last sync; labels never synced yet need everything since sync_start.
			after = _epoch(self.config.sync_start) if new else self._relist_after(cursor)
			yield from self._listing(ids, ids, self._new_listing(after))
			return
		if new:  # labels added to the settings: list them once, from the history id just reached
			listing = {
				"start_history_id": history_id,
				"after": _epoch(self.config.sync_start),
				"synced_at": synced_at,
				"labels": new,
				"last_ids": [],
			}
			yield from self._listing(ids, new, listing)

	def fetch_range(
		self, since: date, before: date, folders: list[str] | None = None, position: dict | None = None
	) -> Iterator[Batch]:
		"""`q=after:… before:…` on each label the sync reads; see Provider.fetch_range. The position:
		{"done": [label ids listed to the end], "label": the label in progress, "last_ids": [its last ids out]}"""
		if self._service is None:
			self.connect()
		self._waited = 0.0
		position = position or {}
		labels = self._range_labels(folders)
		self._names = dict(labels)
		done_labels = [label for label in position.get("done") or [] if isinstance(label, str)]
		todo = [label for label, _ in labels if label not in done_labels]
		after, until = _epoch(since), _epoch(before)
		plan: list[tuple[str, list[str]]] = []
		handed: set[str] = set()  # mail carrying several of the labels is handed out once
		for label in todo:
			ordered = self._list_ids(label, after, until)
			if label == position.get("label"):
				ordered = _after_markers(ordered, position.get("last_ids") or [])
			ordered = [message_id for message_id in ordered if message_id not in handed]
			handed.update(ordered)
			plan.append((label, ordered))
		total = sum(len(ordered) for _, ordered in plan)
		finished, earlier = list(done_labels), 0  # earlier: ids of the labels already listed to the end
		for label, ordered in plan:
			for messages, at in self._read_ids(ordered, lambda _, label=label: label, set()):
				state = {"done": list(finished), "label": label, "last_ids": ordered[max(0, at - MARKERS) : at]}
				if at >= len(ordered):
					state = {"done": [*finished, label]}
				yield Batch(messages, state, self._names.get(label, label), total - earlier - at)
			finished.append(label)
			earlier += len(ordered)
		if not total:
			yield Batch([], {"done": finished}, "", 0)

	def _range_labels(self, names: list[str] | None) -> list[tuple[str, str]]:
		reading = self._labels_to_read()
		if not names:
			return reading
		wanted = {self._find_label(name.strip()) or name.strip() for name in names}
		chosen = [(label_id, name) for label_id, name in reading if label_id in wanted]
		if not chosen:
			raise FolderMissing(
				f"{', '.join(sorted(names))} is not among the labels this account syncs "
				f"({', '.join(name for _, name in reading)}).",
				fix="Pick one of the account's labels, or add the label to the account first.",
			)
		return chosen

	def _new_listing(self, after: int | None) -> dict:
		# The history id first: whatever arrives while the listing runs comes after it.
		profile = self._call(lambda: self._users().getProfile(userId="me").execute(), "reading the profile")
		self.profile = profile
		return {
			"start_history_id": str(profile.get("historyId") or ""),
			"after": after,
			"synced_at": int(time.time()),
			"labels": [],
			"last_ids": [],
		}

	def _relist_after(self, cursor: dict) -> int | None:
		start = _epoch(self.config.sync_start)
		try:
			synced_at = int(cursor.get("synced_at") or 0)
		except (TypeError, ValueError):
			synced_at = 0
		if not synced_at:
			return start
		return max(synced_at - HISTORY_OVERLAP, start or 0)

	def _listing(self, all_labels: list[str], todo: list[str], listing: dict) -> Iterator[Batch]:
		"""List `todo` labels (ids only) and hand their mail out oldest first; see the module docstring."""
		base = {key: listing.get(key) for key in ("start_history_id", "after", "synced_at")}
		plan: list[tuple[str, list[str]]] = []
		handed: set[str] = set()  # dedupes mail carrying several synced labels
		total = 0
		for i, label in enumerate(todo):
			ordered = self._list_ids(label, base["after"])
			if i == 0 and label == (listing.get("labels") or [None])[0]:
				ordered = _after_markers(ordered, listing.get("last_ids") or [])
			fresh = [message_id for message_id in ordered if message_id not in handed]
			handed.update(fresh)
			total += len(fresh)
			plan.append((label, ordered))
		final = {
			"history_id": base["start_history_id"],
			"labels": list(all_labels),
			"synced_at": base["synced_at"],
		}
		done: set[str] = set()
		for k, (label, ordered) in enumerate(plan):
			later = [label for label, _ in plan[k + 1 :]]
			for messages, position in self._read_ids(ordered, lambda _, label=label: label, done):
				left = total - len(done)
				if left <= 0:  # nothing after this batch: it completes the listing
					yield Batch(messages, copy.deepcopy(final), self._names.get(label, label), 0)
					return
				state = {**base, "labels": later, "last_ids": []}
				if position < len(ordered):
					state.update(
						labels=[label, *later], last_ids=ordered[max(0, position - MARKERS) : position]
					)
				cursor = {"history_id": None, "labels": list(all_labels), "listing": state}
				yield Batch(messages, cursor, self._names.get(label, label), left)
		yield Batch([], final, "", 0)

	def _read_ids(
		self, ordered: list[str], label_of: Callable[[str], str], done: set[str]
	) -> Iterator[tuple[list[FetchedMessage], int]]:
		"""Download `ordered` (minus the ids in `done`) in batches: yields (messages, position in `ordered`).

		A batch closes at config.batch_size messages or once it reaches config.batch_bytes; batch requests are
		sized by the average message seen so far, so a mailbox of large mail is not downloaded 50 at a time.
		"""
		position = 0
		while position < len(ordered):
			messages: list[FetchedMessage] = []
			size = 0
			while (
				position < len(ordered) and len(messages) < self._batch_size() and size < self._batch_bytes()
			):
				room = min(
					HTTP_BATCH,
					self._batch_size() - len(messages),
					max(1, (self._batch_bytes() - size) // self._typical_size()),
				)
				chunk: list[str] = []
				while position < len(ordered) and len(chunk) < room:
					if ordered[position] not in done:
						chunk.append(ordered[position])
					position += 1
				for message in self._get_messages(chunk, label_of):
					messages.append(message)
					size += len(message.raw)
				done.update(chunk)
			yield messages, position

	def _list_ids(self, label: str, after: int | None, before: int | None = None) -> list[str]:
		"""Ids of the label's mail (since `after`, before `before`), oldest first."""
		ids: list[str] = []
		token = None
		what = f'listing the label "{self._names.get(label, label)}"'
		terms = ([f"after:{after}"] if after else []) + ([f"before:{before}"] if before else [])
		while True:
			kwargs: dict = {"userId": "me", "labelIds": [label], "maxResults": LIST_PAGE}
			if terms:
				kwargs["q"] = " ".join(terms)
			if token:
				kwargs["pageToken"] = token
			page = self._call(lambda kwargs=kwargs: self._users().messages().list(**kwargs).execute(), what)
			ids.extend(m["id"] for m in page.get("messages") or [] if m.get("id"))
			token = page.get("nextPageToken")
			if not token:
				break
		ids.reverse()  # Gmail lists newest first
		return list(dict.fromkeys(ids))

	def _incremental(self, cursor: dict, covered: list[str]):
		"""Hand out what history reports for `covered` since the cursor; returns (new history id, synced_at)."""
		start = str(cursor["history_id"])
		synced_at = int(time.time())
		found: dict[str, tuple[str, str]] = {}  # message id -> (history id before its record, label)
		boundary, latest, token = start, None, None
		while True:
			kwargs: dict = {
				"userId": "me",
				"startHistoryId": start,
				"historyTypes": ["messageAdded", "labelAdded"],
				"maxResults": HISTORY_PAGE,
			}
			if token:
				kwargs["pageToken"] = token
			try:
				page = self._call(
					lambda kwargs=kwargs: self._users().history().list(**kwargs).execute(),
					"reading the history",
				)
			except _Gone:
				raise _HistoryExpired from None
			for record in page.get("history") or []:
				added = [
					(a.get("message") or {}, (a.get("message") or {}).get("labelIds"))
					for a in record.get("messagesAdded") or []
				]
				added += [
					(a.get("message") or {}, a.get("labelIds")) for a in record.get("labelsAdded") or []
				]
				for message, label_ids in added:
					hits = [label for label in covered if label in (label_ids or [])]
					message_id = message.get("id")
					if hits and message_id and message_id not in found:
						found[message_id] = (boundary, hits[0])
				boundary = str(record.get("id") or boundary)
			# The mailbox's history id as the first page was read: every record up to it is in the pages. Records
			# that arrived while paging may come again next time, which is harmless; none can be skipped.
			latest = latest or page.get("historyId")
			token = page.get("nextPageToken")
			if not token:
				break
		end = str(latest or boundary)
		final = {"history_id": end, "labels": list(covered), "synced_at": synced_at}
		order = list(found)
		yielded = False
		for messages, position in self._read_ids(order, lambda message_id: found[message_id][1], set()):
			if position < len(order):
				next_cursor = {**cursor, "history_id": found[order[position]][0], "labels": list(covered)}
				next_cursor.pop("listing", None)
			else:
				next_cursor = final
			yielded = True
			folder = messages[0].folder if messages else ""
			yield Batch(messages, copy.deepcopy(next_cursor), folder, len(order) - position)
		if not yielded and (end != start or sorted(cursor.get("labels") or []) != sorted(covered)):
			yield Batch([], final, "", 0)
		return end, synced_at

	def fetch_one(self, provider_id: str) -> FetchedMessage | None:
		"""The message with this Gmail id again, through the same batch download and error handling as fetch.
		None when it was deleted or now sits in Spam or Trash."""
		if self._service is None:
			self.connect()
		self._waited = 0.0
		try:
			self._names = dict(self._labels_to_read())
		except FolderMissing:  # the account's labels changed since: name the message by any label it has
			self._names = dict(self._label_names)
		messages = self._get_messages([provider_id], lambda _: "")
		return messages[0] if messages else None

	def _get_messages(self, message_ids: list[str], label_of: Callable[[str], str]) -> list[FetchedMessage]:
		"""messages.get format=raw for up to HTTP_BATCH ids in one batch request, in the order asked."""
		if not message_ids:
			return []
		results: dict[str, dict] = {}
		errors: dict[str, str] = {}  # message id -> why Gmail would not hand it out
		pending = list(message_ids)
		attempt = 0
		while pending:
			failed: dict[str, HttpError] = {}

			def collect(request_id, response, exception, failed=failed):
				if exception is not None:
					failed[request_id] = exception
				else:
					results[request_id] = response

			def run(ids=tuple(pending), failed=failed, collect=collect):
				failed.clear()
				batch = self._new_batch()
				for message_id in ids:
					request = self._users().messages().get(userId="me", id=message_id, format="raw")
					batch.add(request, callback=collect, request_id=message_id)
				batch.execute()
				return {}

			self._call(run, "downloading messages")
			retry: list[str] = []
			worst: _ApiError | None = None
			for message_id, exception in failed.items():
				error = _api_error(exception) if isinstance(exception, HttpError) else None
				if error is None:  # the client could not read this part of the answer
					errors[message_id] = f"Gmail sent an unreadable answer for this message ({type(exception).__name__})."
					continue
				if error.status == 404:
					continue  # deleted since it was listed
				if error.status in (401, 403):  # the account's access or quota, not this message
					raise self._error(error, "downloading messages")
				if not _retryable(error):  # refused for this message alone: the account-wide readings don't apply
					errors[message_id] = f"Gmail refused this message: {error.message} (HTTP {error.status})."
					continue
				retry.append(message_id)
				if worst is None or (error.retry_after or 0) > (worst.retry_after or 0):
					worst = error
			if retry:
				try:
					self._pause(attempt, worst, "downloading messages")
				except Throttled:
					if worst.status == 429 or worst.status < 500:
						raise
					# Server errors that outlasted the retries: the message's fault if Gmail serves the rest.
					for message_id in retry:
						errors[message_id] = (
							f"Gmail kept failing to hand out this message: {worst.message} (HTTP {worst.status})."
						)
					retry = []
				attempt += 1
			pending = retry
		messages = []
		for message_id in message_ids:
			label = label_of(message_id)
			resource = results.get(message_id)
			message = self._message(resource, label) if resource is not None else None
			if message is not None and message.failed:
				errors[message_id] = message.error
			if message_id in errors:
				resource, message = self._failed(message_id, label, errors[message_id])
			if message is None or NEVER_READ & set(resource.get("labelIds") or []):
				continue
			if not message.failed:
				self._seen_bytes += len(message.raw)
				self._seen_count += 1
			messages.append(message)
		return messages

	def _failed(self, message_id: str, label: str, reason: str) -> tuple[dict, FetchedMessage | None]:
		"""A message Gmail would not hand out, as an error item; its metadata (format=minimal) proves that Gmail
		itself answers (else this raises and the run stops) and dates it. (resource, None) when it is gone."""
		try:
			resource = self._call(
				lambda: self._users().messages().get(userId="me", id=message_id, format="minimal").execute(),
				"checking a message Gmail would not hand out",
			)
		except _Gone:
			return {}, None
		message = self._message({**resource, "raw": ""}, label)
		message.raw, message.error, message.error_code = b"", reason, "message_unavailable"
		return resource, message

	def _new_batch(self) -> BatchHttpRequest:
		# The client builds the batch URI from the discovery document's rootUrl and ignores client_options'
		# api_endpoint (2.2.0 and newest alike), so with a custom endpoint the URI is set here.
		if self._api_root():
			return BatchHttpRequest(batch_uri=self._api_root() + "batch/gmail/v1")
		return self._service.new_batch_http_request()

	def _message(self, resource: dict, label: str) -> FetchedMessage:
		"""The FetchedMessage of a format=raw resource; with `error` set when its content is unreadable."""
		label_ids = resource.get("labelIds") or []
		folder = next((name for label_id, name in self._names.items() if label_id in label_ids), None)
		try:
			raw, error = _decode_raw(resource.get("raw"), resource.get("id")), ""
		except ProviderError as e:
			raw, error = b"", e.message
		return FetchedMessage(
			raw=raw,
			error=error,
			error_code="message_unavailable" if error else "",
			folder=folder or self._names.get(label, label),
			provider_id=str(resource.get("id")),
			from_sent_folder="SENT" in label_ids,
			received_at=_from_millis(resource.get("internalDate")),
			thread_id=str(resource.get("threadId") or ""),
		)

	def _typical_size(self) -> int:
		return max(1, self._seen_bytes // self._seen_count) if self._seen_count else TYPICAL_SIZE

	def _batch_size(self) -> int:
		return max(1, int(self.config.batch_size or 1))

	def _batch_bytes(self) -> int:
		return max(1, int(self.config.batch_bytes or 1))

	# -- push notifications and revocation -------------------------------------------------------------------

	def start_watch(self, topic_name: str, label_ids: list[str] | None = None) -> dict:
		"""Ask Gmail to publish mailbox changes to a Pub/Sub topic; renew before `expiration` (epoch ms, ~7 days).

		`label_ids` defaults to the labels this account syncs. Returns {"history_id", "expiration"}.
		"""
		if label_ids is None:
			label_ids = [label_id for label_id, _ in self._labels_to_read()]
		body = {"topicName": topic_name, "labelIds": list(label_ids), "labelFilterBehavior": "include"}
		response = self._call(
			lambda: self._users().watch(userId="me", body=body).execute(), "starting push notifications"
		)
		return {
			"history_id": str(response.get("historyId") or ""),
			"expiration": int(response.get("expiration") or 0),
		}

	def stop_watch(self) -> None:
		self._call(lambda: self._users().stop(userId="me").execute(), "stopping push notifications")

	def revoke(self) -> bool:
		"""Revoke the grant at Google (on disconnect). Never raises; True when the tokens no longer work."""
		if self.delegated:
			return True  # nothing was granted by the user: the administrator's delegation governs access
		oauth = self.tokens or self.config.oauth
		if oauth is None:
			return False
		return revoke_token(
			oauth.refresh_token or oauth.access_token, self.config.auth_base, self.config.timeout
		)


# -- pure helpers --------------------------------------------------------------------------------------------


def parse_push(envelope: dict) -> dict:
	"""A Pub/Sub push envelope from Gmail -> {"email_address", "history_id", "message_id", "subscription"}.

	The envelope is {"message": {"data": base64(JSON {"emailAddress", "historyId"}), "messageId", ...},
	"subscription": ...}. Raises ProviderError(code="bad_push") when it is anything else.
	"""

	def bad(why: str) -> ProviderError:
		return ProviderError(f"Not a Gmail push notification: {why}.", code="bad_push", fix="Nothing to do.")

	message = envelope.get("message") if isinstance(envelope, dict) else None
	if not isinstance(message, dict):
		raise bad("no message")
	data = message.get("data")
	if not isinstance(data, str) or not data.strip():
		raise bad("no data")
	try:
		text = data.strip()
		decoded = base64.b64decode(
			text + "=" * (-len(text) % 4), altchars=b"-_" if re.search("[-_]", text) else None
		)
		payload = json.loads(decoded.decode("utf-8"))
	except (binascii.Error, ValueError, UnicodeDecodeError):
		raise bad("data is not base64-encoded JSON") from None
	if not isinstance(payload, dict):
		raise bad("data is not a JSON object")
	address, history_id = payload.get("emailAddress"), payload.get("historyId")
	if not isinstance(address, str) or "@" not in address:
		raise bad("no emailAddress")
	if isinstance(history_id, bool) or not re.fullmatch(r"\d+", str(history_id)):
		raise bad("no historyId")
	return {
		"email_address": address.strip().lower(),
		"history_id": str(history_id),
		"message_id": str(message.get("messageId") or message.get("message_id") or ""),
		"subscription": str(envelope.get("subscription") or ""),
	}


def verify_push_jwt(
	authorization: str,
	audience: str,
	service_account: str = "",
	certs_url: str = "",
	certificates: CertificateCache | None = None,
) -> dict:
	"""Check the OIDC token Pub/Sub sends with an authenticated push ("Authorization: Bearer <JWT>"): signed by
	Google, unexpired, for `audience`, and naming `service_account` (the push subscription's service account)
	with a verified email. Returns its claims; raises ProviderError(code="bad_push_token") otherwise.

	Google's signing certificates come from `certificates` (by default this process's CERTIFICATES cache), so a
	push costs no request to Google while they are fresh. `certs_url` replaces their address (tests: the
	emulator's)."""
	import requests as http
	from google.auth.transport.requests import Request
	from google.oauth2 import id_token

	def bad(why: str) -> ProviderError:
		return ProviderError(
			f"A Gmail push was refused: {why}.",
			code="bad_push_token",
			fix="Check the push subscription's authentication in Google Cloud (Pub/Sub > Subscriptions > Edit > "
			"Enable authentication) against the audience and service account in Email Sync Settings.",
		)

	scheme, _, token = (authorization or "").partition(" ")
	if scheme.lower() != "bearer" or not token.strip():
		raise bad("it carried no OIDC token")
	session = http.Session()
	request = (certificates or CERTIFICATES).transport(Request(session=session))
	if certs_url:
		request = _RedirectedRequest(request, {GOOGLE_CERTS_URL: certs_url})
	try:
		try:
			claims = id_token.verify_oauth2_token(token.strip(), request, audience=audience)
		except ValueError as e:
			# Signed with a key newer than the cached certificates (Google rotates them): fetch them again,
			# at most once per REFETCH_SECONDS, so forged key ids cannot make every push fetch.
			if "Certificate for key id" not in str(e) or not (certificates or CERTIFICATES).forget_stale():
				raise
			claims = id_token.verify_oauth2_token(token.strip(), request, audience=audience)
	except (ValueError, auth_exceptions.GoogleAuthError) as e:  # bad signature, audience, issuer, expiry
		raise bad(f"its OIDC token is not valid ({_first_line(e)})") from None
	finally:
		session.close()
	email = str(claims.get("email") or "").lower()
	if service_account and (email != service_account.strip().lower() or not claims.get("email_verified")):
		raise bad(f"its OIDC token names {email or 'no service account'}, not {service_account}")
	return claims


GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v1/certs"


class CertificateCache:
	"""Google's signing certificates, kept for as long as Google's Cache-Control max-age says (at most
	MAX_SECONDS; DEFAULT_SECONDS when it says nothing): a push would otherwise fetch them every time.

	In-process and bounded: one entry per certificate URL (Google's, or an emulator's), only successful
	answers, at most MAX_ENTRIES. google-auth reads the certificates through `transport(request)`."""

	DEFAULT_SECONDS = 300
	MAX_SECONDS = 24 * 3600
	MAX_ENTRIES = 8
	REFETCH_SECONDS = 60  # certificates at least this old may be fetched again for an unknown key id

	def __init__(self, clock: Callable[[], float] = time.monotonic):
		self.clock = clock
		self._entries: dict[str, tuple[float, float, object]] = {}  # url -> (fetched at, fresh until, response)
		self._lock = threading.Lock()

	def transport(self, inner):
		"""A google-auth transport request answering GETs of certificate URLs from the cache."""

		def request(url, method="GET", *args, **kwargs):
			if method != "GET" or not url.endswith("/certs"):
				return inner(url, method, *args, **kwargs)
			return self.get(url, lambda: inner(url, method, *args, **kwargs))

		return request

	def get(self, url: str, fetch: Callable[[], object]):
		now = self.clock()
		with self._lock:
			entry = self._entries.get(url)
			if entry and entry[1] > now:
				return entry[2]
		response = fetch()
		if getattr(response, "status", 0) == 200:
			fresh = _max_age(getattr(response, "headers", None) or {}, self.DEFAULT_SECONDS, self.MAX_SECONDS)
			with self._lock:
				if url not in self._entries and len(self._entries) >= self.MAX_ENTRIES:
					self._entries.pop(next(iter(self._entries)))
				self._entries[url] = (now, now + fresh, _KeptResponse(response))
		return response

	def forget_stale(self) -> bool:
		"""Drop the certificates fetched REFETCH_SECONDS ago or more; True when any were dropped."""
		now = self.clock()
		with self._lock:
			stale = [url for url, (fetched, _, _) in self._entries.items() if now - fetched >= self.REFETCH_SECONDS]
			for url in stale:
				del self._entries[url]
		return bool(stale)

	def clear(self) -> None:
		with self._lock:
			self._entries.clear()


CERTIFICATES = CertificateCache()


class _KeptResponse:
	"""A google-auth response with its body read, to hand out again."""

	def __init__(self, response):
		self.status, self.headers, self.data = response.status, dict(response.headers or {}), response.data


def _max_age(headers, default: float, limit: float) -> float:
	"""Seconds a response may be reused, from its Cache-Control (no-store/no-cache: 0), within [0, limit]."""
	value = next((v for k, v in headers.items() if str(k).lower() == "cache-control"), "")
	seconds = default
	for directive in str(value)[:1000].lower().split(","):
		name, _, number = directive.strip().partition("=")
		if name in ("no-store", "no-cache"):
			return 0.0
		if name == "max-age" and number.strip().isdigit():
			seconds = int(number.strip()[:9])
	return float(min(max(seconds, 0), limit))


class _RedirectedRequest:
	"""A google-auth transport request that fetches some URLs from elsewhere (tests: Google's certificates
	from the emulator), so that verify_oauth2_token, with its issuer checks, is what runs everywhere."""

	def __init__(self, inner, redirects: dict):
		self.inner, self.redirects = inner, redirects

	def __call__(self, url, *args, **kwargs):
		return self.inner(self.redirects.get(url, url), *args, **kwargs)


def verify_push_token(expected: str, given: str) -> bool:
	"""Compare the shared token of a push URL in constant time; an empty expected token never matches."""
	if not expected or not isinstance(given, str) or not given:
		return False
	return hmac.compare_digest(expected.encode("utf-8"), given.encode("utf-8"))


def _api_error(e: HttpError) -> _ApiError:
	status = int(getattr(e.resp, "status", 0) or 0)
	message, reasons = "", set()
	content = e.content.decode("utf-8", "replace") if isinstance(e.content, bytes) else str(e.content or "")
	try:
		data = json.loads(content)
	except ValueError:
		data = {}
	error = data.get("error") if isinstance(data, dict) else None
	if isinstance(error, dict):
		message = str(error.get("message") or "")
		reasons |= {
			str(x.get("reason")) for x in error.get("errors") or [] if isinstance(x, dict) and x.get("reason")
		}
		reasons |= {
			str(x.get("reason"))
			for x in error.get("details") or []
			if isinstance(x, dict) and x.get("reason")
		}
		if error.get("status"):
			reasons.add(str(error["status"]))
	elif isinstance(error, str):
		message = str(data.get("error_description") or error)
	if not message:
		message = (content or getattr(e.resp, "reason", "") or f"HTTP {status}").strip()[:300]
	return _ApiError(status, message, reasons, _retry_after(e.resp.get("retry-after") if e.resp else None))


def _retryable(error: _ApiError) -> bool:
	return error.status in RETRY_STATUSES or (error.status == 403 and bool(error.reasons & RETRY_REASONS))


def _retry_after(value) -> float | None:
	if value is None:
		return None
	value = str(value).strip()
	try:
		return max(0.0, float(value))
	except ValueError:
		pass
	try:
		when = parsedate_to_datetime(value)
	except (TypeError, ValueError):
		return None
	if when.tzinfo is None:
		when = when.replace(tzinfo=timezone.utc)
	return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _after_markers(ordered: list[str], markers: list[str]) -> list[str]:
	"""What is left of `ordered` after the furthest of `markers` (all of it if none is found)."""
	positions = {message_id: i for i, message_id in enumerate(ordered)}
	found = [positions[m] for m in markers if m in positions]
	return ordered[max(found) + 1 :] if found else ordered


def _decode_raw(raw, message_id) -> bytes:
	if not isinstance(raw, str):
		raise ProviderError(f"Gmail sent message {message_id} without its content.", code="gmail_error")
	try:
		return base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
	except (binascii.Error, ValueError):
		raise ProviderError(
			f"Gmail sent message {message_id} in an unreadable encoding.", code="gmail_error"
		) from None


def _from_millis(value) -> datetime | None:
	try:
		millis = int(value)
	except (TypeError, ValueError):
		return None
	return datetime.fromtimestamp(millis / 1000, timezone.utc).replace(tzinfo=None)


def _epoch(day: date | None) -> int | None:
	if day is None:
		return None
	if isinstance(day, datetime):
		day = day.date()
	return calendar.timegm(day.timetuple())
