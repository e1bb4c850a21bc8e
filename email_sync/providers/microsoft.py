"""Microsoft 365 / Outlook.com provider: Microsoft Graph over HTTPS with requests, tokens from msal.

Read-only: only Mail.Read is needed (User.Read too, for the address shown by Test Connection); nothing in the
mailbox changes. Every request asks for immutable ids (`Prefer: IdType="ImmutableId"`), so a message keeps its
id when the user moves it, and `FetchedMessage.provider_id` is that id.

Incremental sync uses a delta query per folder. The cursor is plain JSON keyed by folder id:

    {"folders": {"<folder id>": {"delta_link": "https://graph.microsoft.com/v1.0/...$deltatoken=...",
                                 "next_link": None,            # set mid-round: the page to resume at
                                 "resync_floor": None,         # set mid-round after lost sync state
                                 "last_received": "2025-01-31T09:00:00Z"}}}

A round starts at `next_link` (resume), else `delta_link` (changes since the last round), else a fresh delta
query. Delta queries never carry a $filter: Graph returns at most 5,000 messages for a filtered delta round,
silently, so a folder with more mail since the start date would be cut short. Delta pages hold only stubs (id,
receivedDateTime); messages received before the sync start (or the resync floor) are skipped here, before any
download. Pages are read in order; each batch carries the cursor that
is true once it is committed: after a batch that ends a page, the page's nextLink (or its deltaLink at the end
of the round); after a batch that ends inside a page, the link of that page itself. A crash therefore resumes
at a page boundary: some messages may be handed out twice (the app dedupes by message identity), none is ever
skipped. Messages are oldest first within a page; pages come in Graph's order. A run that goes through
many pages of skipped (old) stubs hands out an empty batch every PROGRESS_PAGES pages, so the listing
resumes near where it stopped.

Delta also reports changes to existing messages (read state, categories) and messages moved into the folder;
they are all downloaded (again) and left to the app's dedupe: correctness over bandwidth.

Lost sync state (HTTP 410, e.g. SyncStateNotFound): the folder restarts with a fresh delta query and skips
messages received before (last_received - 1 day), or sync_start, when either is known (the "resync floor",
kept in the cursor until the round ends); messages already handed out in this run are skipped.

Manual selection: delta cannot filter on categories, so each run lists the folder's messages carrying the
category (`categories/any(c:c eq 'EmailSync')`), and after the first complete scan only those modified since
the previous scan started (server time, minus a margin; tagging a message modifies it). Cursor per folder:
{"manual_since": ISO time or None, "scan_started": ISO time, "next_link": resume link or None}.

Folders: top-level folders by display name ("Inbox"), subfolders by path ("Inbox/Customers"). Roles come from
`wellKnownName` when Graph sends it (beta) or by asking for the well-known folders (inbox, sentitems,
junkemail, deleteditems, drafts, archive) by name. Junk Email and Deleted Items are never read.

One bad message never blocks a folder: when a message's MIME content ($value) is refused after the retries
(500 ErrorMimeContentConversionFailed for some S/MIME mail, 504 for messages over 25 MB, another 4xx) while
Graph still serves the message itself (checked with one small request), it is handed out as a
FetchedMessage with `error` set and no content, and the cursor moves past it. Throttling (429), 503, and a
failing check mean the service, not the message, is in trouble: the run stops and resumes from the cursor.

Throttling: 429, 502, 503 and 504 are retried after Retry-After (seconds or an HTTP date), else after an
exponential backoff with jitter, at most `max_attempts` times per request; then Throttled is raised, with
`retry_after` set when Graph said how long to wait. A 401 (expired or revoked access token) refreshes the
token through msal and retries once.

Company mailboxes (shared or delegated, `config.app` set): the app reads /users/{address} with its own token
(client credentials, a secret or a certificate; the Graph application permission Mail.Read with admin
consent), instead of /me with someone's sign-in. Nothing else changes: delta, downloads and subscriptions
work the same under that root.

Shared mailboxes through a person's sign-in (`config.through_sign_in`): the person signs in as themselves
with the delegated Mail.Read.Shared, and /users/{shared address} is read with their token (delta, downloads,
fetch_one, fetch_range). Graph answers 403 ErrorAccessDenied both when the token lacks Mail.Read.Shared and when
the person has no access to that mailbox; connect() tells them apart by refreshing with Mail.Read.Shared asked
for (refused when not granted) and trying once more. Graph sends no change notifications for mail read this
way (Microsoft documents Mail.Read.Shared as not supporting subscriptions), so such accounts are polled.

Real-time: create/renew/delete Graph subscriptions; `validation_response` and `parse_notifications` are pure
functions for the webhook endpoint.
"""

from __future__ import annotations

import copy
import hmac
import random
import re
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from urllib.parse import quote, urlencode, urlsplit

import requests

from email_sync.providers.base import (
	BIDIRECTIONAL,
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
	Provider,
	ProviderError,
	Secret,
	TestResult,
	Throttled,
)
from email_sync.providers.microsoft_oauth import (  # noqa: F401 - re-exported for callers
	APP_PERMISSION_FIX,
	SHARED_SCOPE_FIX,
	SIGN_IN_SCOPES,
	TOKEN_SCOPES,
	AppTokenManager,
	SharedTokenManager,
	TokenManager,
)

DEFAULT_API_BASE = "https://graph.microsoft.com/v1.0"
IMMUTABLE_IDS = 'IdType="ImmutableId"'
# Well-known folder names Graph resolves in /me/mailFolders/{name}, and the roles they stand for.
WELL_KNOWN_ROLES = {
	"inbox": "inbox",
	"sentitems": "sent",
	"junkemail": "junk",
	"deleteditems": "trash",
	"drafts": "drafts",
	"archive": "archive",
}
NEVER_READ_ROLES = {"junk", "trash"}
RETRY_STATUSES = {429, 502, 503, 504}
MAX_PAGE_SIZE = 100  # messages per delta page asked for (Prefer: odata.maxpagesize)
MAX_FOLDERS = 2000  # folders listed at most, and how deep into subfolders
MAX_FOLDER_DEPTH = 10
RESYNC_OVERLAP = timedelta(
	days=1
)  # a resync after lost sync state re-reads this much before the last message
MANUAL_OVERLAP = timedelta(
	minutes=10
)  # manual mode re-reads messages modified this long before the last scan
DELTA_SELECT = "id,receivedDateTime,parentFolderId,conversationId"
RANGE_MARKERS = 10  # ids of the last messages handed out, kept in a range listing's position
MAX_PAGES_PER_FOLDER = 100_000  # a server handing out nextLinks forever must not keep a sync running forever
PROGRESS_PAGES = 10  # pages of only skipped stubs after which an empty batch saves the position
MAILBOX_NOT_HOSTED_CODES = {
	"MailboxNotEnabledForRESTAPI",
	"MailboxNotSupportedForRESTAPI",
	"MailboxInfoStale",
}
ACCESS_DENIED_CODES = {
	"ErrorAccessDenied",
	"Authorization_RequestDenied",
	"AccessDenied",
	"ErrorInsufficientPermissions",
}
ACCOUNT_CLOSED_CODES = {"ErrorAccountDisabled", "ErrorAccountSuspend"}
# HTTP answers to a message download that say the service (or our access), not that message, is in trouble.
SERVICE_STATUSES = {401, 403, 404, 410, 429, 503}


class _SyncStateLost(ProviderError):
	code = "sync_state_lost"
	transient = True


class _NotFound(ProviderError):
	code = "not_found"


class SharedMailboxDenied(MissingScopes):
	"""The person who signed in may not read the shared mailbox (no Full Access or Read permission on it)."""

	code = "shared_mailbox_denied"


class PushUnavailable(ProviderError):
	code = "push_unavailable"


class MicrosoftProvider(Provider):
	"""Reads mail through Microsoft Graph.

	`verify`: True (system CAs), or the path of a CA bundle (tests, TLS-inspecting proxies); used for Graph
	and for msal. `max_attempts`, `backoff`, `max_backoff`, `max_retry_after` and `sleep` shape throttling
	retries; `page_size` the delta page size asked for (default: batch_size, at most 100).
	"""

	def __init__(
		self,
		config: AccountConfig,
		*,
		verify: bool | str = True,
		max_attempts: int = 6,
		backoff: float = 1.0,
		max_backoff: float = 60.0,
		max_retry_after: float = 300.0,
		page_size: int | None = None,
		sleep: Callable[[float], None] = time.sleep,
	):
		super().__init__(config)
		self.verify = verify
		self.max_attempts = max(1, max_attempts)
		self.backoff = backoff
		self.max_backoff = max_backoff
		self.max_retry_after = max_retry_after
		self.page_size = max(1, page_size or min(config.batch_size or MAX_PAGE_SIZE, MAX_PAGE_SIZE))
		self.sleep = sleep
		self.app_only = config.app is not None  # a company mailbox read with the app's own access
		# a shared mailbox read with a person's own sign-in and Mail.Read.Shared
		self.through_sign_in = bool(config.through_sign_in) and not self.app_only
		manager = AppTokenManager if self.app_only else SharedTokenManager if self.through_sign_in else TokenManager
		self.tokens = manager(config, verify=verify)
		self.mailbox_address = ""  # from GET /me (the configured address for app access), after connect()
		self._signed_in: set[str] = set()  # the signed-in user's mail and userPrincipalName
		self.signed_in_as = ""  # who signed in (mail, else userPrincipalName), after connect()
		self.skipped_folders: list[str] = []  # configured junk/trash folders left out of the last fetch
		self._session: requests.Session | None = None
		self._send_options: dict = {}  # verify and proxies for every request, from the environment
		self._folder_ids: dict[str, str] = {}  # folder name -> Graph folder id, from the last list_folders()
		self._folders: list[Folder] | None = None
		self._handed_out: set[str] = set()  # message ids handed out in this fetch() run

	# -- connection ------------------------------------------------------------------------------------------

	@property
	def api_base(self) -> str:
		return (self.config.api_base or DEFAULT_API_BASE).rstrip("/")

	@property
	def root(self) -> str:
		"""The mailbox in Graph paths: /me for a personal sign-in, /users/{address} for app access and for a
		shared mailbox read through someone's sign-in."""
		if self.app_only or self.through_sign_in:
			return f"/users/{quote(self.config.address.strip(), safe='@')}"
		return "/me"

	def connect(self) -> None:
		"""Check the sign-in and that Graph serves this mailbox; learn its address."""
		self._ensure_session()
		if self.app_only:
			self._connect_app()
			return
		try:
			me = self._get_json("/me?$select=mail,userPrincipalName", "reading the signed-in user")
		except MissingScopes:
			me = {}  # an old grant without User.Read: the address stays unknown, mail may still be readable
		except _NotFound as e:
			raise self._not_hosted(e) from None
		self.mailbox_address = me.get("mail") or me.get("userPrincipalName") or ""
		self._signed_in = {str(me.get(k) or "").lower() for k in ("mail", "userPrincipalName")} - {""}
		self.signed_in_as = self.mailbox_address.lower()
		if self.through_sign_in:
			self._connect_shared()
			return
		# /me works for any account; reading a folder proves there is a mailbox Graph can read.
		try:
			self._get_json("/me/mailFolders/inbox?$select=id", "opening the Inbox")
		except _NotFound as e:
			raise self._not_hosted(e) from None

	def _connect_app(self) -> None:
		# No GET /users/{id}: that needs User.Read.All, and Mail.Read is all the app is given.
		if not self.config.address.strip():
			raise FolderMissing("A company mailbox account needs the mailbox's address.", fix="Enter the address.")
		self.mailbox_address = self.config.address.strip().lower()
		try:
			self._get_json(f"{self.root}/mailFolders/inbox?$select=id", "opening the Inbox")
		except _NotFound as e:
			raise MailboxNotHosted(
				f"Microsoft 365 has no mailbox {self.mailbox_address} in this organization: {e.message}",
				fix="Check the address: it must be a shared mailbox or a user's mailbox in the organization whose "
				"tenant id is in Email Sync Settings.",
			) from None

	def _connect_shared(self) -> None:
		"""Open the shared mailbox's Inbox with the signed-in person's token, or say why they may not."""
		if not self.config.address.strip():
			raise FolderMissing("A shared mailbox account needs the mailbox's address.", fix="Enter the address.")
		self.mailbox_address = self.config.address.strip().lower()
		inbox = f"{self.root}/mailFolders/inbox?$select=id"
		for attempt in (1, 2):
			try:
				self._get_json(inbox, "opening the Inbox of the shared mailbox")
				return
			except _NotFound as e:
				raise MailboxNotHosted(
					f"Microsoft 365 has no mailbox {self.mailbox_address} that {self._signer()} can reach: {e.message}",
					fix="Check the address: it must be a shared mailbox (or a user's mailbox) in the organization of "
					"the person who signs in.",
				) from None
			except SharedMailboxDenied:
				if attempt == 2:
					raise
			# Denied: a token without Mail.Read.Shared and a person without access both get the same 403. A
			# refresh asks for Mail.Read.Shared, and is refused (with that fix) when it was never granted.
			self.tokens.refresh()

	def _signer(self) -> str:
		return self.signed_in_as or "the person who signed in"

	def _not_hosted(self, e: ProviderError) -> MailboxNotHosted:
		return MailboxNotHosted(f"Microsoft Graph has no mailbox for {self._who()}: {e.message}")

	def close(self) -> None:
		session, self._session = self._session, None
		if session is not None:
			session.close()
		self.tokens.close()

	def revoke(self) -> bool:
		"""Disconnect: drop the tokens held here. Graph has no revocation endpoint for one app's delegated tokens
		(POST /me/revokeSignInSessions signs the user out of every app and needs User.RevokeSessions.All), so
		the refresh token simply stops being used; the user can remove the app at
		https://myapps.microsoft.com."""
		self.tokens.drop()
		self.close()
		return True

	def _ensure_session(self) -> requests.Session:
		if self._session is None:
			session = requests.Session()
			# The environment (HTTPS_PROXY, NO_PROXY, REQUESTS_CA_BUNDLE) is read once for the API host, then
			# passed on each request: requests would scan it again per request, a quarter of the time spent on
			# a large mailbox. Every URL requested is on that host (see _check_link).
			env = session.merge_environment_settings(self.api_base, {}, None, self.verify, None)
			session.trust_env = False
			self._send_options = {"verify": env["verify"], "proxies": env["proxies"]}
			self._session = session
		return self._session

	# -- HTTP ------------------------------------------------------------------------------------------------

	def _url(self, path_or_url: str) -> str:
		if path_or_url.startswith(("https://", "http://")):
			return self._check_link(path_or_url)
		return self.api_base + path_or_url

	def _check_link(self, url: str) -> str:
		"""Links from Graph or from a stored cursor must point at the API host, or the token would leak."""
		ours, theirs = urlsplit(self.api_base), urlsplit(url)
		if (theirs.scheme, theirs.netloc.lower()) != (ours.scheme, ours.netloc.lower()):
			raise ProviderError(
				f"Refusing to follow a link outside {ours.scheme}://{ours.netloc}: {url[:200]}",
				code="bad_link",
				fix="Reset the account's sync state (cursor) and sync again.",
			)
		return url

	def _request(
		self,
		method: str,
		path_or_url: str,
		what: str,
		*,
		json: dict | None = None,
		prefer: tuple[str, ...] = (),
	) -> requests.Response:
		"""One Graph call with retries for throttling and network errors and one token refresh on 401."""
		session = self._ensure_session()
		url = self._url(path_or_url)
		attempt, refreshed = 0, False
		while True:
			headers = {
				"Authorization": Secret(f"Bearer {self.tokens.access_token()}"),
				"Prefer": ", ".join([IMMUTABLE_IDS, *prefer]),
				"Accept": "application/json",
			}
			try:
				response = session.request(
					method, url, headers=headers, json=json, timeout=self.config.timeout, **self._send_options
				)
			except requests.exceptions.SSLError as e:
				err = ConnectionFailed(
					f"The certificate of {urlsplit(url).netloc} is not trusted: {_short(e)}.",
					fix="Check the system's CA certificates (or the CA bundle configured for Microsoft) on this site.",
				)
				err.transient = False
				raise err from None
			except (requests.exceptions.RequestException, OSError) as e:
				# Refused, reset or timed out, or an answer cut short (ChunkedEncodingError) or garbled: all
				# network trouble, never to escape as such (its traceback would carry the request's headers).
				attempt += 1
				if attempt >= self.max_attempts:
					raise ConnectionFailed(
						f"Could not reach Microsoft Graph while {what}: {_short(e)}.",
						fix="Check that this site can reach graph.microsoft.com over HTTPS; the sync tries again later.",
					) from None
				self.sleep(self._backoff(attempt))
				continue
			status = response.status_code
			if status in RETRY_STATUSES:
				attempt += 1
				wait = retry_after(response.headers.get("Retry-After"))
				if attempt >= self.max_attempts or (wait is not None and wait > self.max_retry_after):
					err = Throttled(
						f"Microsoft Graph kept refusing requests while {what} (HTTP {status}, {attempt} attempts)."
					)
					err.retry_after = wait
					err.http_status = status
					raise err
				self.sleep(wait if wait is not None else self._backoff(attempt))
				continue
			if status == 401 and not refreshed:
				refreshed = True
				self.tokens.refresh()  # expired or revoked access token: get a new one, try once more
				continue
			if status >= 400:
				err = self._error(response, what, refreshed)
				err.http_status = status
				raise err
			return response

	def _get_json(self, path_or_url: str, what: str, prefer: tuple[str, ...] = ()) -> dict:
		response = self._request("GET", path_or_url, what, prefer=prefer)
		try:
			return response.json()
		except ValueError:
			raise ProviderError(
				f"Microsoft Graph sent an unreadable answer while {what}.", code="microsoft_graph_error"
			)

	def _backoff(self, attempt: int) -> float:
		return min(self.max_backoff, self.backoff * 2 ** (attempt - 1)) * random.uniform(0.5, 1.0)

	def _error(self, response: requests.Response, what: str, refreshed: bool) -> ProviderError:
		status = response.status_code
		code, message = _graph_error(response)
		detail = f"{message} ({code}, HTTP {status})" if code else f"HTTP {status}"
		who = self.mailbox_address or self.config.address or "this account"
		if code in MAILBOX_NOT_HOSTED_CODES:
			return MailboxNotHosted(
				f"Microsoft Graph cannot read the mailbox of {who}: it is not in Exchange Online (Microsoft 365 or "
				f"Outlook.com), or has no Exchange licence ({code})."
			)
		if code in ACCOUNT_CLOSED_CODES:
			return AccountClosed(f"The mailbox of {who} is disabled: {detail}.")
		if status == 410:
			return _SyncStateLost(f"Microsoft Graph lost the sync state while {what}: {detail}.")
		if status == 401:
			if self.app_only:
				return AccessRevoked(
					f"Microsoft Graph rejected the app's fresh token while {what}: {detail}.", fix=APP_PERMISSION_FIX
				)
			return AccessRevoked(
				f"Microsoft Graph rejected a freshly refreshed sign-in while {what}: {detail}."
			)
		if status == 403 and (code in ACCESS_DENIED_CODES or not code):
			if self.through_sign_in:
				signer = self._signer()
				opening = f"Signed in as {signer}, who" if self.signed_in_as else "The person who signed in"
				return SharedMailboxDenied(
					f"{opening} may not read the shared mailbox {who}: {detail}.",
					fix=f"In the Exchange admin center, give {signer} Full Access (or Read permission) on the shared "
					f"mailbox {who}, then click Test Connection again. Or read it with the app's own access: set "
					"Mailbox to Shared or delegated and set up Company Mailboxes in Email Sync Settings. If "
					f"{signer} already has access: {SHARED_SCOPE_FIX}",
				)
			if self.app_only:
				return MissingScopes(
					f"The app may not read the mailbox of {who} (app access, no personal sign-in): {detail}.",
					fix=APP_PERMISSION_FIX,
				)
			return MissingScopes(f"Microsoft Graph refused access while {what}: {detail}.")
		if status == 404:
			return _NotFound(f"Microsoft Graph found nothing while {what}: {detail}.")
		err = ProviderError(f"Microsoft Graph refused {what}: {detail}.", code="microsoft_graph_error")
		err.transient = status >= 500
		return err

	# -- folders ---------------------------------------------------------------------------------------------

	def list_folders(self) -> list[Folder]:
		roles = self._well_known_ids()
		folders: list[Folder] = []
		ids: dict[str, str] = {}
		queue: list[tuple[str, str, int]] = [(f"{self.root}/mailFolders?$top=100", "", 0)]  # (url, parent, depth)
		while queue and len(folders) < MAX_FOLDERS:
			url, parent, depth = queue.pop(0)
			for item in self._pages(url, "listing folders"):
				name = (
					f"{parent}/{item.get('displayName', '')}" if parent else str(item.get("displayName", ""))
				)
				role = WELL_KNOWN_ROLES.get(str(item.get("wellKnownName") or "").lower(), "") or roles.get(
					item["id"], ""
				)
				if name in ids:  # two folders with the same path: keep both apart
					name = f"{name} ({item['id'][-6:]})"
				folders.append(Folder(name, role))
				ids[name] = item["id"]
				if item.get("childFolderCount") and depth + 1 < MAX_FOLDER_DEPTH:
					queue.append(
						(
							f"{self.root}/mailFolders/{quote(item['id'], safe='')}/childFolders?$top=100",
							name,
							depth + 1,
						)
					)
				if len(folders) >= MAX_FOLDERS:
					break
		self._folders, self._folder_ids = folders, ids
		return folders

	def _well_known_ids(self) -> dict[str, str]:
		"""{folder id: role} for the well-known folders this mailbox has."""
		roles = {}
		for name, role in WELL_KNOWN_ROLES.items():
			try:
				item = self._get_json(f"{self.root}/mailFolders/{name}?$select=id", f"looking up the {name} folder")
			except _NotFound:
				continue
			roles[item["id"]] = role
		return roles

	def _pages(self, url: str, what: str) -> Iterator[dict]:
		for _ in range(MAX_PAGES_PER_FOLDER):
			page = self._get_json(url, what)
			yield from page.get("value") or []
			url = page.get("@odata.nextLink")
			if not url:
				return

	def _folders_to_read(self) -> list[Folder]:
		"""The configured folders (default Inbox), plus Sent Items when bidirectional; never junk or trash."""
		folders = self.list_folders()
		by_name = {f.name: f for f in folders}
		by_lower = {}
		for f in folders:
			by_lower.setdefault(f.name.lower(), f)
		by_role = {}
		for f in folders:
			if f.role:
				by_role.setdefault(f.role, f)
		aliases = {"inbox": "inbox", "sent items": "sent", "sentitems": "sent", "sent": "sent"}
		wanted = list(dict.fromkeys(n.strip() for n in self.config.folders if n and n.strip()))
		chosen: list[Folder] = []
		self.skipped_folders = []
		if not wanted:
			if "inbox" not in by_role:
				raise FolderMissing(f"The mailbox of {self._who()} has no Inbox.")
			wanted = [by_role["inbox"].name]
		for name in wanted:
			folder = (
				by_name.get(name) or by_lower.get(name.lower()) or by_role.get(aliases.get(name.lower(), ""))
			)
			if folder is None:
				existing = [f.name for f in folders if f.role not in NEVER_READ_ROLES]
				message = f'The folder "{name}" does not exist in the mailbox of {self._who()}.'
				raise FolderMissing(message, missing=[name], existing=existing)
			if folder.role in NEVER_READ_ROLES:  # spam and deleted mail are never synced, whatever the settings
				self.skipped_folders.append(folder.name)
				continue
			if folder not in chosen:
				chosen.append(folder)
		if self.config.direction == BIDIRECTIONAL and "sent" in by_role and by_role["sent"] not in chosen:
			chosen.append(by_role["sent"])
		return chosen

	def _who(self) -> str:
		return self.mailbox_address or self.config.address or "this account"

	# -- fetching --------------------------------------------------------------------------------------------

	def fetch(self, cursor: dict | None) -> Iterator[Batch]:
		cursor = copy.deepcopy(cursor) if cursor else {}
		states = cursor.setdefault("folders", {})
		self._handed_out = set()
		for folder in self._folders_to_read():
			folder_id = self._folder_ids[folder.name]
			run = _FolderRun(folder, folder_id, dict(states.get(folder_id) or {}))
			pages = (
				self._manual_pages(run)
				if self.config.direction == MANUAL_SELECTION
				else self._delta_pages(run)
			)
			for messages, state in self._batches(run, pages):
				states[folder_id] = state
				# A fresh copy per batch: the caller may keep it while we move on.
				yield Batch(messages, copy.deepcopy(cursor), folder.name)

	def fetch_range(
		self, since: date, before: date, folders: list[str] | None = None, position: dict | None = None
	) -> Iterator[Batch]:
		"""A `receivedDateTime` range listing of each folder the sync reads, paged; see Provider.fetch_range.
		Not a delta query: a range has an end, and delta rounds never see mail again once handed out. The
		position: {"done": [folder ids listed to the end], "folder": the one in progress, "last_ids": [...]}"""
		position = position or {}
		done_folders = [f for f in position.get("done") or [] if isinstance(f, str)]
		plan: list[tuple[Folder, str, list[dict]]] = []
		for folder in self._range_folders(folders):
			folder_id = self._folder_ids[folder.name]
			if folder_id in done_folders:
				continue
			entries = self._range_entries(folder, folder_id, since, before)
			if folder_id == position.get("folder"):
				seen = {entry_id: i for i, entry_id in enumerate(e["id"] for e in entries)}
				found = [seen[m] for m in position.get("last_ids") or [] if m in seen]
				entries = entries[max(found) + 1 :] if found else entries
			plan.append((folder, folder_id, entries))
		total = sum(len(entries) for _, _, entries in plan)
		finished, earlier = list(done_folders), 0
		limit_count, limit_bytes = max(1, self.config.batch_size), max(1, self.config.batch_bytes)
		for folder, folder_id, entries in plan:
			run = _FolderRun(folder, folder_id, {})
			pending: list[FetchedMessage] = []
			size = 0
			for i, entry in enumerate(entries, start=1):
				message = self._download(run, entry, from_start=False)  # a range has its own dates
				if message is not None:
					pending.append(message)
					size += len(message.raw)
				if i == len(entries) or len(pending) >= limit_count or size >= limit_bytes:
					last_ids = [e["id"] for e in entries[max(0, i - RANGE_MARKERS) : i]]
					state = {"done": list(finished), "folder": folder_id, "last_ids": last_ids}
					if i == len(entries):
						state = {"done": [*finished, folder_id]}
					yield Batch(pending, state, folder.name, total - earlier - i)
					pending, size = [], 0
			finished.append(folder_id)
			earlier += len(entries)
		if not total:
			yield Batch([], {"done": finished}, "", 0)

	def _range_folders(self, names: list[str] | None) -> list[Folder]:
		reading = self._folders_to_read()
		if not names:
			return reading
		wanted = {n.strip().lower() for n in names}
		chosen = [f for f in reading if f.name.lower() in wanted]
		if not chosen:
			raise FolderMissing(
				f"{', '.join(sorted(names))} is not among the folders this account syncs "
				f"({', '.join(f.name for f in reading)}).",
				fix="Pick one of the account's folders, or add the folder to the account first.",
			)
		return chosen

	def _range_entries(self, folder: Folder, folder_id: str, since: date, before: date) -> list[dict]:
		"""Stubs of the folder's mail received in [since, before), oldest first (ids only: bounded memory)."""
		clauses = [
			f"receivedDateTime ge {graph_time(_midnight(since))}",
			f"receivedDateTime lt {graph_time(_midnight(before))}",
		]
		if self.config.direction == MANUAL_SELECTION:
			category = self._category().replace("'", "''")
			clauses.insert(0, f"categories/any(c:c eq '{category}')")
		params = {"$filter": " and ".join(clauses), "$select": DELTA_SELECT, "$top": str(self.page_size)}
		url = f"{self.api_base}{self.root}/mailFolders/{quote(folder_id, safe='')}/messages?{_query(params)}"
		entries = {e["id"]: e for e in self._pages(url, f'listing "{folder.name}" by date') if e.get("id")}
		return sorted(entries.values(), key=lambda e: (str(e.get("receivedDateTime") or ""), e["id"]))

	def _batches(
		self, run: _FolderRun, pages: Iterator[_Page]
	) -> Iterator[tuple[list[FetchedMessage], dict]]:
		"""Download the pages' messages and group them into batches, each with the state that follows it."""
		limit_count, limit_bytes = max(1, self.config.batch_size), max(1, self.config.batch_bytes)
		pending: list[FetchedMessage] = []
		size = 0
		last_state = run.old
		state = run.old
		idle_pages = 0  # pages read since the last batch was handed out
		for page in pages:
			todo = [e for e in page.entries if e["id"] not in self._handed_out]
			for i, entry in enumerate(todo):
				message = self._download(run, entry)
				if message is None:
					continue
				self._handed_out.add(entry["id"])
				pending.append(message)
				size += len(message.raw)
				if len(pending) >= limit_count or size >= limit_bytes:
					ends_page = i == len(todo) - 1
					run.note_received(pending)
					state = run.stamp(page.after if ends_page else page.before)
					yield pending, state
					last_state, pending, size, idle_pages = state, [], 0, 0
			state = page.after
			idle_pages += 1
			if not pending and idle_pages >= PROGRESS_PAGES:  # a long stretch of old mail: keep the position
				state = run.stamp(state)
				yield [], state
				last_state, idle_pages = state, 0
		run.note_received(pending)
		state = run.stamp(state)
		if pending or state != last_state:
			yield pending, state

	def fetch_one(self, provider_id: str) -> FetchedMessage | None:
		"""The message with this (immutable) Graph id again, downloaded and checked as fetch does. None when it
		was deleted, or now sits in Junk Email or Deleted Items, which are never read."""
		path = f"{self.root}/messages/{quote(provider_id, safe='')}?$select={DELTA_SELECT}"
		try:
			entry = self._get_json(path, "looking up a message")
		except _NotFound:
			return None
		folder_id = str(entry.get("parentFolderId") or "")
		if folder_id not in self._folder_ids.values():
			self.list_folders()
		name = next((n for n, i in self._folder_ids.items() if i == folder_id), "")
		folder = next((f for f in self._folders or [] if f.name == name), Folder(name))
		if folder.role in ("junk", "trash"):
			return None
		entry = {**entry, "id": entry.get("id") or provider_id}
		return self._download(_FolderRun(folder, folder_id, {}), entry, from_start=False)

	def _download(self, run: _FolderRun, entry: dict, from_start: bool = True) -> FetchedMessage | None:
		"""The message's MIME content; None when it is gone, or (`from_start`) received before the sync start."""
		received = parse_graph_time(entry.get("receivedDateTime"))
		floor = run.floor(self.config.sync_start) if from_start else None
		if floor and received and received < floor:
			return None  # listed by delta (which cannot be filtered, see above) but before the start
		path = f"{self.root}/messages/{quote(entry['id'], safe='')}"
		message = FetchedMessage(
			raw=b"",
			folder=run.folder.name,
			provider_id=entry["id"],
			from_sent_folder=run.folder.role == "sent",
			received_at=received,
			thread_id=str(entry.get("conversationId") or ""),
		)
		try:
			message.raw = self._request("GET", f"{path}/$value", f'reading a message in "{run.folder.name}"').content
		except _NotFound:
			return None  # deleted or moved away since the page was listed
		except ProviderError as e:
			status = getattr(e, "http_status", 0)
			if not status or status in SERVICE_STATUSES:
				raise
			try:  # the message itself is still there and Graph answers: only its content is refused
				self._get_json(f"{path}?$select=id", f'checking a message in "{run.folder.name}"')
			except _NotFound:
				return None
			message.error, message.error_code = e.message, "message_unavailable"
		return message

	def _delta_pages(self, run: _FolderRun) -> Iterator[_Page]:
		old = run.old
		delta_link = old.get("delta_link")
		url = old.get("next_link") or delta_link or self._delta_url(run.folder_id)
		if old.get("next_link"):  # resuming a round, maybe a resync with its floor
			run.resync_floor = parse_graph_time(old.get("resync_floor"))
		resynced = False
		for _ in range(MAX_PAGES_PER_FOLDER):
			try:
				page = self._get_json(
					url,
					f'reading changes in "{run.folder.name}"',
					prefer=(f"odata.maxpagesize={self.page_size}",),
				)
			except _SyncStateLost:
				if resynced:
					raise
				resynced = True
				delta_link = None
				run.resync_floor = self._since(run.last_received) if run.last_received else None
				url = self._delta_url(run.folder_id)
				continue
			floor = {"resync_floor": graph_time(run.resync_floor) if run.resync_floor else None}
			before = {"delta_link": delta_link, "next_link": None if url == delta_link else url, **floor}
			next_link, new_delta = page.get("@odata.nextLink"), page.get("@odata.deltaLink")
			if next_link:
				after = {"delta_link": delta_link, "next_link": self._check_link(next_link), **floor}
			elif new_delta:  # the round is complete: later rounds only hold changes, no floor needed
				after = {"delta_link": self._check_link(new_delta), "next_link": None, "resync_floor": None}
			else:
				raise ProviderError(
					f'Microsoft Graph ended a page of changes in "{run.folder.name}" without a next or delta link.',
					code="microsoft_graph_error",
				)
			entries = [e for e in page.get("value") or [] if "@removed" not in e and e.get("id")]
			entries.sort(key=lambda e: str(e.get("receivedDateTime") or ""))
			yield _Page(entries, before, after)
			if not next_link:
				return
			url = next_link
		raise ProviderError(
			f'Microsoft Graph kept sending pages for "{run.folder.name}".', code="microsoft_graph_error"
		)

	def _delta_url(self, folder_id: str) -> str:
		# No $filter, ever: a filtered delta round returns at most 5,000 messages (see the module docstring).
		params = {"$select": DELTA_SELECT}
		return f"{self.api_base}{self.root}/mailFolders/{quote(folder_id, safe='')}/messages/delta?{_query(params)}"

	def _since(self, last_received: datetime | None) -> datetime | None:
		"""The oldest mail a resync reads: a day before the last message of a lost round, not before the start."""
		start = _midnight(self.config.sync_start) if self.config.sync_start else None
		if last_received is None:
			return start
		since = last_received - RESYNC_OVERLAP
		return max(since, start) if start else since

	def _manual_pages(self, run: _FolderRun) -> Iterator[_Page]:
		old = run.old
		url = old.get("next_link")
		scan_started = old.get("scan_started")
		if not url:
			url = self._manual_url(run.folder_id, parse_graph_time(old.get("manual_since")))
			scan_started = None
		first = True
		for _ in range(MAX_PAGES_PER_FOLDER):
			response = self._request(
				"GET", url, f'searching "{run.folder.name}" for the {self._category()} category'
			)
			page = _json(response)
			if first and not scan_started:
				scan_started = graph_time(_server_time(response))
			first = False
			base = {"manual_since": old.get("manual_since"), "scan_started": scan_started}
			before = {**base, "next_link": url}
			next_link = page.get("@odata.nextLink")
			if next_link:
				after = {**base, "next_link": self._check_link(next_link)}
			else:
				after = {"manual_since": scan_started, "scan_started": None, "next_link": None}
			entries = [e for e in page.get("value") or [] if e.get("id")]
			entries.sort(key=lambda e: str(e.get("receivedDateTime") or ""))
			yield _Page(entries, before, after)
			if not next_link:
				return
			url = next_link

	def _manual_url(self, folder_id: str, since: datetime | None) -> str:
		category = self._category().replace("'", "''")
		clauses = [f"categories/any(c:c eq '{category}')"]
		if since:
			clauses.append(f"lastModifiedDateTime ge {graph_time(since - MANUAL_OVERLAP)}")
		if self.config.sync_start:
			clauses.append(f"receivedDateTime ge {graph_time(_midnight(self.config.sync_start))}")
		params = {"$filter": " and ".join(clauses), "$select": DELTA_SELECT, "$top": str(self.page_size)}
		return f"{self.api_base}{self.root}/mailFolders/{quote(folder_id, safe='')}/messages?{_query(params)}"

	def _category(self) -> str:
		category = (self.config.manual_keyword or "").strip()
		if not category:
			raise ProviderError(
				"No category is set for manual selection.", fix="Set the keyword, for example EmailSync."
			)
		return category

	# -- test ------------------------------------------------------------------------------------------------

	def test(self) -> TestResult:
		try:
			self.connect()
			reading = self._folders_to_read()
			folders = self._folders or []
		except ProviderError as e:
			return TestResult(False, f"{e.message} {e.fix}", self._folders or [], code=e.code)
		finally:
			self.close()
		names = ", ".join(f.name for f in reading)
		if self.app_only:
			message = (
				f"Connected to {self._who()} with the app's own access (shared or delegated mailbox, no personal "
				f"sign-in). Reading {names}."
			)
		elif self.through_sign_in:
			message = (
				f"Signed in as {self._signer()}, who can read {self._who()} (a shared mailbox, through "
				f"{self._signer()}'s own sign-in with Mail.Read.Shared). Reading {names}."
			)
		else:
			if self.config.address and self._signed_in and not self._signed_in & self.config.own_addresses:
				return TestResult(
					False,
					f"Signed in to Microsoft as {self._who()}, but this account is for {self.config.address}. If "
					f"{self.config.address} is a shared or delegated mailbox, set Mailbox to Shared or delegated: "
					"Email Sync then reads it with the app's own access, set up in Email Sync Settings (or to "
					f"Shared, through my sign-in, if {self._who()} was given access to it). Otherwise "
					f"click Reconnect and sign in as {self.config.address}.",
					folders,
				)
			message = f"Connected to {self._who()} with a personal sign-in. Reading {names}."
		if self.skipped_folders:
			message += f" Never read: {', '.join(self.skipped_folders)}."
		return TestResult(True, message, folders)

	# -- real time -------------------------------------------------------------------------------------------

	def create_subscription(
		self,
		notification_url: str,
		client_state: str,
		resource: str | None = None,
		minutes: int = 4230,
		lifecycle_url: str | None = None,
	) -> dict:
		"""Ask Graph to POST to `notification_url` when mail arrives, and lifecycle events (reauthorization
		required, subscription removed, notifications missed) to `lifecycle_url`. Graph first checks that both
		URLs answer validation requests (see validation_response). Returns {"id", "expirationDateTime"}."""
		if self.through_sign_in:
			raise PushUnavailable(
				f"Microsoft Graph sends no change notifications for {self._who()} read through a person's sign-in "
				"(Mail.Read.Shared does not support subscriptions).",
				fix="Nothing to do: the mailbox is checked every minute instead. For push, read it with the app's own "
				"access (Mailbox: Shared or delegated).",
			)
		client_state = Secret(client_state)  # it authenticates notifications: never in a traceback
		resource = resource or f"{self.root.lstrip('/')}/mailFolders('inbox')/messages"
		body = {
			"changeType": "created",
			"notificationUrl": notification_url,
			"resource": resource,
			"expirationDateTime": graph_time(_utcnow() + timedelta(minutes=minutes)),
			"clientState": client_state,
		}
		if lifecycle_url:
			body["lifecycleNotificationUrl"] = lifecycle_url
		data = _json(self._request("POST", "/subscriptions", "creating a subscription", json=body))
		return {"id": data["id"], "expirationDateTime": data.get("expirationDateTime")}

	def renew_subscription(self, subscription_id: str, minutes: int = 4230) -> dict:
		body = {"expirationDateTime": graph_time(_utcnow() + timedelta(minutes=minutes))}
		try:
			response = self._request(
				"PATCH",
				f"/subscriptions/{quote(subscription_id, safe='')}",
				"renewing a subscription",
				json=body,
			)
		except _NotFound:
			raise ProviderError(
				f"The Microsoft Graph subscription {subscription_id} no longer exists.",
				code="subscription_missing",
				fix="Create a new subscription (real-time sync re-subscribes on its next check).",
			) from None
		data = _json(response)
		return {"id": data.get("id", subscription_id), "expirationDateTime": data.get("expirationDateTime")}

	def delete_subscription(self, subscription_id: str) -> bool:
		"""Delete it; True also when it was already gone."""
		try:
			self._request(
				"DELETE", f"/subscriptions/{quote(subscription_id, safe='')}", "deleting a subscription"
			)
		except _NotFound:
			pass
		return True


# -- paging state --------------------------------------------------------------------------------------------


@dataclass
class _Page:
	entries: list[dict]  # message stubs (id, receivedDateTime, conversationId), oldest first
	before: dict  # folder state that re-reads this page
	after: dict  # folder state once the page is done


@dataclass
class _FolderRun:
	folder: Folder
	folder_id: str
	old: dict  # the folder's state in the incoming cursor
	last_received: datetime | None = field(default=None)
	resync_floor: datetime | None = None  # during a resync round: mail received before it is not read again

	def __post_init__(self):
		self.last_received = parse_graph_time(self.old.get("last_received"))

	def floor(self, sync_start: date | None) -> datetime | None:
		"""Messages received before this are skipped: the later of the sync start and the resync floor."""
		bounds = [b for b in (_midnight(sync_start) if sync_start else None, self.resync_floor) if b]
		return max(bounds) if bounds else None

	def note_received(self, messages: list[FetchedMessage]) -> None:
		for m in messages:
			if m.received_at and (self.last_received is None or m.received_at > self.last_received):
				self.last_received = m.received_at

	def stamp(self, state: dict) -> dict:
		state = dict(state)
		if self.last_received:
			state["last_received"] = graph_time(self.last_received)
		return state


# -- webhooks (pure) -----------------------------------------------------------------------------------------


def validation_response(query_params: Mapping) -> str | None:
	"""The validationToken Graph sends when it checks a notification URL; answer it as text/plain with 200."""
	token = query_params.get("validationToken") if query_params else None
	if isinstance(token, (list, tuple)):
		token = token[0] if token else None
	return str(token) if token else None


def parse_notifications(body: dict, expected_client_state: str) -> list[dict]:
	"""The new-message notifications in a webhook body, after checking every clientState.

	Raises ProviderError(code="bad_client_state") when any notification's clientState is missing or wrong: the
	whole request is then not from our subscription (or was tampered with) and must be ignored.
	"""
	if not isinstance(body, dict) or not isinstance(body.get("value"), list):
		raise ProviderError(
			"The notification is not a Microsoft Graph change notification.", code="bad_notification"
		)
	expected = (expected_client_state or "").encode()
	out = []
	for item in body["value"]:
		if not isinstance(item, dict):
			raise ProviderError(
				"The notification is not a Microsoft Graph change notification.", code="bad_notification"
			)
		given = str(item.get("clientState") or "").encode()
		if not expected or not hmac.compare_digest(given, expected):
			raise ProviderError(
				"A Microsoft Graph notification carried the wrong clientState; it was ignored.",
				code="bad_client_state",
				fix="Nothing to do if this happens once; if it repeats, re-enable real-time sync on the account.",
			)
		resource = str(item.get("resource") or "")[:1000]  # bounded: it comes from an unauthenticated request
		data = item.get("resourceData") if isinstance(item.get("resourceData"), dict) else {}
		message_id = str(data.get("id") or "")
		if not message_id:
			match = re.search(r"messages\('?([^'/)]+)'?\)?$|messages/([^/]+)$", resource, re.IGNORECASE)
			message_id = (match.group(1) or match.group(2)) if match else ""
		out.append(
			{
				"subscription_id": str(item.get("subscriptionId") or ""),
				"resource": resource,
				"message_id": message_id,
			}
		)
	return out


LIFECYCLE_EVENTS = frozenset({"reauthorizationRequired", "subscriptionRemoved", "missed"})


def parse_lifecycle_notifications(body: dict, expected_client_state: str) -> list[dict]:
	"""The lifecycle events in a body posted to the lifecycleNotificationUrl: [{"subscription_id", "event"}].

	reauthorizationRequired: renew the subscription (a PATCH reauthorizes it) or Graph stops sending;
	subscriptionRemoved: create a new one; missed: some change notifications were lost, so sync. Every
	clientState is checked as in parse_notifications (ProviderError "bad_client_state"); unknown events are
	left out."""
	not_lifecycle = ProviderError(
		"The notification is not a Microsoft Graph lifecycle notification.", code="bad_notification"
	)
	if not isinstance(body, dict) or not isinstance(body.get("value"), list):
		raise not_lifecycle
	expected = (expected_client_state or "").encode()
	out = []
	for item in body["value"]:
		if not isinstance(item, dict):
			raise not_lifecycle
		if not expected or not hmac.compare_digest(str(item.get("clientState") or "").encode(), expected):
			raise ProviderError(
				"A Microsoft Graph lifecycle notification carried the wrong clientState; it was ignored.",
				code="bad_client_state",
			)
		event = str(item.get("lifecycleEvent") or "")
		if event in LIFECYCLE_EVENTS:
			out.append({"subscription_id": str(item.get("subscriptionId") or "")[:200], "event": event})
	return out


# -- helpers -------------------------------------------------------------------------------------------------


def retry_after(value: str | None) -> float | None:
	"""Seconds from a Retry-After header (delta-seconds or an HTTP date); None when absent or unreadable."""
	if not value:
		return None
	value = value.strip()
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


def parse_graph_time(value) -> datetime | None:
	"""Graph's "2025-01-31T09:00:00Z" (or with fractions or an offset) as a naive UTC datetime."""
	if not value:
		return None
	match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)?", str(value).strip())
	if not match:
		return None
	parsed = datetime.fromisoformat(match.group(1))
	if match.group(2):
		parsed = parsed.replace(microsecond=int((match.group(2)[1:] + "000000")[:6]))
	zone = match.group(3)
	if zone and zone != "Z":
		sign = 1 if zone[0] == "+" else -1
		parsed -= sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6]))
	return parsed


def graph_time(value: datetime) -> str:
	"""A naive-UTC (or aware) datetime as Graph writes it: 2025-01-31T09:00:00Z."""
	if value.tzinfo is not None:
		value = value.astimezone(timezone.utc).replace(tzinfo=None)
	return value.replace(microsecond=0).isoformat() + "Z"


def _midnight(day: date) -> datetime:
	return datetime(day.year, day.month, day.day)


def _utcnow() -> datetime:
	return datetime.now(timezone.utc).replace(tzinfo=None)


def _server_time(response: requests.Response) -> datetime:
	try:
		return parsedate_to_datetime(response.headers["Date"]).astimezone(timezone.utc).replace(tzinfo=None)
	except (KeyError, TypeError, ValueError):
		return _utcnow()


def _query(params: dict) -> str:
	return urlencode(params, quote_via=quote, safe="$,:()'")


def _json(response: requests.Response) -> dict:
	try:
		return response.json()
	except ValueError:
		raise ProviderError(
			"Microsoft Graph sent an unreadable answer.", code="microsoft_graph_error"
		) from None


def _graph_error(response: requests.Response) -> tuple[str, str]:
	try:
		error = response.json().get("error") or {}
	except (ValueError, AttributeError):
		return "", ""
	if not isinstance(error, dict):
		return str(error), ""
	return str(error.get("code") or ""), " ".join(str(error.get("message") or "").split())


def _short(e: Exception) -> str:
	text = str(e) or type(e).__name__
	return text.strip().splitlines()[0][:300] if text.strip() else type(e).__name__
