"""Microsoft identity platform (Entra ID / Microsoft account) tokens for the Microsoft provider, via msal.

Pure helpers, no Frappe: sign in, and refresh tokens. `begin_sign_in` / `finish_sign_in` are msal's
authorization code flow with PKCE and a nonce (the flow dict is kept between the two), the only sign-in.
`AppTokenManager` gets tokens for the app itself (client credentials, with a secret or a certificate), for
company mailboxes read without a personal sign-in.

Authorities: `{auth_base}/{tenant}` where auth_base defaults to https://login.microsoftonline.com and tenant
is a directory (tenant) id or domain, "organizations" (work and school accounts), "consumers" (Outlook.com,
Hotmail, Live) or "common" (both; the default when empty).

msal checks an authority before it uses it: it always fetches
`{authority}/v2.0/.well-known/openid-configuration`
(over HTTPS only, certificates verified) and, for hosts it does not know, also asks login.microsoftonline.com
("instance discovery") whether the host is a Microsoft cloud. Hosts other than Microsoft's own (a local
emulator, a
proxy) therefore get `instance_discovery=False`; the OpenID configuration is still fetched from them.
"""

from __future__ import annotations

import dataclasses
import re
import time
from urllib.parse import urlsplit

from email_sync.providers.base import (
	AccessRevoked,
	AccountClosed,
	AuthenticationFailed,
	ConnectionFailed,
	MissingScopes,
	OAuthTokens,
	ProviderError,
	Secret,
	masked,
)

DEFAULT_AUTH_BASE = "https://login.microsoftonline.com"
DEFAULT_TENANT = "common"
MAIL_READ = "https://graph.microsoft.com/Mail.Read"
USER_READ = "https://graph.microsoft.com/User.Read"
# Asked for when refreshing or redeeming a code. Entra returns a Graph token carrying every Graph permission
# the user consented to (User.Read included), so asking for Mail.Read alone keeps refreshes working for old
# grants.
TOKEN_SCOPES = [MAIL_READ]
# Asked for on the consent screen. User.Read lets connect() read the mailbox address from GET /me.
SIGN_IN_SCOPES = ["offline_access", MAIL_READ, USER_READ, "openid", "email", "profile"]
# A shared mailbox read through a person's own sign-in: the delegated Mail.Read.Shared as well, which lets
# /users/{shared address} through for someone the Exchange admin gave access to that mailbox.
MAIL_READ_SHARED = "https://graph.microsoft.com/Mail.Read.Shared"
SHARED_TOKEN_SCOPES = [MAIL_READ, MAIL_READ_SHARED]
SHARED_SIGN_IN_SCOPES = [*SIGN_IN_SCOPES, MAIL_READ_SHARED]
SHARED_SCOPE_FIX = (
	"Click Reconnect and sign in again to grant Mail.Read.Shared. If the consent screen does not ask for it, add "
	"the delegated Microsoft Graph permission Mail.Read.Shared to the Email Sync app in the Entra admin center "
	"(API permissions), with admin consent if users may not consent themselves."
)
# Reading the mailbox over IMAP (XOAUTH2) takes an Outlook token, not a Graph one.
IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
IMAP_SIGN_IN_SCOPES = ["offline_access", IMAP_SCOPE, "openid", "email", "profile"]
EXPIRY_MARGIN = 120  # seconds: an access token this close to expiry is refreshed before use
# App-only access asks for the application permissions granted to the app (Mail.Read, with admin consent).
GRAPH_DEFAULT_SCOPE = "https://graph.microsoft.com/.default"
MULTI_TENANT_AUTHORITIES = {"", "common", "organizations", "consumers"}
APP_FIX = (
	"Check the company mailbox settings in Email Sync Settings: the directory (tenant) id, the Microsoft client "
	"id, and the client secret or certificate of that app registration (secrets and certificates expire: add a "
	"new one in the Entra admin center under App registrations > Certificates & secrets)."
)
APP_PERMISSION_FIX = (
	"In the Entra admin center, give the Email Sync app the Microsoft Graph application permission Mail.Read "
	"(API permissions > Add a permission > Application permissions) and click Grant admin consent. If an "
	"application access policy or RBAC for Applications limits the app to some mailboxes, add this mailbox to "
	"its scope."
)

# Hosts msal knows as Microsoft clouds (as msal.authority.WELL_KNOWN_AUTHORITY_HOSTS; copied for older msal).
MICROSOFT_LOGIN_HOSTS = frozenset(
	{
		"login.microsoftonline.com",
		"login.microsoft.com",
		"login.windows.net",
		"sts.windows.net",
		"login.chinacloudapi.cn",
		"login.partner.microsoftonline.cn",
		"login.microsoftonline.de",
		"login-us.microsoftonline.com",
		"login.microsoftonline.us",
		"login.usgovcloudapi.net",
	}
)

# Entra error codes (AADSTSnnnnn) that change what the user has to do.
CONSENT_CODES = {65001, 65004, 650052, 650057}  # consent missing or declined
CLOSED_CODES = {50057}  # the user account is disabled
CLIENT_CODES = {7000215, 7000222, 700016, 7000218, 700027}  # wrong or expired client secret, unknown app


def authority_url(tenant: str = "", auth_base: str | None = None) -> str:
	return f"{(auth_base or DEFAULT_AUTH_BASE).rstrip('/')}/{(tenant or DEFAULT_TENANT).strip().strip('/')}"


def build_app(
	client_id: str,
	client_secret: str | dict,
	tenant: str = "",
	auth_base: str | None = None,
	*,
	verify: bool | str = True,
	timeout: float = 30.0,
):
	"""An msal ConfidentialClientApplication for the authority; fetching its OpenID configuration may fail.

	`client_secret`: the secret, or msal's certificate credential ({"private_key", "thumbprint", ...})."""
	import msal
	import requests

	# A local on the way to any error raised here: never a plain str or dict that a traceback would print.
	client_secret = masked(client_secret) if isinstance(client_secret, dict) else Secret(client_secret)

	authority = authority_url(tenant, auth_base)
	host = (urlsplit(authority).hostname or "").lower()
	try:
		return msal.ConfidentialClientApplication(
			client_id,
			client_credential=client_secret,
			authority=authority,
			# Not verify=/timeout=: msal would set them on a requests.Session, where REQUESTS_CA_BUNDLE
			# overrides Session.verify (psf/requests#3829). HttpClient passes them on every request instead.
			http_client=HttpClient(verify=verify, timeout=timeout),
			# regional endpoints are for app-only tokens; never guess from the environment
			azure_region=False,
			# Unknown hosts (emulators, proxies) would otherwise be checked against login.microsoftonline.com.
			instance_discovery=None if host in MICROSOFT_LOGIN_HOSTS else False,
		)
	except requests.exceptions.SSLError as e:
		raise _tls_error(authority, e) from None
	except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
		raise ConnectionFailed(
			f"Could not reach Microsoft's sign-in service at {authority}: {_reason(e)}.",
			fix="Check that this site can reach login.microsoftonline.com over HTTPS, then try again.",
		) from None
	except ValueError as e:
		# msal: the authority's OpenID configuration could not be fetched (unknown tenant, malformed URL).
		raise ProviderError(
			f"Microsoft does not accept the sign-in authority {authority}: {_first_line(str(e))}",
			code="microsoft_auth_error",
			fix='Check the tenant on the account: a directory (tenant) id or domain, "organizations" for work '
			'and school accounts, or "consumers" for Outlook.com, Hotmail and Live.',
		) from None
	except Exception as e:  # noqa: BLE001 - msal raises bare exceptions for 5xx answers during discovery
		raise ConnectionFailed(f"Microsoft's sign-in service at {authority} failed: {_reason(e)}.") from None


RESERVED_SCOPES = frozenset({"openid", "profile", "offline_access"})  # msal adds these itself, and refuses them


def begin_sign_in(
	client_id: str,
	client_secret: str,
	redirect_uri: str,
	state: str,
	tenant: str = "",
	auth_base: str | None = None,
	*,
	login_hint: str | None = None,
	scopes: list[str] | None = None,
	verify: bool | str = True,
	timeout: float = 30.0,
) -> dict:
	"""Start msal's authorization code flow with PKCE: the returned flow's "auth_uri" is the consent page. Keep
	the whole flow (it holds the code verifier and the nonce) until the callback, then call finish_sign_in."""
	app = build_app(client_id, client_secret, tenant, auth_base, verify=verify, timeout=timeout)
	wanted = [s for s in scopes or SIGN_IN_SCOPES if s not in RESERVED_SCOPES]
	try:
		flow = _call(
			authority_url(tenant, auth_base),
			lambda: app.initiate_auth_code_flow(
				wanted, redirect_uri=redirect_uri, state=state, prompt="select_account", login_hint=login_hint
			),
		)
	finally:
		app.http_client.close()
	return masked(flow)


def finish_sign_in(
	flow: dict,
	code: str,
	client_id: str,
	client_secret: str,
	tenant: str = "",
	auth_base: str | None = None,
	*,
	verify: bool | str = True,
	timeout: float = 30.0,
	scopes: list[str] | None = None,
) -> OAuthTokens:
	"""Redeem the code from the redirect with the flow begin_sign_in returned (PKCE verifier, nonce check)."""
	client_secret, code, flow = Secret(client_secret), Secret(code), masked(flow)
	app = build_app(client_id, client_secret, tenant, auth_base, verify=verify, timeout=timeout)

	def redeem() -> dict:
		try:
			return app.acquire_token_by_auth_code_flow(
				dict(flow), {"code": code, "state": flow.get("state")}, scopes=scopes or TOKEN_SCOPES
			)
		except (ValueError, RuntimeError) as e:  # msal: the flow does not fit the answer (state, nonce)
			return {"error": "invalid_request", "error_description": str(e)}

	try:
		result = _checked(_call(authority_url(tenant, auth_base), redeem), "finishing the sign-in")
	finally:
		app.http_client.close()
	return _apply(OAuthTokens(client_id=client_id, client_secret=client_secret, tenant=tenant), result)


def auth_error(result: dict, doing: str) -> ProviderError:
	"""The ProviderError for an msal error result: revoked grants, missing consent, bad app credentials..."""
	error = str(result.get("error") or "")
	codes = {int(c) for c in result.get("error_codes") or [] if str(c).isdigit()}
	codes |= {int(c) for c in re.findall(r"AADSTS(\d+)", str(result.get("error_description") or ""))}
	words = plain_description(result.get("error_description")) or error or "unknown error"
	message = f"Microsoft refused {doing}: {words}"
	if codes & CONSENT_CODES or result.get("suberror") == "consent_required" or error == "invalid_scope":
		return MissingScopes(message)
	if codes & CLOSED_CODES:
		return AccountClosed(message)
	if error == "invalid_client" or codes & CLIENT_CODES:
		return AuthenticationFailed(
			message,
			fix="Check the Microsoft client id and client secret in Email Sync's settings (secrets expire; create "
			"a new one in the Entra admin center if needed), then reconnect the account.",
		)
	if error in ("invalid_grant", "interaction_required"):
		return AccessRevoked(message)
	if error in ("temporarily_unavailable", "server_error"):
		return ConnectionFailed(
			message, fix="Microsoft's sign-in service has a problem; the sync tries again later."
		)
	return ProviderError(message, code="microsoft_auth_error")


def plain_description(description) -> str:
	"""Entra's error_description without the AADSTS prefix and the Trace/Correlation ID and Timestamp lines."""
	text = str(description or "")
	text = re.split(r"\s*(?:Trace ID|Correlation ID|Timestamp):", text, maxsplit=1)[0]
	codes = re.findall(r"AADSTS\d+", text)
	text = re.sub(r"AADSTS\d+:\s*", "", text)
	text = " ".join(text.split())
	if text and text[-1] not in ".!?":
		text += "."
	return f"{text} ({', '.join(codes)})" if codes else text


class HttpClient:
	"""The HTTP client msal uses: requests with `verify` and `timeout` passed on every call.

	A requests.Session's own `verify` loses to the REQUESTS_CA_BUNDLE / CURL_CA_BUNDLE environment variables
	(psf/requests#3829), so a CA bundle set on the session would be silently ignored where they are set.
	"""

	def __init__(self, verify: bool | str = True, timeout: float = 30.0):
		import requests

		self.verify, self.timeout = verify, timeout
		self.session = requests.Session()
		adapter = requests.adapters.HTTPAdapter(
			max_retries=1
		)  # as msal's own client: one retry on connect errors
		self.session.mount("https://", adapter)
		self.session.mount("http://", adapter)

	def _options(self, kwargs: dict) -> dict:
		kwargs.setdefault("verify", self.verify)
		kwargs.setdefault("timeout", self.timeout)
		return kwargs

	def get(self, url, **kwargs):
		return self.session.get(url, **self._options(kwargs))

	def post(self, url, **kwargs):
		return self.session.post(url, **self._options(kwargs))

	def close(self) -> None:
		self.session.close()


class TokenManager:
	"""Keeps `config.oauth.access_token` fresh with msal, handing rotated tokens to config.on_tokens_refreshed.

	The one refresh path for Microsoft sign-ins: subclasses change only `scopes` (the resource the token is
	for) and `_checked` (how a refusal reads)."""

	scopes: tuple[str, ...] = tuple(TOKEN_SCOPES)

	def __init__(self, config, *, verify: bool | str = True):
		self.config = config
		self.verify = verify
		self._app = None

	@property
	def tokens(self) -> OAuthTokens:
		if self.config.oauth is None or not self.config.oauth.client_id:
			raise AccessRevoked(
				f"No Microsoft sign-in is stored for {self.config.address or 'this account'}.",
				fix="Click Connect (or Reconnect) on the account and sign in with Microsoft.",
			)
		return self.config.oauth

	def access_token(self) -> str:
		tokens = self.tokens
		if tokens.access_token and (not tokens.expires_at or tokens.expires_at - EXPIRY_MARGIN > time.time()):
			return tokens.access_token
		return self.refresh()

	def refresh(self) -> str:
		tokens = self.tokens
		if not tokens.refresh_token:
			raise AccessRevoked(
				f"The Microsoft sign-in for {self.config.address or 'this account'} has no refresh token."
			)
		app = self.app()
		result = _call(
			authority_url(tokens.tenant, self.config.auth_base),
			lambda: app.acquire_token_by_refresh_token(tokens.refresh_token, scopes=list(self.scopes)),
		)
		_apply(tokens, self._checked(result))
		if self.config.on_tokens_refreshed:
			self.config.on_tokens_refreshed(dataclasses.replace(tokens, scopes=list(tokens.scopes)))
		return tokens.access_token

	def _checked(self, result: dict) -> dict:
		return _checked(result, "refreshing the sign-in")

	def app(self):
		if self._app is None:
			tokens = self.tokens
			self._app = build_app(
				tokens.client_id,
				tokens.client_secret,
				tokens.tenant,
				self.config.auth_base,
				verify=self.verify,
				timeout=self.config.timeout,
			)
		return self._app

	def drop(self) -> None:
		"""Forget the tokens held in memory (config.oauth); the caller deletes its stored copy."""
		if self.config.oauth is not None:
			self.config.oauth.access_token = ""
			self.config.oauth.refresh_token = ""
			self.config.oauth.expires_at = 0.0
		self.close()

	def close(self) -> None:
		app, self._app = self._app, None
		if app is not None:
			try:
				app.http_client.close()
			except Exception:  # noqa: BLE001, S110 - closing must never fail a sync
				pass


class SharedTokenManager(TokenManager):
	"""A person's sign-in that reads a shared mailbox: refreshes ask for Mail.Read.Shared too, so a grant
	without it is refused here, in words that say which permission is missing."""

	scopes = tuple(SHARED_TOKEN_SCOPES)

	def _checked(self, result: dict) -> dict:
		try:
			return super()._checked(result)
		except MissingScopes as e:
			e.message = f"{e.message} Reading a shared mailbox through a sign-in needs Mail.Read.Shared."
			e.fix = SHARED_SCOPE_FIX
			raise


class AppTokenManager:
	"""Tokens for the app itself (OAuth client credentials): Microsoft 365 app-only access to company mailboxes.

	Same interface as TokenManager (access_token, refresh, drop, close). Nothing is stored: a token lasts about
	an hour and msal keeps it in memory; refresh() starts over with a new msal app, so a token Graph refused is
	never handed out again.
	"""

	def __init__(self, config, *, verify: bool | str = True):
		self.config = config
		self.verify = verify
		self._app = None
		self._token = Secret("")
		self._expires_at = 0.0

	@property
	def credentials(self):
		creds = self.config.app
		if creds is None or not creds.client_id or not (creds.client_secret or creds.private_key):
			raise AuthenticationFailed(
				"App access for company mailboxes is not set up: the Microsoft client id and a client secret or "
				"certificate are needed.",
				fix=APP_FIX,
			)
		if (creds.tenant or "").strip().lower() in MULTI_TENANT_AUTHORITIES:
			raise AuthenticationFailed(
				"App access needs the directory (tenant) id of your Microsoft 365 organization, not "
				f'"{creds.tenant or "common"}": an app signs in to one organization.',
				fix="Enter the Directory (tenant) ID shown on the app registration's Overview page in Email Sync "
				"Settings.",
			)
		return creds

	def access_token(self) -> str:
		if self._token and self._expires_at - EXPIRY_MARGIN > time.time():
			return self._token
		return self.refresh()

	def refresh(self) -> str:
		self.close()  # a fresh msal app: its cache would hand out the token Graph just refused
		creds = self.credentials
		app = self.app()
		result = _call(
			authority_url(creds.tenant, self.config.auth_base),
			lambda: app.acquire_token_for_client(scopes=[GRAPH_DEFAULT_SCOPE]),
		)
		try:
			result = _checked(result, f"the app's sign-in to {creds.tenant}")
		except ProviderError as e:
			if e.code in ("auth_failed", "microsoft_auth_error", "missing_scopes"):
				e.fix = APP_FIX if e.code != "missing_scopes" else APP_PERMISSION_FIX
			raise
		self._token = Secret(result["access_token"])
		self._expires_at = time.time() + float(result.get("expires_in") or 3600)
		return self._token

	def app(self):
		if self._app is None:
			creds = self.credentials
			credential = creds.client_secret
			if creds.private_key:
				credential = certificate_credential(creds.certificate, creds.private_key)
			try:
				self._app = build_app(
					creds.client_id, credential, creds.tenant, self.config.auth_base,
					verify=self.verify, timeout=self.config.timeout,
				)  # fmt: skip
			except ProviderError as e:
				if e.code == "microsoft_auth_error":
					e.fix = APP_FIX
				raise
		return self._app

	def drop(self) -> None:
		self._token, self._expires_at = Secret(""), 0.0
		self.close()

	def close(self) -> None:
		app, self._app = self._app, None
		if app is not None:
			try:
				app.http_client.close()
			except Exception:  # noqa: BLE001, S110 - closing must never fail a sync
				pass


def certificate_credential(certificate_pem: str, private_key_pem: str) -> dict:
	"""msal's credential for a certificate: the private key, the certificate's SHA-1 thumbprint (which Entra
	looks the certificate up by) and the certificate itself."""
	from cryptography import x509
	from cryptography.hazmat.primitives import hashes

	certificate_pem, private_key_pem = pem(certificate_pem), Secret(pem(private_key_pem))
	try:
		certificate = x509.load_pem_x509_certificate(certificate_pem.encode())
	except ValueError:
		raise AuthenticationFailed(
			"The certificate for app access is not a PEM certificate (-----BEGIN CERTIFICATE-----).",
			fix="Paste the certificate uploaded to the app registration (the .cer or .pem file) in Email Sync "
			"Settings, and its private key in the key field.",
		) from None
	return {
		"private_key": private_key_pem,
		"thumbprint": certificate.fingerprint(hashes.SHA1()).hex().upper(),  # SHA-1: how Entra names a certificate
		"public_certificate": certificate_pem,
	}


def pem(text: str) -> str:
	"""The first PEM block in `text`, with its line breaks restored: a key pasted into a password field (a
	single-line input) arrives as one line, which no PEM reader accepts."""
	match = re.search(r"(-----BEGIN ([A-Z0-9 ]+)-----)(.*?)(-----END \2-----)", text or "", re.DOTALL)
	if not match:
		return (text or "").strip()
	body = re.sub(r"\s+", "", match.group(3))
	lines = [body[i : i + 64] for i in range(0, len(body), 64)]
	return "\n".join([match.group(1), *lines, match.group(4)]) + "\n"


def _checked(result: dict, doing: str) -> dict:
	"""msal's result, its tokens as Secrets (it stays a local while the caller goes on); raises on an error."""
	if "error" in result:
		raise auth_error(result, doing)
	return masked(result)


def _apply(tokens: OAuthTokens, result: dict) -> OAuthTokens:
	tokens.access_token = result["access_token"]
	tokens.expires_at = time.time() + float(result.get("expires_in") or 3600)
	tokens.refresh_token = (
		result.get("refresh_token") or tokens.refresh_token
	)  # Entra rotates it on every use
	if result.get("scope"):
		tokens.scopes = str(result["scope"]).split()
	return tokens


def _call(authority: str, request) -> dict:
	import requests

	try:
		return request()
	except requests.exceptions.SSLError as e:
		raise _tls_error(authority, e) from None
	except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as e:
		raise ConnectionFailed(
			f"Could not reach Microsoft's sign-in service at {authority}: {_reason(e)}."
		) from None
	except ProviderError:
		raise
	except Exception as e:  # noqa: BLE001 - msal raises on 5xx answers and on non-JSON bodies
		raise ConnectionFailed(f"Microsoft's sign-in service at {authority} failed: {_reason(e)}.") from None


def _tls_error(where: str, e: Exception) -> ConnectionFailed:
	err = ConnectionFailed(
		f"The certificate of {where} is not trusted: {_reason(e)}.",
		fix="Check the system's CA certificates (or the CA bundle configured for Microsoft) on this site.",
	)
	err.transient = False
	return err


def _reason(e: Exception) -> str:
	text = str(e) or type(e).__name__
	return _first_line(text)[:300]


def _first_line(text: str) -> str:
	return (text.strip().splitlines() or [""])[0]
