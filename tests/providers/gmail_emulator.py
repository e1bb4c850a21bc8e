"""A local stand-in for the Gmail API v1 and Google's OAuth endpoints, for tests: stdlib http.server in a thread.

It serves, on 127.0.0.1 and a free port, the paths google-api-python-client builds from its discovery document
when `client_options={"api_endpoint": emulator.url}`:

    GET  /gmail/v1/users/me/profile              GET  /gmail/v1/users/me/labels
    GET  /gmail/v1/users/me/messages             GET  /gmail/v1/users/me/messages/{id}?format=raw
    GET  /gmail/v1/users/me/history              POST /gmail/v1/users/me/watch     POST /gmail/v1/users/me/stop
    POST /batch/gmail/v1 and /batch              (multipart/mixed of application/http parts, answered in kind)

plus Google's OAuth endpoints: GET /oauth2/v1/certs (the certificates Google signs ID tokens with, as
for the OIDC token Pub/Sub sends with each push: `push_jwt()`), GET /o/oauth2/v2/auth (the consent page: redirects at once with a code),
POST /token (authorization_code, refresh_token, and the JWT-bearer grant of a service account acting as a
Workspace user by domain-wide delegation: `add_service_account()`, `delegate()`) and POST /revoke.

Answers follow Google's formats, errors included ({"error": {"code", "message", "errors": [{"reason"}],
"status"}} for the API, {"error", "error_description"} for OAuth), because the real client libraries parse them.
API calls need a valid Bearer token (inside a batch each part's own Authorization header, else the outer one).

    gmail = GmailEmulator().start()
    tokens = gmail.issue_tokens()                  # refresh + access token for gmail.client_id
    gmail.add_message(labels=["INBOX"], date=datetime(2024, 5, 1))
    gmail.fail_next(429, count=3, retry_after=2)   # fault injection
    gmail.poison(message_id, 500)                  # format=raw of one message fails every time
    gmail.transport.add(CUT, match="/batch")       # broken connections, see transport_faults.py
    gmail.expire_access_tokens(); gmail.revoke_grant(); gmail.expire_history()
    gmail.count("/messages/")                       # request counting (batch parts included)
    gmail.stop()
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import re
import secrets
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesParser, Parser
from email.policy import compat32
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlencode, urlsplit

from transport_faults import TransportFaults, break_request

GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
READ_SCOPES = {GMAIL_READONLY, "https://www.googleapis.com/auth/gmail.modify", "https://mail.google.com/"}
SYSTEM_LABELS = (
	"INBOX", "SENT", "DRAFT", "SPAM", "TRASH", "UNREAD", "STARRED", "IMPORTANT", "CHAT",
	"CATEGORY_PERSONAL", "CATEGORY_SOCIAL", "CATEGORY_PROMOTIONS", "CATEGORY_UPDATES", "CATEGORY_FORUMS",
)  # fmt: skip
DROP = 0  # fail_next(DROP): close the connection without answering
MAX_BATCH_PARTS = 100  # Gmail's limit per batch request
WATCH_DAYS = 7

_API = re.compile(r"^/gmail/v1/users/(?P<user>[^/]+)(?P<rest>/.*)$")


@dataclass
class StoredMessage:
	id: str
	thread_id: str
	label_ids: list[str]
	internal_date: int  # epoch milliseconds
	raw: bytes
	history_id: int


@dataclass
class Fault:
	status: int
	remaining: int
	match: str
	retry_after: str | None
	reason: str
	message: str
	status_text: str
	details: list = field(default_factory=list)


@dataclass
class Request:
	method: str
	path: str
	query: dict[str, list[str]]
	in_batch: bool
	status: int = 0


class GmailEmulator:
	client_id = "emulator-client.apps.googleusercontent.com"
	client_secret = "emulator-secret"

	def __init__(self, address: str = "me@example.com", *, page_size: int | None = None):
		self.address = address
		self.page_size = page_size  # caps maxResults, so small mailboxes still page
		self.token_lifetime = 3599
		self.lock = threading.RLock()
		self.messages: dict[str, StoredMessage] = {}
		self.labels: dict[str, dict] = {
			label: {"id": label, "name": label, "type": "system"} for label in SYSTEM_LABELS
		}
		self.history: list[dict] = []
		self.history_id = 100000
		self.history_floor = 0  # startHistoryId below this: 404, as when Gmail has dropped old history
		self.faults: list[Fault] = []
		self.requests: list[Request] = []
		self.access_tokens: dict[str, dict] = {}  # token -> {"refresh", "scopes", "expires"}
		self.refresh_tokens: dict[str, dict] = {}  # token -> {"scopes", "revoked"}
		self.codes: dict[str, dict] = {}  # authorization code -> {"redirect_uri", "scopes", "used"}
		self.consent_scopes: set[str] | None = None  # scopes the "user" grants on the consent page; None: all
		self.refreshes = 0
		self.pkce_checked = 0  # authorization-code grants whose code_verifier matched its challenge
		self.certs_fetches = 0  # GETs of Google's signing certificates (/oauth2/v1/certs)
		self.certs_max_age = 20_000  # seconds, as Google's Cache-Control says (about 6 hours)
		self.watch: dict | None = None
		self.stops = 0
		self.mail_enabled = True
		# How Gmail refuses a Workspace user's mailbox: None; "precondition" (the bare 400 Gmail answers when the
		# user has no Gmail service); "domain_policy" (403: the administrators disabled Gmail or API access).
		self.workspace_refusal: str | None = None
		self.testing_mode = False  # an OAuth app in Testing: its refresh tokens stop working after 7 days
		self.service_accounts: dict[str, dict] = {}  # client email -> {"client_id", "public_key", "key_id"}
		self.delegations: dict[str, set[str]] = {}  # service account client id -> scopes the admin allowed
		self.jwt_grants: list[dict] = []  # the claims of every JWT-bearer grant accepted
		self.refresh_token_age_days = 0.0  # how old every refresh token is, for testing_mode
		self.poisoned: dict[str, tuple] = {}  # message id -> the error format=raw answers (_api_error args)
		self.transport = TransportFaults()  # connections to break
		self.on_request: Callable[[Request], None] | None = None  # called with each request before it is served
		self._ids = itertools.count(0x18C0_0000_0000_0000 + secrets.randbelow(1 << 40))
		self._server: ThreadingHTTPServer | None = None
		self._thread: threading.Thread | None = None

	# -- life cycle ------------------------------------------------------------------------------------------

	def start(self) -> GmailEmulator:
		emulator = self

		class Handler(_Handler):
			pass

		Handler.emulator = emulator
		self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
		self._server.daemon_threads = True
		self._thread = threading.Thread(
			target=self._server.serve_forever, args=(0.05,), name="gmail-emulator", daemon=True
		)
		self._thread.start()
		return self

	def stop(self) -> None:
		if self._server is not None:
			self._server.shutdown()
			self._server.server_close()
			self._server = None

	@property
	def url(self) -> str:
		host, port = self._server.server_address[:2]
		return f"http://{host}:{port}/"

	@property
	def base(self) -> str:
		return self.url.rstrip("/")

	# -- mailbox ---------------------------------------------------------------------------------------------

	def _next_history(self) -> int:
		self.history_id += 3 + secrets.randbelow(5)  # gaps, as in Gmail
		return self.history_id

	def add_label(self, name: str) -> str:
		with self.lock:
			label_id = f"Label_{len(self.labels) + 1}"
			self.labels[label_id] = {
				"id": label_id,
				"name": name,
				"type": "user",
				"messageListVisibility": "show",
				"labelListVisibility": "labelShow",
			}
			return label_id

	def add_message(
		self,
		*,
		labels=("INBOX",),
		date: datetime | None = None,
		subject: str | None = None,
		raw: bytes | None = None,
		thread_id: str | None = None,
		sender: str = "alice@example.org",
	) -> str:
		"""File a message (a history record "messageAdded" too). `date`: naive UTC or aware; default now."""
		with self.lock:
			message_id = f"{next(self._ids):016x}"
			when = date or datetime.now(timezone.utc)
			if when.tzinfo is None:
				when = when.replace(tzinfo=timezone.utc)
			millis = int(when.timestamp() * 1000)
			if raw is None:
				raw = (
					f"Message-ID: <{message_id}@emulator.test>\r\n"
					f"Date: {when.strftime('%a, %d %b %Y %H:%M:%S +0000')}\r\n"
					f"From: {sender}\r\nTo: {self.address}\r\n"
					f"Subject: {subject or 'Message ' + message_id}\r\n\r\n"
					f"Body of {message_id}.\r\n"
				).encode()
			history_id = self._next_history()
			message = StoredMessage(
				message_id, thread_id or message_id, list(labels), millis, raw, history_id
			)
			self.messages[message_id] = message
			self.history.append(
				{
					"id": history_id,
					"messages": [{"id": message_id, "threadId": message.thread_id}],
					"messagesAdded": [{"message": self._short(message)}],
				}
			)
			return message_id

	def label_message(self, message_id: str, label_id: str) -> None:
		with self.lock:
			message = self.messages[message_id]
			if label_id not in message.label_ids:
				message.label_ids.append(label_id)
			history_id = self._next_history()
			message.history_id = history_id
			self.history.append(
				{
					"id": history_id,
					"messages": [{"id": message_id, "threadId": message.thread_id}],
					"labelsAdded": [{"message": self._short(message), "labelIds": [label_id]}],
				}
			)

	def delete_message(self, message_id: str) -> None:
		with self.lock:
			message = self.messages.pop(message_id)
			self.history.append(
				{
					"id": self._next_history(),
					"messages": [{"id": message_id, "threadId": message.thread_id}],
					"messagesDeleted": [{"message": {"id": message_id, "threadId": message.thread_id}}],
				}
			)

	def expire_history(self, before: int | None = None) -> None:
		"""history.list with a startHistoryId below `before` (default: everything up to now) answers 404."""
		with self.lock:
			self.history_floor = self.history_id + 1 if before is None else before

	@staticmethod
	def _short(message: StoredMessage) -> dict:
		return {"id": message.id, "threadId": message.thread_id, "labelIds": list(message.label_ids)}

	# -- tokens ----------------------------------------------------------------------------------------------

	def issue_tokens(self, scopes=(GMAIL_READONLY,)) -> dict:
		"""A granted refresh token plus a fresh access token: {"refresh_token", "access_token", "expires_in"}."""
		with self.lock:
			refresh = "1//rt-" + secrets.token_urlsafe(16)
			self.refresh_tokens[refresh] = {"scopes": set(scopes), "revoked": False}
			return {
				"refresh_token": refresh,
				"access_token": self._new_access(refresh),
				"expires_in": self.token_lifetime,
				"scope": " ".join(scopes),
			}

	def add_service_account(self, name: str = "email-sync") -> dict:
		"""A service account and a new JSON key for it, as the Cloud Console downloads it."""
		from cryptography.hazmat.primitives import serialization
		from cryptography.hazmat.primitives.asymmetric import rsa

		key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
		email = f"{name}@acme-project.iam.gserviceaccount.com"
		client_id = str(100000000000000000000 + secrets.randbelow(10**20))
		key_id = secrets.token_hex(20)
		with self.lock:
			self.service_accounts[email] = {"client_id": client_id, "public_key": key.public_key(), "key_id": key_id}
		pem = key.private_bytes(
			serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
		).decode()
		return {
			"type": "service_account",
			"project_id": "acme-project",
			"private_key_id": key_id,
			"private_key": pem,
			"client_email": email,
			"client_id": client_id,
			"auth_uri": "https://accounts.google.com/o/oauth2/auth",
			"token_uri": "https://oauth2.googleapis.com/token",
		}

	def push_jwt(self, audience: str, email: str, *, lifetime: int = 3600, issuer: str = "https://accounts.google.com",
		signed_by_google: bool = True) -> str:
		"""The OIDC ID token Pub/Sub puts in a push's Authorization header: signed by Google (the key behind
		/oauth2/v1/certs), for `audience`, naming the push subscription's service account `email`."""
		from cryptography.hazmat.primitives import hashes
		from cryptography.hazmat.primitives.asymmetric import padding

		key_id, key = self._signing_key()
		if not signed_by_google:
			from cryptography.hazmat.primitives.asymmetric import rsa

			key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
		now = int(time.time())
		claims = {"iss": issuer, "aud": audience, "azp": "1" * 21, "email": email, "email_verified": True,
			"sub": "1" * 21, "iat": now, "exp": now + lifetime}  # fmt: skip

		def b64(data: bytes) -> str:
			return base64.urlsafe_b64encode(data).decode().rstrip("=")

		head = b64(json.dumps({"alg": "RS256", "kid": key_id, "typ": "JWT"}).encode())
		body = b64(json.dumps(claims).encode())
		signature = key.sign(f"{head}.{body}".encode(), padding.PKCS1v15(), hashes.SHA256())
		return f"{head}.{body}.{b64(signature)}"

	def _signing_key(self):
		"""Google's ID-token signing key and its self-signed certificate, made once."""
		if getattr(self, "_google_key", None) is None:
			import datetime as dt

			from cryptography import x509
			from cryptography.hazmat.primitives import hashes, serialization
			from cryptography.hazmat.primitives.asymmetric import rsa
			from cryptography.x509.oid import NameOID

			key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
			name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "federated-signon.system.gserviceaccount.com")])
			now = dt.datetime.now(dt.timezone.utc)
			cert = (
				x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
				.serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=1))
				.not_valid_after(now + dt.timedelta(days=14)).sign(key, hashes.SHA256())
			)  # fmt: skip
			self._google_key = (secrets.token_hex(20), key, cert.public_bytes(serialization.Encoding.PEM).decode())
		return self._google_key[0], self._google_key[1]

	@property
	def certs_url(self) -> str:
		return f"{self.base}/oauth2/v1/certs"

	def delegate(self, client_id: str, scopes=(GMAIL_READONLY,)) -> None:
		"""The Workspace admin allows the service account's client id these scopes (domain-wide delegation)."""
		with self.lock:
			self.delegations[client_id] = set(scopes)

	def _jwt_bearer(self, form):
		"""A service account's signed JWT for a user: Google checks the signature, the audience, the user and
		that an administrator delegated the scopes to the service account's client id."""
		from cryptography.exceptions import InvalidSignature
		from cryptography.hazmat.primitives import hashes
		from cryptography.hazmat.primitives.asymmetric import padding

		def unb64(text):
			return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))

		try:
			head_b64, claims_b64, signature_b64 = (form.get("assertion") or "").split(".")
			header, claims = json.loads(unb64(head_b64)), json.loads(unb64(claims_b64))
			signature = unb64(signature_b64)
		except ValueError:
			return _json(400, {"error": "invalid_grant", "error_description": "Invalid JWT: malformed"})
		account = self.service_accounts.get(str(claims.get("iss")))
		if account is None:
			return _json(400, {"error": "invalid_grant", "error_description": "Invalid grant: account not found"})
		try:
			account["public_key"].verify(
				signature, f"{head_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256()
			)
		except InvalidSignature:
			return _json(400, {"error": "invalid_grant", "error_description": "Invalid JWT Signature."})
		# The audience is the token endpoint; newer google-auth always names Google's own.
		audiences = (f"{self.base}/token", "https://oauth2.googleapis.com/token")
		if claims.get("aud") not in audiences or header.get("kid") != account["key_id"]:
			return _json(400, {"error": "invalid_grant", "error_description": "Invalid JWT: Token must be a short-lived token (60 minutes) and in a reasonable timeframe."})
		scopes = set(str(claims.get("scope") or "").split())
		if not scopes or not scopes <= self.delegations.get(account["client_id"], set()):
			return _json(
				401,
				{
					"error": "unauthorized_client",
					"error_description": "Client is unauthorized to retrieve access tokens using this method, or "
					"client not authorized for any of the scopes requested.",
				},
			)
		if str(claims.get("sub") or "").lower() != self.address.lower():
			return _json(400, {"error": "invalid_grant", "error_description": "Invalid email or User ID"})
		with self.lock:
			self.jwt_grants.append(claims)
			refresh = "sa-" + secrets.token_urlsafe(8)  # no refresh token is handed out: a key for the grant
			self.refresh_tokens[refresh] = {"scopes": scopes, "revoked": False}
			access = self._new_access(refresh)
		return _json(200, {"access_token": access, "expires_in": self.token_lifetime, "token_type": "Bearer"})

	def _new_access(self, refresh: str) -> str:
		token = "ya29.at-" + secrets.token_urlsafe(16)
		scopes = self.refresh_tokens[refresh]["scopes"]
		self.access_tokens[token] = {
			"refresh": refresh,
			"scopes": set(scopes),
			"expires": time.time() + self.token_lifetime,
		}
		return token

	def expire_access_tokens(self) -> None:
		"""Every access token handed out so far stops working (401) until the client refreshes."""
		with self.lock:
			for info in self.access_tokens.values():
				info["expires"] = 0

	def revoke_grant(self) -> None:
		"""The user removed the app's access: refresh tokens give invalid_grant, access tokens 401."""
		with self.lock:
			for info in self.refresh_tokens.values():
				info["revoked"] = True
			self.access_tokens.clear()

	# -- fault injection and counting ------------------------------------------------------------------------

	def fail_next(
		self,
		status: int,
		*,
		count: int = 1,
		match: str = "/gmail/v1/",
		retry_after: float | str | None = None,
		reason: str | None = None,
		message: str | None = None,
		status_text: str | None = None,
		details: list | None = None,
	) -> None:
		"""The next `count` requests whose path contains `match` (batch parts included) fail with `status`.

		`status` DROP (0) closes the connection without an answer, as a broken network would (not in batches).
		"""
		defaults = {
			429: ("rateLimitExceeded", "Too many concurrent requests for user.", "RESOURCE_EXHAUSTED"),
			503: ("backendError", "The service is currently unavailable.", "UNAVAILABLE"),
			500: ("backendError", "Internal error encountered.", "INTERNAL"),
		}
		d_reason, d_message, d_status = defaults.get(
			status, ("failedPrecondition", "Precondition check failed.", "")
		)
		if status == DROP:
			d_status = "DROP"
		with self.lock:
			self.faults.append(
				Fault(
					status,
					count,
					match,
					None if retry_after is None else str(retry_after),
					reason or d_reason,
					message or d_message,
					status_text or d_status or HTTPStatus(status).name,
					details or [],
				)
			)

	def poison(
		self, message_id: str, status: int = 500, reason: str = "backendError", message: str = "Internal error encountered."
	) -> None:
		"""From now on format=raw of this message fails with `status`; its metadata (format=minimal) still works."""
		with self.lock:
			self.poisoned[message_id] = (status, message, reason, HTTPStatus(status).name)

	def clear_faults(self) -> None:
		with self.lock:
			self.faults.clear()

	def count(
		self, path_contains: str = "", *, method: str | None = None, in_batch: bool | None = None
	) -> int:
		with self.lock:
			return sum(
				1
				for r in self.requests
				if path_contains in r.path
				and (method is None or r.method == method)
				and (in_batch is None or r.in_batch == in_batch)
			)

	# -- dispatch --------------------------------------------------------------------------------------------

	def handle(self, method: str, target: str, headers, body: bytes, in_batch: bool = False):
		"""One request -> (status, headers, body bytes)."""
		parts = urlsplit(target)
		path, query = parts.path, parse_qs(parts.query, keep_blank_values=True)
		record = Request(method, path, query, in_batch)
		with self.lock:
			self.requests.append(record)
		if self.on_request is not None:
			self.on_request(record)
		status, out_headers, out_body = self._route(method, path, query, headers, body)
		record.status = status
		return status, out_headers, out_body

	def _route(self, method, path, query, headers, body):
		if not _API.match(path):  # OAuth and batch endpoints: faults first
			fault = self._fault(path)
			if fault:
				return fault
		if path == "/token" and method == "POST":
			return self._token(headers, body)
		if path == "/revoke" and method == "POST":
			return self._revoke(query, headers, body)
		if path == "/o/oauth2/v2/auth" and method == "GET":
			return self._consent(query)
		if path == "/oauth2/v1/certs" and method == "GET":
			key_id, _ = self._signing_key()
			with self.lock:
				self.certs_fetches += 1
			status, out_headers, out_body = _json(200, {key_id: self._google_key[2]})
			cache = f"public, max-age={self.certs_max_age}, must-revalidate, no-transform"
			return status, {**out_headers, "Cache-Control": cache}, out_body
		if path in ("/batch/gmail/v1", "/batch") and method == "POST":
			return self._batch(headers, body)
		match = _API.match(path)
		if not match:
			return _api_error(404, "Not Found", "notFound", "NOT_FOUND")
		denied = self._authorize(headers)
		if denied:
			return denied
		fault = self._fault(path)
		if fault:
			return fault
		if match["user"] not in ("me", self.address):
			return _api_error(403, "Delegation denied for " + self.address, "forbidden", "PERMISSION_DENIED")
		if not self.mail_enabled:
			return _api_error(400, "Mail service not enabled", "failedPrecondition", "FAILED_PRECONDITION")
		if self.workspace_refusal == "precondition":
			return _api_error(400, "Precondition check failed.", "failedPrecondition", "FAILED_PRECONDITION")
		if self.workspace_refusal == "domain_policy":
			return _api_error(
				403, "The domain administrators have disabled Gmail apps.", "domainPolicy", "PERMISSION_DENIED"
			)
		return self._api(method, match["rest"], query, body)

	def _fault(self, path: str):
		with self.lock:
			for fault in self.faults:
				if fault.remaining > 0 and fault.match in path:
					fault.remaining -= 1
					if fault.status == DROP:
						return DROP, {}, b""
					extra = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
					return _api_error(
						fault.status, fault.message, fault.reason, fault.status_text, fault.details, extra
					)
		return None

	def _authorize(self, headers):
		auth = _header(headers, "authorization") or ""
		token = auth[7:].strip() if auth.lower().startswith("bearer ") else ""
		with self.lock:
			info = self.access_tokens.get(token)
			if info is None or info["expires"] < time.time():
				return _api_error(
					401,
					"Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or "
					"other valid authentication credential.",
					"authError",
					"UNAUTHENTICATED",
					extra={
						"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/", error="invalid_token"'
					},
				)
			if not info["scopes"] & READ_SCOPES:
				return _api_error(
					403,
					"Request had insufficient authentication scopes.",
					"insufficientPermissions",
					"PERMISSION_DENIED",
					details=[
						{
							"@type": "type.googleapis.com/google.rpc.ErrorInfo",
							"reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
							"domain": "googleapis.com",
						}
					],
				)
		return None

	# -- Gmail API -------------------------------------------------------------------------------------------

	def _api(self, method, rest, query, body):
		with self.lock:
			if rest == "/profile" and method == "GET":
				return _json(
					200,
					{
						"emailAddress": self.address,
						"messagesTotal": len(self.messages),
						"threadsTotal": len({m.thread_id for m in self.messages.values()}),
						"historyId": str(self.history_id),
					},
				)
			if rest == "/labels" and method == "GET":
				return _json(200, {"labels": list(self.labels.values())})
			if rest == "/messages" and method == "GET":
				return self._list_messages(query)
			if rest.startswith("/messages/") and method == "GET":
				return self._get_message(rest[len("/messages/") :], query)
			if rest == "/history" and method == "GET":
				return self._list_history(query)
			if rest == "/watch" and method == "POST":
				return self._watch(body)
			if rest == "/stop" and method == "POST":
				self.watch = None
				self.stops += 1
				return 204, {}, b""
		return _api_error(404, "Method not found.", "notFound", "NOT_FOUND")

	def _page(self, query, items: list, key: str, default: int = 100, snapshot: str = ""):
		"""One page of `items`; page tokens are "<snapshot>.<offset>" (see _list_history for the snapshot)."""
		try:
			size = min(int(_one(query, "maxResults") or default), 500)
			offset = int((_one(query, "pageToken") or "0").rpartition(".")[2])
		except ValueError:
			return None, _api_error(
				400, "Invalid pageToken or maxResults", "invalidArgument", "INVALID_ARGUMENT"
			)
		if self.page_size:
			size = min(size, self.page_size)
		chunk = items[offset : offset + size]
		page = {key: chunk} if chunk else {}
		if offset + size < len(items):
			page["nextPageToken"] = f"{snapshot}.{offset + size}"
		return page, None

	def _list_messages(self, query):
		wanted = query.get("labelIds") or []
		unknown = [label for label in wanted if label not in self.labels]
		if unknown:
			return _api_error(400, f"Invalid label: {unknown[0]}", "invalidArgument", "INVALID_ARGUMENT")
		after = before = None
		for term in (_one(query, "q") or "").split():
			name, _, value = term.partition(":")
			if name in ("after", "before") and value.isdigit():
				if name == "after":
					after = int(value) * 1000
				else:
					before = int(value) * 1000
			else:
				return _api_error(400, f"Unsupported search term in the emulator: {term}", "invalidArgument")
		spam_trash = (_one(query, "includeSpamTrash") or "false").lower() == "true"
		found = [
			m
			for m in self.messages.values()
			if all(label in m.label_ids for label in wanted)
			and (spam_trash or not {"SPAM", "TRASH"} & set(m.label_ids))
			and (after is None or m.internal_date >= after)
			and (before is None or m.internal_date < before)
		]
		found.sort(key=lambda m: (m.internal_date, m.id), reverse=True)  # newest first, like Gmail
		page, error = self._page(query, [{"id": m.id, "threadId": m.thread_id} for m in found], "messages")
		if error:
			return error
		page["resultSizeEstimate"] = len(found)
		return _json(200, page)

	def _get_message(self, message_id, query):
		message = self.messages.get(message_id)
		if message is None:
			return _api_error(404, "Requested entity was not found.", "notFound", "NOT_FOUND")
		resource = {
			**self._short(message),
			"snippet": "",
			"sizeEstimate": len(message.raw),
			"historyId": str(message.history_id),
			"internalDate": str(message.internal_date),
		}
		fmt = _one(query, "format") or "full"
		if fmt == "raw" and message_id in self.poisoned:
			return _api_error(*self.poisoned[message_id])
		if fmt == "raw":
			resource["raw"] = base64.urlsafe_b64encode(message.raw).decode("ascii")
		elif fmt != "minimal":
			return _api_error(
				400, f"The emulator only serves format=raw or minimal, not {fmt}", "invalidArgument"
			)
		return _json(200, resource)

	def _list_history(self, query):
		start = _one(query, "startHistoryId")
		if not start or not start.isdigit():
			return _api_error(400, "Invalid startHistoryId", "invalidArgument", "INVALID_ARGUMENT")
		start = int(start)
		if start < self.history_floor:
			return _api_error(404, "Requested entity was not found.", "notFound", "NOT_FOUND")
		# Page tokens pin the history as of the first page, so records added while a client pages through
		# come in no later page; `historyId` is always the mailbox's current one (so it can be newer than
		# the last record handed out).
		token = _one(query, "pageToken") or ""
		upper = int(token.partition(".")[0]) if token.partition(".")[0].isdigit() else self.history_id
		types = set(query.get("historyTypes") or [])
		label = _one(query, "labelId")
		key_of = {
			"messageAdded": "messagesAdded",
			"labelAdded": "labelsAdded",
			"messageDeleted": "messagesDeleted",
		}
		records = []
		for record in self.history:
			if record["id"] <= start or record["id"] > upper:
				continue
			out = {"id": str(record["id"]), "messages": record["messages"]}
			for history_type, key in key_of.items():
				if key in record and (not types or history_type in types):
					out[key] = record[key]
			if len(out) == 2:
				continue
			if label and not any(
				label in (entry.get("message", {}).get("labelIds") or [])
				or label in (entry.get("labelIds") or [])
				for key in key_of.values()
				for entry in out.get(key, [])
			):
				continue
			records.append(out)
		page, error = self._page(query, records, "history", snapshot=str(upper))
		if error:
			return error
		page["historyId"] = str(self.history_id)
		return _json(200, page)

	def _watch(self, body):
		try:
			request = json.loads(body or b"{}")
		except ValueError:
			return _api_error(400, "Invalid JSON payload received.", "invalid", "INVALID_ARGUMENT")
		topic = request.get("topicName") or ""
		if not re.fullmatch(r"projects/[^/]+/topics/[^/]+", topic):
			return _api_error(
				400, "Invalid topicName does not match projects/SOME-PROJECT/topics/*", "invalidArgument",
				"INVALID_ARGUMENT",
			)  # fmt: skip
		behaviour = request.get("labelFilterBehavior") or request.get("labelFilterAction") or "include"
		if str(behaviour).lower() not in ("include", "exclude"):
			return _api_error(400, f"Invalid value at 'label_filter_behavior' ({behaviour})", "invalid")
		for label in request.get("labelIds") or []:
			if label not in self.labels:
				return _api_error(400, f"Invalid label: {label}", "invalidArgument", "INVALID_ARGUMENT")
		self.watch = request
		expiration = int((time.time() + WATCH_DAYS * 86400) * 1000)
		return _json(200, {"historyId": str(self.history_id), "expiration": str(expiration)})

	# -- batch -----------------------------------------------------------------------------------------------

	def _batch(self, headers, body):
		content_type = _header(headers, "content-type") or ""
		if not content_type.startswith("multipart/mixed"):
			return _api_error(400, "Batch requests must be multipart/mixed", "badRequest", "INVALID_ARGUMENT")
		envelope = BytesParser(policy=compat32).parsebytes(
			b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
		)
		parts = envelope.get_payload() if envelope.is_multipart() else []
		if not parts:
			return _api_error(400, "Empty batch request", "badRequest", "INVALID_ARGUMENT")
		if len(parts) > MAX_BATCH_PARTS:
			return _api_error(400, f"A batch may hold {MAX_BATCH_PARTS} calls at most", "badRequest")
		outer_auth = _header(headers, "authorization")
		boundary = "batch_" + secrets.token_urlsafe(12)
		chunks = []
		for part in parts:
			content_id = (part.get("Content-ID") or "").strip()
			request_line, _, rest = part.get_payload().lstrip("\r\n").partition("\n")
			inner = Parser(policy=compat32).parsestr(rest)
			method, target, _ = (request_line.strip().split(" ", 2) + ["", ""])[:3]
			inner_headers = {k.lower(): v for k, v in inner.items()}
			if "authorization" not in inner_headers and outer_auth:
				inner_headers["authorization"] = outer_auth
			payload = inner.get_payload()
			status, out_headers, out_body = self.handle(
				method,
				target,
				inner_headers,
				payload.encode() if isinstance(payload, str) else b"",
				in_batch=True,
			)
			head = "".join(f"{k}: {v}\r\n" for k, v in out_headers.items())
			reason = HTTPStatus(status).phrase
			response_id = f"<response-{content_id[1:-1]}>" if content_id.startswith("<") else content_id
			chunks.append(
				f"--{boundary}\r\nContent-Type: application/http\r\nContent-ID: {response_id}\r\n\r\n"
				f"HTTP/1.1 {status} {reason}\r\n{head}\r\n{out_body.decode('utf-8')}\r\n"
			)
		chunks.append(f"--{boundary}--\r\n")
		return 200, {"Content-Type": f"multipart/mixed; boundary={boundary}"}, "".join(chunks).encode("utf-8")

	# -- OAuth -----------------------------------------------------------------------------------------------

	def _consent(self, query):
		if _one(query, "client_id") != self.client_id:
			return 400, {"Content-Type": "text/html"}, b"<h1>Error 401: invalid_client</h1>"
		redirect_uri = _one(query, "redirect_uri") or ""
		if _one(query, "response_type") != "code" or not redirect_uri:
			return 400, {"Content-Type": "text/html"}, b"<h1>Error 400: invalid_request</h1>"
		requested = set((_one(query, "scope") or "").split())
		granted = requested if self.consent_scopes is None else requested & self.consent_scopes
		code = "4/code-" + secrets.token_urlsafe(16)
		with self.lock:
			self.codes[code] = {
				"redirect_uri": redirect_uri,
				"scopes": granted,
				"used": False,
				"offline": _one(query, "access_type") == "offline",
				"challenge": _one(query, "code_challenge") or "",  # PKCE (S256)
			}
		params = {"state": _one(query, "state") or "", "code": code, "scope": " ".join(sorted(granted))}
		separator = "&" if "?" in redirect_uri else "?"
		return 302, {"Location": redirect_uri + separator + urlencode(params)}, b""

	def _client_ok(self, form, headers) -> bool:
		client_id, client_secret = form.get("client_id"), form.get("client_secret")
		auth = _header(headers, "authorization") or ""
		if auth.lower().startswith("basic "):
			client_id, _, client_secret = base64.b64decode(auth[6:]).decode().partition(":")
		return client_id == self.client_id and client_secret == self.client_secret

	def _token(self, headers, body):
		form = {k: v[0] for k, v in parse_qs(body.decode("utf-8"), keep_blank_values=True).items()}
		if form.get("grant_type") == "urn:ietf:params:oauth:grant-type:jwt-bearer":
			return self._jwt_bearer(form)  # a service account authenticates by its signature alone
		if not self._client_ok(form, headers):
			return _json(401, {"error": "invalid_client", "error_description": "Unauthorized"})
		grant = form.get("grant_type")
		with self.lock:
			if grant == "refresh_token":
				info = self.refresh_tokens.get(form.get("refresh_token", ""))
				if info is None or info["revoked"] or (self.testing_mode and self.refresh_token_age_days > 7):
					return _json(
						400,
						{"error": "invalid_grant", "error_description": "Token has been expired or revoked."},
					)
				asked = set((form.get("scope") or "").split())
				if asked - info["scopes"]:
					return _json(400, {"error": "invalid_scope", "error_description": "Bad Request"})
				self.refreshes += 1
				access = self._new_access(form["refresh_token"])
				return _json(
					200,
					{
						"access_token": access,
						"expires_in": self.token_lifetime,
						"scope": " ".join(sorted(info["scopes"])),
						"token_type": "Bearer",
					},
				)
			if grant == "authorization_code":
				code = self.codes.get(form.get("code", ""))
				if code is None:
					return _json(400, {"error": "invalid_grant", "error_description": "Malformed auth code."})
				if code["used"]:
					return _json(400, {"error": "invalid_grant", "error_description": "Bad Request"})
				if code["redirect_uri"] != form.get("redirect_uri"):
					return _json(400, {"error": "redirect_uri_mismatch", "error_description": "Bad Request"})
				if code["challenge"]:
					verifier = form.get("code_verifier") or ""
					if not verifier:
						return _json(400, {"error": "invalid_grant", "error_description": "Missing code verifier."})
					digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
					if digest != code["challenge"]:
						return _json(400, {"error": "invalid_grant", "error_description": "Invalid code verifier."})
					self.pkce_checked += 1
				code["used"] = True
				refresh = "1//rt-" + secrets.token_urlsafe(16)
				self.refresh_tokens[refresh] = {"scopes": set(code["scopes"]), "revoked": False}
				answer = {
					"access_token": self._new_access(refresh),
					"expires_in": self.token_lifetime,
					"scope": " ".join(sorted(code["scopes"])),
					"token_type": "Bearer",
				}
				if code["offline"]:
					answer["refresh_token"] = refresh
				return _json(200, answer)
		return _json(
			400, {"error": "unsupported_grant_type", "error_description": f"Invalid grant_type: {grant}"}
		)

	def _revoke(self, query, headers, body):
		form = parse_qs(body.decode("utf-8")) if body else {}
		token = _one(query, "token") or (form.get("token") or [""])[0]
		with self.lock:
			if token in self.refresh_tokens and not self.refresh_tokens[token]["revoked"]:
				refresh = token
			elif token in self.access_tokens:
				refresh = self.access_tokens[token]["refresh"]  # Google revokes the whole grant
			else:
				return _json(400, {"error": "invalid_token", "error_description": "Token expired or revoked"})
			self.refresh_tokens[refresh]["revoked"] = True
			for access, info in list(self.access_tokens.items()):
				if info["refresh"] == refresh:
					del self.access_tokens[access]
		return _json(200, {})


class _Handler(BaseHTTPRequestHandler):
	emulator: GmailEmulator
	protocol_version = "HTTP/1.1"  # keep-alive, as httplib2 expects from Google
	timeout = 10  # idle keep-alive connections end by themselves
	wbufsize = 1 << 16  # headers and body leave in one write: no Nagle / delayed-ACK stalls of 40 ms per call

	def setup(self):
		super().setup()
		self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

	def _serve(self):
		length = int(self.headers.get("Content-Length") or 0)
		body = self.rfile.read(length) if length else b""
		headers = {k.lower(): v for k, v in self.headers.items()}
		fault = self.emulator.transport.take(self.path)
		try:
			status, out_headers, out_body = self.emulator.handle(self.command, self.path, headers, body)
			if status == DROP:
				self.close_connection = True
				return
		except Exception as e:  # noqa: BLE001 - a bug in the emulator: make it visible in the test's failure
			status, out_headers, out_body = _api_error(
				500, f"Emulator bug: {e!r}", "backendError", "INTERNAL"
			)
		if fault:
			break_request(self, fault, status, out_headers, out_body, self.emulator.transport.stall_seconds)
			return
		self.send_response(status)
		for key, value in out_headers.items():
			self.send_header(key, value)
		self.send_header("Content-Length", str(len(out_body)))
		self.end_headers()
		if out_body:
			self.wfile.write(out_body)

	do_GET = do_POST = do_DELETE = do_PUT = _serve

	def log_message(self, *args):  # quiet
		pass


def _api_error(status, message, reason, status_text="", details=None, extra=None):
	error = {
		"code": status,
		"message": message,
		"errors": [{"message": message, "domain": "global", "reason": reason}],
		"status": status_text or HTTPStatus(status).name,
	}
	if details:
		error["details"] = details
	code, headers, body = _json(status, {"error": error})
	headers.update(extra or {})
	return code, headers, body


def _json(status, data):
	return (
		status,
		{"Content-Type": "application/json; charset=UTF-8", "Vary": "Origin"},
		json.dumps(data).encode(),
	)


def _one(query, key):
	values = query.get(key)
	return values[0] if values else None


def _header(headers, name):
	if hasattr(headers, "get"):
		return headers.get(name) or headers.get(name.title())
	return None
