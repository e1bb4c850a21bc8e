"""A local HTTPS emulator of the Microsoft identity platform and the slice of Microsoft Graph mail sync uses.

One server on 127.0.0.1 (free port, self-signed certificate from `make_certificates`) serves both:

identity (what msal asks for)
    GET  /{tenant}/v2.0/.well-known/openid-configuration
    GET  /{tenant}/oauth2/v2.0/authorize       the consent page: redirects at once with a code bound to the
                                               PKCE code_challenge and the nonce (echoed in the id_token)
    POST /{tenant}/oauth2/v2.0/token           grant_type refresh_token | authorization_code | client_credentials
                                               (app-only: a tenant-specific authority, scope .default, the
                                               client secret or a certificate's signed client_assertion)
Graph, under /v1.0 (Bearer tokens required)
    GET  /me, /me/mailFolders, /me/mailFolders/{id or well-known name}, .../childFolders
    GET  /me/mailFolders/{id}/messages         $filter (categories/any, receivedDateTime,
    lastModifiedDateTime),
                                               $select, $top, $skip
    GET  /me/mailFolders/{id}/messages/delta   $select, $filter=receivedDateTime ge; Prefer:
    odata.maxpagesize;
                                               nextLink ($skiptoken) and deltaLink ($deltatoken);
                                               with $filter a round returns at most 5,000 messages (the
                                               newest), as Microsoft documents for filtered delta
    GET  /me/messages/{id}/$value
    POST /subscriptions, PATCH|GET|DELETE /subscriptions/{id}
    /users/{address or id}/...                 the same mailbox routes as /me; the way app-only tokens read
                                               (they get 400 on /me); needs the application role Mail.Read
                                               and, with `app_mailboxes` set, the mailbox in that scope (an
                                               application access policy); unknown users: 404 ErrorInvalidUser.
                                               A delegated token of someone else (a delegate, see `sign_in_as`)
                                               needs Mail.Read.Shared in the token AND that person in
                                               `shared_access` (Full Access / Read given in Exchange admin), else
                                               403 ErrorAccessDenied, as Graph answers both; it cannot subscribe
                                               to that mailbox (Mail.Read.Shared supports no subscriptions)

Ids: messages have immutable ids ("imm-..."); a request without `Prefer: IdType="ImmutableId"` gets REST ids
that change when the message moves ("rest-<folder>-<n>"), as with real Graph. Such requests are recorded in
`missing_immutable_prefer`.

Fault injection: `throttle()`, `expire_access_tokens()`, `revoke_grants()`, `invalidate_delta_tokens()`,
`mailbox_enabled = False`, `token_error` (any Entra error result for the next token requests), `poison()`
(one message's $value always fails, as an S/MIME message (500 ErrorMimeContentConversionFailed) or a
message over 25 MB (504) does, while the message itself is listed and readable as JSON), `transport` (broken
connections: `graph.transport.add(CUT, match="/$value")`, see transport_faults.py).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import itertools
import json
import re
import secrets
import ssl
import threading
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, quote, unquote, urlencode, urlsplit

from transport_faults import TransportFaults, break_request

HOST = "127.0.0.1"
MAIL_READ = "https://graph.microsoft.com/Mail.Read"
MAIL_READ_SHARED = "https://graph.microsoft.com/Mail.Read.Shared"
SHARED_READ_SCOPES = {MAIL_READ_SHARED, "https://graph.microsoft.com/Mail.ReadWrite.Shared"}
USER_READ = "https://graph.microsoft.com/User.Read"
DEFAULT_SCOPES = (MAIL_READ, USER_READ)
CONSUMERS_TENANT_ID = "9188040d-6c67-4c5b-b112-36a304b66dad"  # the tenant of all Microsoft accounts
WELL_KNOWN = {
	"inbox": "Inbox",
	"sentitems": "Sent Items",
	"junkemail": "Junk Email",
	"deleteditems": "Deleted Items",
	"drafts": "Drafts",
	"archive": "Archive",
}
DEFAULT_PAGE = 10
DELTA_FILTER_CAP = 5000  # messages a delta round with $filter returns at most
MAX_SUBSCRIPTION_MINUTES = 10080


# -- certificates --------------------------------------------------------------------------------------------


@dataclass
class Certificates:
	ca_file: str  # trust this (requests/msal `verify=`)
	cert_file: str  # server certificate chain
	key_file: str


def make_certificates(directory: str | Path) -> Certificates:
	"""A throwaway CA and a server certificate for 127.0.0.1 and localhost signed by it (EC P-256)."""
	import ipaddress

	from cryptography import x509
	from cryptography.hazmat.primitives import hashes, serialization
	from cryptography.hazmat.primitives.asymmetric import ec
	from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

	directory = Path(directory)
	directory.mkdir(parents=True, exist_ok=True)
	now = dt.datetime.now(dt.timezone.utc)
	ca_key = ec.generate_private_key(ec.SECP256R1())
	ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Email Sync test CA")])
	ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
	ca = (
		x509.CertificateBuilder()
		.subject_name(ca_name)
		.issuer_name(ca_name)
		.public_key(ca_key.public_key())
		.serial_number(x509.random_serial_number())
		.not_valid_before(now - dt.timedelta(minutes=5))
		.not_valid_after(now + dt.timedelta(days=2))
		.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
		.add_extension(
			x509.KeyUsage(
				digital_signature=True,
				content_commitment=False,
				key_encipherment=False,
				data_encipherment=False,
				key_agreement=False,
				key_cert_sign=True,
				crl_sign=True,
				encipher_only=False,
				decipher_only=False,
			),
			critical=True,
		)
		.add_extension(ca_ski, critical=False)
		.sign(ca_key, hashes.SHA256())
	)
	key = ec.generate_private_key(ec.SECP256R1())
	cert = (
		x509.CertificateBuilder()
		.subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
		.issuer_name(ca_name)
		.public_key(key.public_key())
		.serial_number(x509.random_serial_number())
		.not_valid_before(now - dt.timedelta(minutes=5))
		.not_valid_after(now + dt.timedelta(days=2))
		.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
		.add_extension(
			x509.SubjectAlternativeName(
				[x509.IPAddress(ipaddress.ip_address(HOST)), x509.DNSName("localhost")]
			),
			critical=False,
		)
		.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
		.add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
		.add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
		.sign(ca_key, hashes.SHA256())
	)
	pem = serialization.Encoding.PEM
	files = Certificates(
		str(directory / "ca.pem"), str(directory / "server.pem"), str(directory / "server.key")
	)
	Path(files.ca_file).write_bytes(ca.public_bytes(pem))
	Path(files.cert_file).write_bytes(cert.public_bytes(pem) + ca.public_bytes(pem))
	Path(files.key_file).write_bytes(
		key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
	)
	return files


# -- state ---------------------------------------------------------------------------------------------------


@dataclass
class Message:
	id: str  # immutable id
	folder_id: str
	received: dt.datetime  # naive UTC
	mime: bytes
	categories: list[str] = field(default_factory=list)
	conversation_id: str = ""
	seq: int = 0  # change sequence of the last change
	modified: dt.datetime | None = None
	is_read: bool = False


@dataclass
class Grant:
	scopes: set[str]
	tenant: str  # the tenant path it was issued through
	user: str = ""  # who signed in; "" is the mailbox's own user (`address`)


@dataclass
class AccessToken:
	scopes: set[str]
	valid: bool = True
	roles: set[str] | None = None  # an app-only token's application permissions; None for delegated tokens
	user: str = ""  # a delegated token's user; "" is the mailbox's own user (`address`)


@dataclass
class Subscription:
	id: str
	resource: str
	change_type: str
	notification_url: str
	client_state: str
	expiration: str
	lifecycle_url: str = ""  # where lifecycle notifications go (reauthorizationRequired, removed, missed)
	needs_reauthorization: bool = False  # until renewed, no change notification is sent


class GraphError(Exception):
	def __init__(self, status: int, code: str, message: str, headers: dict | None = None):
		super().__init__(message)
		self.status, self.code, self.message, self.headers = status, code, message, headers or {}


class GraphEmulator:
	def __init__(
		self,
		certs: Certificates,
		*,
		client_id: str = "11111111-2222-3333-4444-555555555555",
		client_secret: str = "s3cret~value",
		address: str = "ana@contoso.example",
		tenant_id: str = "72f988bf-86f1-41af-91ab-2d7cd011db47",
		redirect_uri: str = "https://erp.example.com/api/method/email_sync.oauth.microsoft_callback",
	):
		self.certs = certs
		self.client_id, self.client_secret = client_id, client_secret
		self.address, self.tenant_id, self.redirect_uri = address, tenant_id, redirect_uri
		self.user_id = "a1b2c3d4-0000-4000-8000-00000000beef"
		self.lock = threading.RLock()
		self._ids = itertools.count(1)
		self.seq = 0
		self.generation = 0  # bumped by invalidate_delta_tokens()
		self.folders: dict[str, dict] = {}
		self.messages: dict[str, Message] = {}
		self.removals: list[tuple[int, str, str]] = []  # (seq, folder id, message id)
		self.grants: dict[str, Grant] = {}  # refresh token -> grant
		self.access_tokens: dict[str, AccessToken] = {}
		self.codes: dict[str, tuple] = {}  # code -> (redirect_uri, scopes, code_challenge, nonce)
		self.pkce_checked = 0  # authorization-code grants whose code_verifier matched its challenge
		self.subscriptions: dict[str, Subscription] = {}
		# fault injection
		self.mailbox_enabled = True
		self.throttle_left = 0
		self.throttle_status = 429
		self.throttle_retry_after: str | None = "1"
		self.expire_after: int | None = None
		self.revoked_code: int | None = None
		self.token_error: dict | None = None
		self.access_token_lifetime = 3600
		self.validate_notification_urls = True
		self.delta_filter_cap = DELTA_FILTER_CAP  # lower it to show the cap with a small mailbox
		self.poisoned: dict[str, GraphError] = {}  # message id -> the error its $value answers
		# app-only access
		self.app_roles = {"Mail.Read"}  # application permissions with admin consent
		self.app_mailboxes: set[str] | None = None  # an application access policy's scope; None: every mailbox
		self.app_certificates: dict[str, object] = {}  # SHA-1 thumbprint (hex, upper) -> public key
		# delegates: people other than the mailbox's user who sign in (the mailbox is then a shared one to them)
		self.sign_in_as = ""  # who signs in on the consent page; "" is the mailbox's own user
		self.shared_access: set[str] = set()  # people given Full Access / Read on the mailbox (lower case)
		self._caller: AccessToken | None = None  # the token of the request being routed
		self._root = "/me"  # the mailbox root of the request being routed, for the links it hands out
		self.transport = TransportFaults()  # connections to break
		# records
		self.requests: list[tuple[str, str]] = []  # (method, path with query) of Graph requests
		self.throttled: list[float] = []  # monotonic times of throttled answers
		self.token_requests: list[dict] = []  # {"tenant", "grant_type", "scope"}
		self.missing_immutable_prefer: list[str] = []
		self.page_sizes: list[int] = []  # odata.maxpagesize asked for on delta requests
		self._server: ThreadingHTTPServer | None = None
		self._thread: threading.Thread | None = None
		self.root_id = self._folder_id()
		for name, display in WELL_KNOWN.items():
			self.add_folder(display, well_known=name)

	# -- lifecycle -------------------------------------------------------------------------------------------

	def start(self) -> GraphEmulator:
		context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
		context.load_cert_chain(self.certs.cert_file, self.certs.key_file)
		server = _Server((HOST, 0), _Handler, context)
		server.emulator = self
		self._server = server
		self._thread = threading.Thread(
			target=server.serve_forever, args=(0.02,), name="graph-emulator", daemon=True
		)
		self._thread.start()
		return self

	def stop(self) -> None:
		if self._server is not None:
			self._server.shutdown()
			self._server.server_close()
			self._server = None

	def __enter__(self):
		return self.start()

	def __exit__(self, *exc):
		self.stop()

	@property
	def port(self) -> int:
		return self._server.server_address[1]

	@property
	def base(self) -> str:
		return f"https://{HOST}:{self.port}"

	@property
	def auth_base(self) -> str:
		return self.base

	@property
	def api_base(self) -> str:
		return f"{self.base}/v1.0"

	# -- mailbox ---------------------------------------------------------------------------------------------

	def _folder_id(self) -> str:
		return "AAMkFolder" + base64.urlsafe_b64encode(secrets.token_bytes(9)).decode().rstrip("=")

	def add_folder(self, display_name: str, parent: str | None = None, well_known: str | None = None) -> str:
		with self.lock:
			folder_id = self._folder_id()
			parent_id = self.folder_id(parent) if parent else self.root_id
			self.folders[folder_id] = {
				"id": folder_id,
				"displayName": display_name,
				"parentFolderId": parent_id,
			}
			if well_known:
				self.folders[folder_id]["_wellKnown"] = well_known
			return folder_id

	def folder_id(self, name_or_id: str) -> str:
		"""A folder's id from its id, well-known name ("inbox") or display name."""
		with self.lock:
			if name_or_id in self.folders or name_or_id == self.root_id:
				return name_or_id
			for folder in self.folders.values():
				if folder.get("_wellKnown") == name_or_id.lower() or folder["displayName"] == name_or_id:
					return folder["id"]
			raise KeyError(name_or_id)

	def _bump(self) -> int:
		self.seq += 1
		return self.seq

	def add_message(
		self,
		folder: str,
		received: dt.datetime | str,
		*,
		subject: str | None = None,
		categories: Iterable[str] = (),
		mime: bytes | None = None,
		conversation_id: str | None = None,
	) -> str:
		with self.lock:
			if isinstance(received, str):
				received = parse_time(received)
			n = next(self._ids)
			message_id = f"imm-{n:05d}-" + hashlib.sha1(str(n).encode()).hexdigest()[:12]
			subject = subject or f"Message {n}"
			if mime is None:
				mime = (
					f"From: Customer {n} <c{n}@acme.example>\r\nTo: {self.address}\r\nSubject: {subject}\r\n"
					f"Message-ID: <m{n}@acme.example>\r\nDate: {received:%a, %d %b %Y %H:%M:%S} +0000\r\n\r\n"
					f"Body of message {n}.\r\n"
				).encode()
			seq = self._bump()
			self.messages[message_id] = Message(
				message_id,
				self.folder_id(folder),
				received,
				mime,
				list(categories),
				conversation_id or f"conv-{n}",
				seq,
				_now(),
			)
			return message_id

	def move(self, message_id: str, folder: str) -> None:
		"""Moves keep the immutable id (and change the REST id)."""
		with self.lock:
			m = self.messages[message_id]
			seq = self._bump()
			self.removals.append((seq, m.folder_id, message_id))
			m.folder_id, m.seq, m.modified = self.folder_id(folder), seq, _now()

	def set_categories(self, message_id: str, categories: Iterable[str]) -> None:
		with self.lock:
			m = self.messages[message_id]
			m.categories, m.seq, m.modified = list(categories), self._bump(), _now()

	def mark_read(self, message_id: str) -> None:
		with self.lock:
			m = self.messages[message_id]
			m.is_read, m.seq, m.modified = True, self._bump(), _now()

	def delete(self, message_id: str) -> None:
		with self.lock:
			m = self.messages.pop(message_id)
			self.removals.append((self._bump(), m.folder_id, message_id))

	# -- auth ------------------------------------------------------------------------------------------------

	def issue_refresh_token(
		self, scopes: Iterable[str] = DEFAULT_SCOPES, tenant: str = "common", user: str = ""
	) -> str:
		with self.lock:
			token = "rt-" + secrets.token_urlsafe(16)
			self.grants[token] = Grant(set(scopes), tenant, user.lower())
			return token

	def issue_access_token(self, scopes: Iterable[str] = DEFAULT_SCOPES, user: str = "") -> str:
		with self.lock:
			token = "at-" + secrets.token_urlsafe(16)
			self.access_tokens[token] = AccessToken(set(scopes), user=user.lower())
			return token

	def issue_app_token(self, roles: Iterable[str] = ("Mail.Read",)) -> str:
		with self.lock:
			token = "at-app-" + secrets.token_urlsafe(16)
			self.access_tokens[token] = AccessToken(set(), roles=set(roles))
			return token

	def add_app_certificate(self, certificate_pem: bytes) -> str:
		"""Upload a certificate to the app registration; returns its thumbprint."""
		from cryptography import x509
		from cryptography.hazmat.primitives import hashes

		certificate = x509.load_pem_x509_certificate(certificate_pem)
		thumbprint = certificate.fingerprint(hashes.SHA1()).hex().upper()
		self.app_certificates[thumbprint] = certificate.public_key()
		return thumbprint

	def issue_code(self, scopes: Iterable[str] = DEFAULT_SCOPES, redirect_uri: str | None = None) -> str:
		with self.lock:
			code = "code-" + secrets.token_urlsafe(16)
			self.codes[code] = (redirect_uri or self.redirect_uri, set(scopes), "", "", self.sign_in_as.lower())
			return code

	def expire_access_tokens(self, after_requests: int = 0) -> None:
		"""Make every access token issued so far invalid, now or after that many more Graph requests."""
		with self.lock:
			if after_requests:
				self.expire_after = after_requests
			else:
				for token in self.access_tokens.values():
					token.valid = False

	def revoke_grants(self, aadsts: int = 50173) -> None:
		"""Every refresh token now fails with invalid_grant (50173: revoked; 70008: expired from inactivity)."""
		self.revoked_code = aadsts

	def throttle(self, count: int, retry_after: str | None = "1", status: int = 429) -> None:
		"""The next `count` Graph requests are refused with `status` and Retry-After (none when None)."""
		with self.lock:
			self.throttle_left, self.throttle_retry_after, self.throttle_status = count, retry_after, status

	def poison(
		self,
		message_id: str,
		status: int = 500,
		code: str = "ErrorMimeContentConversionFailed",
		message: str = "MIME content conversion failed.",
	) -> None:
		"""From now on the message's $value answers this error, every time."""
		with self.lock:
			self.poisoned[message_id] = GraphError(status, code, message)

	def invalidate_delta_tokens(self) -> None:
		"""Every deltaLink and nextLink handed out so far now answers 410 Gone (SyncStateNotFound)."""
		with self.lock:
			self.generation += 1

	# -- notifications ---------------------------------------------------------------------------------------

	def lifecycle(self, subscription_id: str, event: str, client_state: str | None = None) -> int:
		"""POST a lifecycle notification to the subscription's lifecycleNotificationUrl, as Graph does: for
		reauthorizationRequired the subscription sends nothing until it is renewed; subscriptionRemoved
		deletes it; missed says some change notifications were lost. Returns the receiver's HTTP status."""
		with self.lock:
			sub = self.subscriptions[subscription_id]
			if event == "reauthorizationRequired":
				sub.needs_reauthorization = True
			if event == "subscriptionRemoved":
				del self.subscriptions[subscription_id]
		body = {
			"value": [
				{
					"subscriptionId": sub.id,
					"subscriptionExpirationDateTime": sub.expiration,
					"tenantId": self.tenant_id,
					"clientState": sub.client_state if client_state is None else client_state,
					"lifecycleEvent": event,
				}
			]
		}
		return _post_json(sub.lifecycle_url, body)

	def notify(self, subscription_id: str, message_id: str, client_state: str | None = None) -> int:
		"""POST a 'created' change notification, as Graph does; returns the receiver's HTTP status."""
		sub = self.subscriptions[subscription_id]
		if sub.needs_reauthorization:
			return 0  # Graph holds notifications back until the subscription is reauthorized
		resource = f"Users/{self.user_id}/Messages/{message_id}"
		body = {
			"value": [
				{
					"subscriptionId": sub.id,
					"subscriptionExpirationDateTime": sub.expiration,
					"changeType": "created",
					"resource": resource,
					"resourceData": {
						"@odata.type": "#Microsoft.Graph.Message",
						"@odata.id": resource,
						"@odata.etag": 'W/"CQAAABYAAAA"',
						"id": message_id,
					},
					"clientState": sub.client_state if client_state is None else client_state,
					"tenantId": self.tenant_id,
				}
			]
		}
		request = urllib.request.Request(
			sub.notification_url,
			json.dumps(body).encode(),
			{"Content-Type": "application/json"},
			method="POST",
		)
		try:
			with urllib.request.urlopen(request, timeout=5) as response:
				return response.status
		except urllib.error.HTTPError as e:
			return e.code

	def _validate_notification_url(self, url: str) -> None:
		token = (
			"Validation: Testing client application reachability for subscription Request-Id: "
			+ secrets.token_hex(8)
		)
		request = urllib.request.Request(
			f"{url}{'&' if '?' in url else '?'}validationToken={quote(token)}",
			b"",
			{"Content-Type": "text/plain"},
			method="POST",
		)
		try:
			with urllib.request.urlopen(request, timeout=5) as response:
				ok = response.status == 200 and response.read().decode() == token
		except OSError:
			ok = False
		if not ok:
			raise GraphError(
				400,
				"ValidationError",
				"Subscription validation request failed. Response must exactly match validationToken query parameter.",
			)

	# -- request handling ------------------------------------------------------------------------------------

	def handle(self, method: str, target: str, headers, body: bytes) -> tuple[int, dict, bytes]:
		parts = urlsplit(target)
		path = unquote(parts.path)
		query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
		try:
			if path.startswith("/v1.0/"):
				return self._graph(method, path[len("/v1.0") :], target, query, headers, body)
			return self._identity(method, path, query, headers, body)
		except GraphError as e:
			payload = {
				"error": {
					"code": e.code,
					"message": e.message,
					"innerError": {"request-id": secrets.token_hex(8)},
				}
			}
			return e.status, {"Content-Type": "application/json", **e.headers}, json.dumps(payload).encode()

	# identity

	def _identity(self, method, path, query, headers, body):
		match = re.fullmatch(r"/([^/]+)/v2\.0/\.well-known/openid-configuration", path)
		if match and method == "GET":
			tenant = match.group(1)
			if not self._tenant_known(tenant):
				return _json_response(
					400,
					{
						"error": "invalid_tenant",
						"error_description": f"AADSTS90002: Tenant '{tenant}' not found. Check to make sure you have "
						"the correct tenant ID and are signing into the correct cloud.",
						"error_codes": [90002],
					},
				)
			issuer_tenant = {"consumers": CONSUMERS_TENANT_ID}.get(
				tenant, "{tenantid}" if tenant in ("common", "organizations") else tenant
			)
			base = f"{self.base}/{tenant}"
			return _json_response(
				200,
				{
					"token_endpoint": f"{base}/oauth2/v2.0/token",
					"authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
					"device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
					"end_session_endpoint": f"{base}/oauth2/v2.0/logout",
					"jwks_uri": f"{base}/discovery/v2.0/keys",
					"issuer": f"{self.base}/{issuer_tenant}/v2.0",
					"response_modes_supported": ["query", "fragment", "form_post"],
					"response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
					"scopes_supported": ["openid", "profile", "email", "offline_access"],
					"subject_types_supported": ["pairwise"],
					"id_token_signing_alg_values_supported": ["RS256"],
					"token_endpoint_auth_methods_supported": [
						"client_secret_post",
						"private_key_jwt",
						"client_secret_basic",
					],
					"tenant_region_scope": None,
				},
			)
		match = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/authorize", path)
		if match and method == "GET":
			return self._authorize(match.group(1), query)
		match = re.fullmatch(r"/([^/]+)/oauth2/v2\.0/token", path)
		if match and method == "POST":
			return self._token(match.group(1), headers, body)
		return _json_response(404, {"error": "not_found", "error_description": f"No route {method} {path}"})

	def _tenant_known(self, tenant: str) -> bool:
		return tenant in ("common", "organizations", "consumers", self.tenant_id, "contoso.example")

	def _token(self, tenant, headers, body):
		form = {k: v[0] for k, v in parse_qs(body.decode(), keep_blank_values=True).items()}
		with self.lock:
			self.token_requests.append(
				{"tenant": tenant, "grant_type": form.get("grant_type"), "scope": form.get("scope", "")}
			)
		client_id, secret = form.get("client_id"), form.get("client_secret")
		auth = headers.get("Authorization", "")
		if auth.startswith("Basic "):  # msal sends client_secret_basic
			client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
			client_id, secret = unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))
		if form.get("client_assertion"):
			refusal = self._check_assertion(form, tenant)
			if refusal:
				return refusal
		elif client_id != self.client_id or secret != self.client_secret:
			return _token_error(
				401,
				"invalid_client",
				7000215,
				f"Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{self.client_id}'.",
			)
		if self.token_error:
			return _json_response(400, self.token_error)
		requested = set(form.get("scope", "").split()) - {"openid", "profile", "offline_access", "email"}
		grant_type = form.get("grant_type")
		if grant_type == "client_credentials":
			return self._client_credentials(tenant, form)
		with self.lock:
			if grant_type == "refresh_token":
				if self.revoked_code:
					text = {
						70008: "The provided authorization code or refresh token has expired due to inactivity. Send a new interactive authorization request for this user and resource.",
						50173: "The provided grant has expired due to it being revoked, a fresh auth token is needed. The user might have changed or reset their password.",
					}.get(self.revoked_code, "The refresh token was revoked.")
					return _token_error(400, "invalid_grant", self.revoked_code, text)
				grant = self.grants.get(form.get("refresh_token", ""))
				if grant is None:
					return _token_error(
						400, "invalid_grant", 9002313, "Invalid request. Request is malformed or invalid."
					)
			elif grant_type == "authorization_code":
				code = self.codes.pop(form.get("code", ""), None)
				if code is None:
					return _token_error(
						400,
						"invalid_grant",
						70000,
						"The provided value for the 'code' parameter is not valid.",
					)
				if code[0] != form.get("redirect_uri"):
					return _token_error(
						400,
						"invalid_grant",
						50148,
						"The redirect_uri does not match the redirect URI used in the authorization request.",
					)
				if code[2]:  # issued with PKCE: the verifier must hash to the challenge
					verifier = form.get("code_verifier") or ""
					if _b64_bytes(hashlib.sha256(verifier.encode()).digest()) != code[2]:
						return _token_error(
							400,
							"invalid_grant",
							501481,
							"The Code_Verifier does not match the code_challenge supplied in the authorization request.",
						)
					self.pkce_checked += 1
				grant = Grant(code[1], tenant, code[4])
				nonce = code[3]
			else:
				return _token_error(
					400, "unsupported_grant_type", 70003, "The app requested an unsupported grant type."
				)
			missing = requested - grant.scopes
			if missing:
				result = {
					"error": "invalid_grant",
					"error_description": f"AADSTS65001: The user or administrator has not consented to use the application with ID '{self.client_id}' named 'Email Sync'. Send an interactive authorization request for this user and resource.\r\nTrace ID: 0a1b\r\nCorrelation ID: 2c3d\r\nTimestamp: 2025-01-01 00:00:00Z",
					"error_codes": [65001],
					"suberror": "consent_required",
				}
				return _json_response(400, result)
			refresh_token = self.issue_refresh_token(grant.scopes, tenant, grant.user)  # rotated on every use
			access_token = self.issue_access_token(grant.scopes, grant.user)
		return _json_response(
			200,
			{
				"token_type": "Bearer",
				"scope": " ".join(sorted(grant.scopes | {"openid", "profile", "email"})),
				"expires_in": self.access_token_lifetime,
				"ext_expires_in": self.access_token_lifetime,
				"access_token": access_token,
				"refresh_token": refresh_token,
				"id_token": self._id_token(tenant, nonce if grant_type == "authorization_code" else "", grant.user),
				"client_info": _b64(json.dumps({"uid": self.user_id, "utid": self._home_tenant(tenant)})),
			},
		)

	def _client_credentials(self, tenant: str, form: dict):
		"""App-only tokens: one organization's authority, scope {resource}/.default, no refresh token."""
		if tenant in ("common", "organizations", "consumers"):
			return _token_error(
				400,
				"invalid_request",
				50194,
				f"Application '{self.client_id}'(Email Sync) is not configured as a multi-tenant application. Usage "
				"of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a "
				"tenant-specific endpoint or configure the application to be multi-tenant.",
			)
		if form.get("scope") != "https://graph.microsoft.com/.default":
			return _token_error(
				400,
				"invalid_scope",
				1002012,
				f"The provided value for scope {form.get('scope')} is not valid. Client credential flows must have "
				"a scope value with /.default suffixed to the resource identifier (application ID URI).",
			)
		token = self.issue_app_token(self.app_roles)
		return _json_response(
			200,
			{
				"token_type": "Bearer",
				"expires_in": self.access_token_lifetime,
				"ext_expires_in": self.access_token_lifetime,
				"access_token": token,
			},
		)

	def _check_assertion(self, form: dict, tenant: str):
		"""A certificate credential: a JWT signed with the certificate's key, naming it by thumbprint (x5t)."""
		from cryptography.exceptions import InvalidSignature
		from cryptography.hazmat.primitives import hashes
		from cryptography.hazmat.primitives.asymmetric import padding

		def refuse(code: int, text: str):
			return _token_error(401, "invalid_client", code, text)

		if form.get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
			return refuse(7000216, "'client_assertion', 'client_secret' or 'request' is required.")
		try:
			head_b64, claims_b64, signature_b64 = form["client_assertion"].split(".")
			header = json.loads(_unb64(head_b64))
			claims = json.loads(_unb64(claims_b64))
			signature = _unb64(signature_b64)
		except (ValueError, KeyError):
			return refuse(50027, "JWT token is invalid or malformed.")
		thumbprint = _unb64(header.get("x5t", "")).hex().upper()
		key = self.app_certificates.get(thumbprint)
		if key is None:
			return refuse(
				700027, f"The certificate with identifier used to sign the client assertion is not registered on "
				f"application. [Reason - The key was not found., Thumbprint of key used by client: '{thumbprint}']"
			)  # fmt: skip
		try:
			key.verify(signature, f"{head_b64}.{claims_b64}".encode(), padding.PKCS1v15(), hashes.SHA256())
		except InvalidSignature:
			return refuse(700027, "Client assertion contains an invalid signature.")
		audience = f"{self.base}/{tenant}/oauth2/v2.0/token"
		if claims.get("aud") != audience or claims.get("iss") != self.client_id or claims.get("sub") != self.client_id:
			return refuse(700021, f"Client assertion audience claim does not match Realm issuer: {claims.get('aud')}")
		if float(claims.get("exp") or 0) < _now().replace(tzinfo=dt.timezone.utc).timestamp():
			return refuse(700024, "Client assertion is not within its valid time range.")
		return None

	def _home_tenant(self, tenant: str) -> str:
		return CONSUMERS_TENANT_ID if tenant == "consumers" else self.tenant_id

	def _authorize(self, tenant: str, query: dict):
		"""The consent page: the user consents at once; the code remembers the PKCE challenge and the nonce."""
		redirect_uri = query.get("redirect_uri") or ""
		if query.get("client_id") != self.client_id or not redirect_uri or query.get("response_type") != "code":
			return 400, {"Content-Type": "text/html"}, b"<h1>AADSTS900144: invalid request</h1>"
		if query.get("code_challenge") and query.get("code_challenge_method") != "S256":
			return 400, {"Content-Type": "text/html"}, b"<h1>AADSTS501491: invalid code_challenge_method</h1>"
		scopes = set(query.get("scope", "").split()) - {"openid", "profile", "offline_access", "email"}
		code = "code-" + secrets.token_urlsafe(16)
		with self.lock:
			self.codes[code] = (
				redirect_uri, scopes, query.get("code_challenge", ""), query.get("nonce", ""), self.sign_in_as.lower()
			)
		params = {"code": code, "state": query.get("state", ""), "session_state": secrets.token_hex(8)}
		location = redirect_uri + ("&" if "?" in redirect_uri else "?") + urlencode(params)
		return 302, {"Location": location}, b""

	def _id_token(self, tenant: str, nonce: str = "", user: str = "") -> str:
		now = int(_now().replace(tzinfo=dt.timezone.utc).timestamp())
		claims = {
			"aud": self.client_id,
			"iss": f"{self.base}/{self._home_tenant(tenant)}/v2.0",
			"iat": now,
			"nbf": now,
			"exp": now + 3600,
			"name": "Ana Silva",
			"preferred_username": user or self.address,
			"email": user or self.address,
			"oid": self.user_id,
			"sub": "sub-" + self.user_id,
			"tid": self._home_tenant(tenant),
			"ver": "2.0",
		}
		if nonce:
			claims["nonce"] = nonce
		return f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}))}.{_b64(json.dumps(claims))}."

	# graph

	def _graph(self, method, path, target, query, headers, body):
		prefer = _prefer(headers.get("Prefer", ""))
		root, user = "/me", None
		match = re.fullmatch(r"/users/([^/]+)(/.*)?", path)
		if match:  # /users/{address or id}/... is the same mailbox as /me, addressed by name
			user = match.group(1).strip("'")
			root, path = f"/users/{quote(match.group(1), safe='@')}", "/me" + (match.group(2) or "")
		with self.lock:
			self._root, self._caller = root, None
			self.requests.append((method, target))
			immutable = prefer.get("idtype", "").strip('"').lower() == "immutableid"
			if not immutable:
				self.missing_immutable_prefer.append(target)
			token = self._authenticate(headers)
			self._caller = token
			if self.throttle_left > 0:
				self.throttle_left -= 1
				self.throttled.append(_monotonic())
				extra = (
					{"Retry-After": self.throttle_retry_after}
					if self.throttle_retry_after is not None
					else {}
				)
				raise GraphError(
					self.throttle_status,
					"ApplicationThrottled" if self.throttle_status == 429 else "ServiceUnavailable",
					"Application is over its MailboxConcurrency limit.",
					extra,
				)
			if user is not None and user.lower() not in (self.address.lower(), self.user_id):
				raise GraphError(404, "ErrorInvalidUser", f"The requested user '{user}' is invalid.")
			if token.roles is not None:  # an app-only token
				if user is None and path.startswith("/me"):
					raise GraphError(400, "BadRequest", "/me request is only valid with delegated authentication flow.")
				if path == "/me":
					raise GraphError(403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
				if path.startswith("/me/") and not token.roles & {"Mail.Read", "Mail.ReadWrite"}:
					raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
				if path.startswith("/me/") and self.app_mailboxes is not None and self.address.lower() not in self.app_mailboxes:
					raise GraphError(
						403, "ErrorAccessDenied",
						"Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.",
					)  # fmt: skip
			delegate = token.roles is None and token.user not in ("", self.address.lower())
			if delegate and path.startswith("/me/"):
				if user is None:
					raise GraphError(
						500, "EmulatorLimit", f"Only {self.address}'s mailbox is emulated, not {token.user}'s own."
					)
				# Someone else's mailbox: the delegated Mail.Read.Shared, and access given in Exchange.
				if not token.scopes & SHARED_READ_SCOPES or token.user not in self.shared_access:
					raise GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
			if path.startswith("/me"):
				if not self.mailbox_enabled:
					raise GraphError(
						404,
						"MailboxNotEnabledForRESTAPI",
						"The mailbox is either inactive, soft-deleted, or is hosted on-premise.",
					)
				need = USER_READ if path == "/me" else MAIL_READ
				if token.roles is None and not delegate and need not in token.scopes and not (
					need == MAIL_READ and "https://graph.microsoft.com/Mail.ReadWrite" in token.scopes
				):
					raise GraphError(
						403, "ErrorAccessDenied", "Access is denied. Check credentials and try again."
					)
			return self._route(method, path, query, prefer, immutable, body)

	def _authenticate(self, headers) -> AccessToken:
		auth = headers.get("Authorization", "")
		token = self.access_tokens.get(auth[7:]) if auth.startswith("Bearer ") else None
		if self.expire_after is not None:
			self.expire_after -= 1
			if self.expire_after <= 0:
				self.expire_after = None
				for t in self.access_tokens.values():
					t.valid = False
		if token is None or not token.valid:
			reason = (
				"Lifetime validation failed, the token is expired."
				if token
				else "IDX14100: JWT is not well formed."
			)
			raise GraphError(
				401,
				"InvalidAuthenticationToken",
				reason,
				{"WWW-Authenticate": 'Bearer realm="", error="invalid_token"'},
			)
		return token

	def _route(self, method, path, query, prefer, immutable, body):
		if method == "GET" and path == "/me":
			delegate = self._caller.user if self._caller and self._caller.roles is None else ""
			if delegate and delegate != self.address.lower() and self._root == "/me":
				profile = {"id": "d-" + hashlib.sha1(delegate.encode()).hexdigest()[:12], "displayName": delegate}
				profile.update(mail=delegate, userPrincipalName=delegate)
				return _json_response(200, self._select(profile, query))
			return _json_response(
				200,
				self._select(
					{
						"id": self.user_id,
						"displayName": "Ana Silva",
						"mail": self.address,
						"userPrincipalName": self.address,
					},
					query,
				),
			)
		if method == "GET" and path == "/me/mailFolders":
			return self._folder_list(self.root_id, query, f"{self._root}/mailFolders")
		match = re.fullmatch(r"/me/mailFolders/([^/]+)(/childFolders|/messages/delta|/messages)?", path)
		if match and method == "GET":
			folder_id = self._resolve_folder(match.group(1))
			tail = match.group(2)
			if tail == "/childFolders":
				return self._folder_list(folder_id, query, f"{self._root}/mailFolders/{quote(folder_id)}/childFolders")
			if tail == "/messages/delta":
				return self._delta(folder_id, query, prefer, immutable)
			if tail == "/messages":
				return self._message_list(folder_id, query, immutable)
			return _json_response(200, self._select(self._folder_json(folder_id), query))
		match = re.fullmatch(r"/me/messages/([^/]+)/\$value", path)
		if match and method == "GET":
			message = self._resolve_message(match.group(1))
			if message.id in self.poisoned:
				raise self.poisoned[message.id]
			return 200, {"Content-Type": "text/plain"}, message.mime
		match = re.fullmatch(r"/me/messages/([^/]+)", path)
		if match and method == "GET":
			message = self._resolve_message(match.group(1))
			select = query["$select"].split(",") if query.get("$select") else None
			return _json_response(200, self._message_json(message, select, immutable))
		if path == "/subscriptions" and method == "POST":
			return self._subscribe(json.loads(body or b"{}"))
		match = re.fullmatch(r"/subscriptions/([^/]+)", path)
		if match:
			sub = self.subscriptions.get(match.group(1))
			if sub is None:
				raise GraphError(404, "ResourceNotFound", "The object was not found.")
			if method == "DELETE":
				del self.subscriptions[sub.id]
				return 204, {}, b""
			if method == "PATCH":
				expiration = json.loads(body or b"{}").get("expirationDateTime")
				self._check_expiration(expiration)
				sub.expiration, sub.needs_reauthorization = expiration, False  # renewing reauthorizes
			return _json_response(200, self._subscription_json(sub))
		raise GraphError(400, "BadRequest", f"Resource not found for the segment in {method} {path}.")

	def _resolve_folder(self, ref: str) -> str:
		if ref in self.folders:
			return ref
		for folder in self.folders.values():
			if folder.get("_wellKnown") == ref.lower():
				return folder["id"]
		if ref.lower() == "msgfolderroot":
			return self.root_id
		raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")

	def _resolve_message(self, ref: str) -> Message:
		message = self.messages.get(ref)
		if message is None:
			for m in self.messages.values():
				if self._rest_id(m) == ref:
					return m
			raise GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.")
		return message

	@staticmethod
	def _rest_id(message: Message) -> str:
		return f"rest-{message.folder_id[-6:]}-{message.id}"

	def _folder_json(self, folder_id: str) -> dict:
		folder = self.folders[folder_id]
		children = [f for f in self.folders.values() if f["parentFolderId"] == folder_id]
		in_folder = [m for m in self.messages.values() if m.folder_id == folder_id]
		return {
			"id": folder_id,
			"displayName": folder["displayName"],
			"parentFolderId": folder["parentFolderId"],
			"childFolderCount": len(children),
			"unreadItemCount": sum(not m.is_read for m in in_folder),
			"totalItemCount": len(in_folder),
			"sizeInBytes": sum(len(m.mime) for m in in_folder),
			"isHidden": False,
		}

	def _folder_list(self, parent_id: str, query, path):
		items = [
			self._folder_json(f["id"]) for f in self.folders.values() if f["parentFolderId"] == parent_id
		]
		return self._paged(items, query, path)

	def _paged(self, items: list[dict], query, path, default_top: int = DEFAULT_PAGE):
		top, skip = int(query.get("$top") or default_top), int(query.get("$skip") or 0)
		page = {"value": items[skip : skip + top]}
		if skip + top < len(items):
			rest = {k: v for k, v in query.items() if k != "$skip"}
			rest["$skip"] = str(skip + top)
			page["@odata.nextLink"] = f"{self.api_base}{path}?" + "&".join(
				f"{k}={quote(v, safe='$,:()')}" for k, v in rest.items()
			)
		return _json_response(200, page)

	def _message_json(self, m: Message, select: list[str] | None, immutable: bool) -> dict:
		full = {
			"id": m.id if immutable else self._rest_id(m),
			"receivedDateTime": format_time(m.received),
			"lastModifiedDateTime": format_time(m.modified or m.received),
			"parentFolderId": m.folder_id,
			"conversationId": m.conversation_id,
			"categories": list(m.categories),
			"isRead": m.is_read,
			"subject": m.mime.split(b"Subject: ", 1)[-1].split(b"\r\n", 1)[0].decode(errors="replace"),
		}
		if select:
			return {k: v for k, v in full.items() if k in select or k == "id"}
		return full

	def _message_list(self, folder_id, query, immutable):
		clauses = _parse_filter(
			query.get("$filter", ""), allowed=("categories", "receivedDateTime", "lastModifiedDateTime")
		)
		select = query["$select"].split(",") if query.get("$select") else None
		items = [m for m in self.messages.values() if m.folder_id == folder_id and _matches(m, clauses)]
		items.sort(key=lambda m: (m.received, m.id), reverse=True)  # Graph's default: newest first
		return self._paged(
			[self._message_json(m, select, immutable) for m in items],
			query,
			f"{self._root}/mailFolders/{quote(folder_id)}/messages",
		)

	def _delta(self, folder_id, query, prefer, immutable):
		size = int(prefer.get("odata.maxpagesize") or DEFAULT_PAGE)
		self.page_sizes.append(size)
		if "$skiptoken" in query or "$deltatoken" in query:
			state = _unpack(query.get("$skiptoken") or query.get("$deltatoken"))
			if state is None or state.get("g") != self.generation or state.get("f") != folder_id:
				raise GraphError(
					410,
					"SyncStateNotFound",
					"The sync state generation is not found. Please restart the sync by querying without the state token.",
				)
			if "$deltatoken" in query:
				state = {**state, "since": state["upto"], "upto": self.seq, "after": None}
		else:
			clauses = _parse_filter(query.get("$filter", ""), allowed=("receivedDateTime",))
			select = query["$select"].split(",") if query.get("$select") else None
			state = {
				"g": self.generation,
				"f": folder_id,
				"flt": clauses,
				"sel": select,
				"since": None,
				"upto": self.seq,
				"after": None,
			}
		since, upto, after = state["since"], state["upto"], state["after"]
		found = [
			m
			for m in self.messages.values()
			if m.folder_id == folder_id
			and (since is None or m.seq > since)
			and m.seq <= upto
			and _matches(m, state["flt"])
		]
		if state["flt"] and since is None and len(found) > self.delta_filter_cap:
			found.sort(key=lambda m: (m.received, m.id), reverse=True)
			found = found[: self.delta_filter_cap]  # the rest of the folder is silently left out
		entries: list[tuple[tuple[int, str], Message | dict]] = [((m.seq, m.id), m) for m in found]
		if since is not None:
			listed = {key[1] for key, _ in entries}
			for seq, fid, message_id in self.removals:
				if fid == folder_id and since < seq <= upto and message_id not in listed:
					gone = self.messages.get(message_id)
					shown = message_id if immutable or gone is None else self._rest_id(gone)
					entries.append(
						(
							(seq, message_id),
							{
								"@odata.type": "#microsoft.graph.message",
								"id": shown,
								"@removed": {"reason": "deleted"},
							},
						)
					)
		entries.sort(key=lambda e: e[0])
		if after is not None:
			entries = [e for e in entries if list(e[0]) > list(after)]
		page, rest = entries[:size], entries[size:]
		body = {
			"@odata.context": f"{self.api_base}/$metadata#Collection(message)",
			"value": [
				self._message_json(e, state["sel"], immutable) if isinstance(e, Message) else e for _, e in page
			],
		}
		link = f"{self.api_base}{self._root}/mailFolders/{quote(folder_id)}/messages/delta"
		if rest:
			body["@odata.nextLink"] = f"{link}?$skiptoken={_pack({**state, 'after': list(page[-1][0])})}"
		else:
			body["@odata.deltaLink"] = f"{link}?$deltatoken={_pack({**state, 'after': None})}"
		return _json_response(200, body, {"Preference-Applied": f"odata.maxpagesize={size}"})

	def _check_expiration(self, value):
		when = parse_time(value) if value else None
		if when is None or when > _now() + dt.timedelta(minutes=MAX_SUBSCRIPTION_MINUTES) or when < _now():
			raise GraphError(
				400, "ExtensionError", "Subscription expiration can only be 10070 minutes in the future."
			)

	def _subscribe(self, data: dict):
		for key in ("changeType", "notificationUrl", "resource", "expirationDateTime"):
			if not data.get(key):
				raise GraphError(400, "InvalidRequest", f"{key} is required.")
		self._check_expiration(data["expirationDateTime"])
		token = self._caller
		delegate = token is not None and token.roles is None and token.user not in ("", self.address.lower())
		if delegate and re.match(r"/?users/", data["resource"], re.IGNORECASE):
			# Mail.Read.Shared "doesn't support subscribing to change notifications on items in shared or
			# delegated folders" (Microsoft Graph docs, outlook-share-messages-folders).
			raise GraphError(
				403,
				"ExtensionError",
				"Operation: Create; Exception: [Status Code: Forbidden; Reason: Access is denied. Check credentials "
				"and try again.]",
			)
		if self.validate_notification_urls:
			self.lock.release()  # the receiver may call back into us; don't hold the lock over HTTP
			try:
				self._validate_notification_url(data["notificationUrl"])
				if data.get("lifecycleNotificationUrl"):  # Graph validates both endpoints
					self._validate_notification_url(data["lifecycleNotificationUrl"])
			finally:
				self.lock.acquire()
		sub = Subscription(
			secrets.token_hex(4) + "-sub-" + secrets.token_hex(6),
			data["resource"],
			data["changeType"],
			data["notificationUrl"],
			data.get("clientState", ""),
			data["expirationDateTime"],
			data.get("lifecycleNotificationUrl", ""),
		)
		self.subscriptions[sub.id] = sub
		return _json_response(201, self._subscription_json(sub))

	def _subscription_json(self, sub: Subscription) -> dict:
		return {
			"@odata.context": f"{self.api_base}/$metadata#subscriptions/$entity",
			"id": sub.id,
			"resource": sub.resource,
			"changeType": sub.change_type,
			"clientState": sub.client_state,
			"notificationUrl": sub.notification_url,
			"expirationDateTime": sub.expiration,
			"applicationId": self.client_id,
			"creatorId": self.user_id,
			"latestSupportedTlsVersion": "v1_2",
		}

	@staticmethod
	def _select(item: dict, query) -> dict:
		if not query.get("$select"):
			return item
		keep = set(query["$select"].split(",")) | {"id"}
		return {k: v for k, v in item.items() if k in keep}


# -- webhook receiver (plain HTTP, for subscription tests) ---------------------------------------------------


class WebhookReceiver:
	"""An HTTP endpoint on 127.0.0.1: `respond(query, body) -> (status, text)` decides each answer."""

	def __init__(self, respond: Callable[[dict, bytes], tuple[int, str]]):
		self.respond = respond
		self.received: list[tuple[dict, bytes]] = []
		receiver = self

		class Handler(BaseHTTPRequestHandler):
			def do_POST(self):
				parts = urlsplit(self.path)
				query = {k: v[0] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
				body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
				receiver.received.append((query, body))
				status, text = receiver.respond(query, body)
				data = text.encode()
				self.send_response(status)
				self.send_header("Content-Type", "text/plain")
				self.send_header("Content-Length", str(len(data)))
				self.end_headers()
				self.wfile.write(data)

			def log_message(self, *args):
				pass

		self._server = ThreadingHTTPServer((HOST, 0), Handler)
		self._server.daemon_threads = True
		threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True).start()

	@property
	def url(self) -> str:
		return f"http://{HOST}:{self._server.server_address[1]}/api/method/email_sync.webhooks.microsoft"

	def stop(self) -> None:
		self._server.shutdown()
		self._server.server_close()


# -- HTTP plumbing -------------------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
	daemon_threads = True
	emulator: GraphEmulator

	def __init__(self, address, handler, context: ssl.SSLContext):
		self.context = context
		super().__init__(address, handler)

	def handle_error(self, request, client_address):
		pass  # clients that reject our certificate (a test of exactly that) or hang up are not errors here

	def get_request(self):
		sock, addr = self.socket.accept()
		# The TLS handshake happens on the handler's thread, so a stuck client cannot block accept().
		return self.context.wrap_socket(sock, server_side=True, do_handshake_on_connect=False), addr


class _Handler(BaseHTTPRequestHandler):
	protocol_version = "HTTP/1.1"
	timeout = 10
	disable_nagle_algorithm = (
		True  # headers and body go out in two writes: without this, 40 ms stalls per request
	)
	server: _Server

	def _serve(self):
		length = int(self.headers.get("Content-Length") or 0)
		body = self.rfile.read(length) if length else b""
		emulator = self.server.emulator
		fault = emulator.transport.take(self.path)
		try:
			status, headers, payload = emulator.handle(self.command, self.path, self.headers, body)
		except Exception:  # noqa: BLE001 - an emulator bug: answer 500 with it rather than drop the connection
			import traceback

			status, headers, payload = 500, {"Content-Type": "text/plain"}, traceback.format_exc().encode()
		if fault:
			break_request(self, fault, status, headers, payload, emulator.transport.stall_seconds)
			return
		self.send_response(status)
		for key, value in headers.items():
			self.send_header(key, value)
		self.send_header("Content-Length", str(len(payload)))
		self.end_headers()
		if self.command != "HEAD":
			self.wfile.write(payload)

	do_GET = do_POST = do_PATCH = do_DELETE = _serve

	def log_message(self, *args):
		pass


def _post_json(url: str, body: dict) -> int:
	request = urllib.request.Request(url, json.dumps(body).encode(), {"Content-Type": "application/json"}, method="POST")
	try:
		with urllib.request.urlopen(request, timeout=5) as response:
			return response.status
	except urllib.error.HTTPError as e:
		return e.code


def _json_response(status: int, data: dict, headers: dict | None = None):
	return (
		status,
		{"Content-Type": "application/json; charset=utf-8", **(headers or {})},
		json.dumps(data).encode(),
	)


def _token_error(status: int, error: str, code: int, text: str):
	return _json_response(
		status,
		{
			"error": error,
			"error_description": f"AADSTS{code}: {text}\r\nTrace ID: 7e57-{code}\r\nCorrelation ID: c0ffee\r\nTimestamp: {format_time(_now())}",
			"error_codes": [code],
			"timestamp": format_time(_now()),
			"trace_id": f"7e57-{code}",
			"correlation_id": "c0ffee",
		},
	)


def _prefer(value: str) -> dict:
	"""Prefer header preferences, lower-cased names: {"idtype": '"ImmutableId"', "odata.maxpagesize": "50"}."""
	out = {}
	for part in re.split(r",(?=(?:[^\"]*\"[^\"]*\")*[^\"]*$)", value or ""):
		name, _, val = part.strip().partition("=")
		if name:
			out[name.strip().lower()] = val.strip()
	return out


def _parse_filter(text: str, allowed: tuple[str, ...]) -> list[list[str]]:
	"""OData $filter clauses joined by 'and': ["categories", "eq", X] or [prop, "ge"|"gt"|"lt", time]."""
	clauses = []
	if not text.strip():
		return clauses
	for part in re.split(r"\s+and\s+", text.strip()):
		match = re.fullmatch(r"categories/any\((\w+):\1 eq '((?:[^']|'')*)'\)", part.strip())
		if match:
			clauses.append(["categories", "eq", match.group(2).replace("''", "'")])
			continue
		match = re.fullmatch(r"(receivedDateTime|lastModifiedDateTime) (ge|gt|lt) (\S+)", part.strip())
		if match:
			clauses.append([match.group(1), match.group(2), match.group(3)])
			continue
		raise GraphError(
			400, "ErrorInvalidUrlQueryFilter", f"The query filter contains one or more invalid nodes: {part}"
		)
	for clause in clauses:
		if clause[0] not in allowed:
			raise GraphError(
				400, "ErrorInvalidUrlQueryFilter", f"Filtering on {clause[0]} is not supported here."
			)
	return clauses


def _matches(m: Message, clauses: list[list[str]]) -> bool:
	for prop, op, value in clauses:
		if prop == "categories":
			if not any(c.lower() == value.lower() for c in m.categories):
				return False
			continue
		have = m.received if prop == "receivedDateTime" else (m.modified or m.received)
		want = parse_time(value)
		if (op == "ge" and have < want) or (op == "gt" and have <= want) or (op == "lt" and have >= want):
			return False
	return True


def _pack(state: dict) -> str:
	return _b64(json.dumps(state, separators=(",", ":")))


def _unpack(token: str | None) -> dict | None:
	try:
		return json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
	except (ValueError, TypeError):
		return None


def _b64_bytes(data: bytes) -> str:
	return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
	return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64(text: str) -> str:
	return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def parse_time(value: str) -> dt.datetime:
	return (
		dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
		.astimezone(dt.timezone.utc)
		.replace(tzinfo=None)
	)


def format_time(value: dt.datetime) -> str:
	return value.replace(microsecond=0).isoformat() + "Z"


def _now() -> dt.datetime:
	return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)


def _monotonic() -> float:
	import time

	return time.monotonic()
