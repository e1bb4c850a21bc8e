"""The one interface every mailbox provider implements: connect, test, list folders, fetch changes since a cursor.

Providers only talk to mail servers. They never touch the database and never change the mailbox (no Seen
flags, no moves): they return raw messages and the cursor to store once those messages are safely filed.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime

INBOUND_ONLY = "Inbound only"
BIDIRECTIONAL = "Bidirectional"
MANUAL_SELECTION = "Manual selection"

# The IMAP keyword (and Gmail label / Outlook category name) a user sets on mail to sync it by hand.
MANUAL_KEYWORD = "EmailSync"


class Secret(str):
	"""A str that never shows in a repr: for tokens, passwords and keys held in local variables.

	Tracebacks with local variables (Frappe's Error Log, Python's capture_locals) print each local with repr(),
	so a header dict or a password in a frame on the way to an error would land in the log. Operations on a
	Secret (formatting, concatenation) give plain str: wrap the final value that sits in the local.
	"""

	def __repr__(self) -> str:
		return "'********'"


SECRET_KEYS = frozenset(
	{
		"access_token", "refresh_token", "id_token", "client_secret", "code", "assertion", "password",
		"private_key", "code_verifier",
	}
)  # fmt: skip


def masked(data: dict) -> dict:
	"""`data` (a token endpoint's answer, a form) with the values of SECRET_KEYS as Secrets."""
	return {k: Secret(v) if k in SECRET_KEYS and isinstance(v, str) else v for k, v in data.items()}


class _HoldsSecrets:
	"""Dataclass mixin: the fields named in `_secret_fields` always hold Secrets, however they are set."""

	_secret_fields: frozenset[str] = frozenset()

	def __setattr__(self, name, value):
		if name in self._secret_fields and isinstance(value, str) and not isinstance(value, Secret):
			value = Secret(value)
		super().__setattr__(name, value)


@dataclass
class OAuthTokens(_HoldsSecrets):
	"""OAuth client and tokens for Gmail and Microsoft (and IMAP XOAUTH2). Secrets stay out of logs and reprs."""

	_secret_fields = frozenset({"client_secret", "refresh_token", "access_token"})

	client_id: str
	client_secret: str = field(default="", repr=False)
	refresh_token: str = field(default="", repr=False)
	access_token: str = field(default="", repr=False)
	expires_at: float = 0.0  # epoch seconds when access_token lapses; 0 = unknown
	tenant: str = ""  # Microsoft: a tenant id, "organizations" or "consumers"
	scopes: list[str] = field(default_factory=list)


@dataclass
class AppCredentials(_HoldsSecrets):
	"""The application's own credentials, for company mailboxes read without anyone's personal sign-in.

	Microsoft 365 app-only access (OAuth client credentials): `tenant` (a directory id or domain, never
	"common"), `client_id`, and either `client_secret` or a certificate (`certificate` PEM, `private_key` PEM);
	the app needs the Microsoft Graph *application* permission Mail.Read with admin consent. Google Workspace
	domain-wide delegation: `service_account_key`, the service account's JSON key, whose client id an
	administrator allowed the gmail.readonly scope; the provider acts as the account's address.
	"""

	_secret_fields = frozenset({"client_secret", "private_key", "service_account_key"})

	client_id: str = ""
	tenant: str = ""
	client_secret: str = field(default="", repr=False)
	certificate: str = ""  # PEM of the public certificate uploaded to the app registration
	private_key: str = field(default="", repr=False)  # PEM of the certificate's private key
	service_account_key: str = field(default="", repr=False)  # Google: the JSON key file's content


@dataclass
class AccountConfig(_HoldsSecrets):
	"""Everything a provider needs to know about an account, as plain values (the Frappe side builds it)."""

	_secret_fields = frozenset({"password"})

	provider: str  # "IMAP", "Gmail", "Microsoft", "File"
	address: str
	aliases: list[str] = field(default_factory=list)
	direction: str = INBOUND_ONLY
	folders: list[str] = field(default_factory=list)  # empty: the provider's inbox (and Sent when bidirectional)
	sync_start: date | None = None
	host: str = ""
	port: int = 0
	security: str = "SSL"  # "SSL", "STARTTLS" or "None"
	username: str = ""
	password: str = field(default="", repr=False)
	timeout: float = 30.0  # seconds, for connecting and for each server response
	batch_size: int = 200  # messages per batch
	batch_bytes: int = 25 * 1024 * 1024  # a batch closes once its messages reach this many bytes
	manual_keyword: str = MANUAL_KEYWORD
	oauth: OAuthTokens | None = None
	# Set for a shared or delegated company mailbox: the app reads `address` with its own credentials (and
	# `oauth` is not used).
	app: AppCredentials | None = None
	# Microsoft: a shared mailbox read with a person's own sign-in (`oauth`, with the delegated
	# Mail.Read.Shared): `address` is the shared mailbox, not the person who signed in.
	through_sign_in: bool = False
	# Where the provider's API and token endpoints live; empty means the real Google/Microsoft hosts.
	# Tests point these at local emulators.
	api_base: str = ""
	auth_base: str = ""
	# Called with the refreshed tokens whenever a provider refreshes them, so the caller can store them.
	on_tokens_refreshed: Callable[[OAuthTokens], None] | None = field(default=None, repr=False)

	@property
	def own_addresses(self) -> set[str]:
		return {a.strip().lower() for a in [self.address, *self.aliases] if a and a.strip()}


@dataclass
class Folder:
	name: str
	role: str = ""  # "inbox", "sent", "junk", "trash", "drafts", "archive", "all" or ""
	selectable: bool = True


@dataclass
class FetchedMessage:
	"""One message as the server handed it out, or, when `error` is set, one the server would not hand out.

	A message the provider cannot download after its retries (Graph answering 500 for an S/MIME message,
	504 for a very large one; a Gmail batch part refused) must not stop the folder at the same place on
	every run: it comes back with `raw=b""`, `error` (the server's reason, in words) and `error_code`, and
	the cursor moves past it. `provider_id` stays set so that the message can be fetched again later.
	"""

	raw: bytes
	folder: str
	provider_id: str  # unique within the account, e.g. "INBOX/1700000000/42" for IMAP
	from_sent_folder: bool = False
	received_at: datetime | None = None
	thread_id: str = ""
	error: str = ""  # why the message could not be downloaded; "" for a message that was
	error_code: str = ""  # a stable code, e.g. "microsoft_graph_error" or "gmail_error"

	@property
	def failed(self) -> bool:
		return bool(self.error)


@dataclass
class Batch:
	"""Messages plus the cursor that is true once they (and every batch before them) are committed."""

	messages: list[FetchedMessage]
	cursor: dict
	folder: str = ""
	remaining: int | None = None  # messages still to fetch in this run, when the provider knows


@dataclass
class TestResult:
	ok: bool
	message: str
	folders: list[Folder] = field(default_factory=list)
	code: str = ""  # the ProviderError's code when not ok; "folder_missing" means the connection itself worked


class ProviderError(Exception):
	"""A failure a user can act on: a stable code, a plain message and what to do about it.

	Providers raise only ProviderErrors (transport failures included), with messages that never hold a token,
	password or secret, and from frames whose local variables hold none either (see Secret).
	"""

	code = "provider_error"
	transient = False  # True when trying again later may work (network, throttling)
	fix = "Check the account settings, then click Test Connection."

	def __init__(self, message: str, *, fix: str | None = None, code: str | None = None):
		super().__init__(message)
		self.message = message
		if fix:
			self.fix = fix
		if code:
			self.code = code

	def __str__(self) -> str:
		return self.message


class AuthenticationFailed(ProviderError):
	code = "auth_failed"
	fix = "Check the username and password (or reconnect the account), then click Test Connection."


class ConnectionFailed(ProviderError):
	code = "connection_failed"
	transient = True
	fix = "Check the host, port and security settings, and that the server is reachable from this site."


class FolderMissing(ProviderError):
	code = "folder_missing"
	fix = "Pick the folders again from the live list on the account form."

	def __init__(self, message: str, *, fix: str | None = None, missing=(), existing=()):
		# A fix that names what does exist saves the admin a round trip to the mail client.
		self.missing, self.existing = list(missing), list(existing)
		if self.existing and not fix:
			names = ", ".join(f'"{name}"' for name in self.missing)
			fix = (
				f"Remove {names} from the account's folders, or pick them again from the live list (Test "
				f"Connection on the account form). Folders that exist: {', '.join(self.existing)}."
			)
		super().__init__(message, fix=fix)


class AccessRevoked(ProviderError):
	code = "access_revoked"
	fix = "Access was revoked or has expired: click Reconnect on the account and sign in again."


class MissingScopes(ProviderError):
	code = "missing_scopes"
	fix = "Click Reconnect and grant every permission the consent screen asks for."


class MailboxNotHosted(ProviderError):
	code = "mailbox_not_hosted"
	fix = "This address's mailbox is not hosted by the chosen provider: pick the right provider, or use IMAP."


class AccountClosed(ProviderError):
	code = "account_closed"
	fix = "The mailbox was closed or suspended at the provider: disconnect this account, or ask its administrator."


class Throttled(ProviderError):
	"""The provider asked us to slow down and kept asking after the retries we allow ourselves in one run."""

	code = "throttled"
	transient = True
	retry_after: float | None = None  # seconds the provider asked us to wait, when it said
	fix = "The provider is limiting requests; the sync resumes from where it stopped after the cool-off."


class Provider(ABC):
	"""Base for IMAP, Gmail, Microsoft and file import. Use as a context manager."""

	def __init__(self, config: AccountConfig):
		self.config = config

	@abstractmethod
	def connect(self) -> None: ...

	def close(self) -> None:  # noqa: B027 - providers without a session need nothing here
		pass

	@abstractmethod
	def list_folders(self) -> list[Folder]: ...

	@abstractmethod
	def fetch(self, cursor: dict | None) -> Iterator[Batch]:
		"""Yield batches of messages new since `cursor`, oldest first, each with the cursor that follows it."""

	def fetch_range(
		self, since: date, before: date, folders: list[str] | None = None, position: dict | None = None
	) -> Iterator[Batch]:
		"""Yield batches of the mail received on or after `since` and before `before` (whole days, UTC), in the
		folders the sync reads (only those named in `folders`, when given), oldest first per folder.

		For bringing in older mail: the sync cursor is neither read nor returned. Each batch's `cursor` is the
		position of this listing; pass it back as `position` to go on after the batches already handed out."""
		raise ProviderError(f"{type(self).__name__} cannot list mail by date.", code="range_not_supported")

	def fetch_one(self, provider_id: str) -> FetchedMessage | None:
		"""One message again by its `provider_id` (as a FetchedMessage handed it out), e.g. to retry one the
		server would not hand out before. None when the mailbox no longer holds it; `error` set when it still
		cannot be downloaded; a ProviderError (as from fetch) when the account or the service is in trouble."""
		raise ProviderError(
			f"{type(self).__name__} cannot fetch a single message again.",
			code="retry_unsupported",
			fix="Import the message again from its file instead.",
		)

	def test(self) -> TestResult:
		try:
			self.connect()
			folders = self.list_folders()
		except ProviderError as e:
			return TestResult(False, f"{e.message} {e.fix}", code=e.code)
		finally:
			self.close()
		return TestResult(True, f"Connected to {self.config.address or self.config.host}.", folders)

	def __enter__(self):
		self.connect()
		return self

	def __exit__(self, *exc):
		self.close()
		return False
