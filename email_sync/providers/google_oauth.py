"""Google OAuth 2.0 for the Gmail provider: the sign-in (consent URL and code exchange) and token revocation.

No Frappe. The sign-in is google-auth-oauthlib's Flow (PKCE with S256, and the caller's state): begin_sign_in
gives the consent URL and the verifier to keep, finish_sign_in redeems the code with it. Access tokens are refreshed by
google-auth alone (its Credentials.refresh): inside the Gmail provider's API client, and through `refresh_tokens`
for IMAP's XOAUTH2; `refresh_error` turns its failures into the provider's errors.

Endpoints: the consent page is https://accounts.google.com/o/oauth2/v2/auth, the token and revocation endpoints are
https://oauth2.googleapis.com/token and /revoke. An `auth_base` (tests: a local emulator) replaces both hosts:
<auth_base>/o/oauth2/v2/auth, <auth_base>/token and <auth_base>/revoke.
"""

from __future__ import annotations

import contextlib
import os
import time
from urllib.parse import urlsplit

import requests

from email_sync.providers.base import (
	AccessRevoked,
	AuthenticationFailed,
	ConnectionFailed,
	MailboxNotHosted,
	MissingScopes,
	OAuthTokens,
	ProviderError,
	Secret,
	masked,
)

AUTH_URI = "https://accounts.google.com/o/oauth2/v2/auth"
TOKEN_BASE = "https://oauth2.googleapis.com"
GMAIL_READONLY = "https://www.googleapis.com/auth/gmail.readonly"
# What Email Sync asks for: reading mail is all it does (the mailbox address comes from the Gmail profile).
SCOPES = (GMAIL_READONLY,)
# Any of these lets us read mail, so a token granted one of them is enough.
READ_SCOPES = frozenset(
	{GMAIL_READONLY, "https://www.googleapis.com/auth/gmail.modify", "https://mail.google.com/"}
)
# Reading Gmail over IMAP (XOAUTH2) needs full mail access: Google grants IMAP to no narrower scope.
MAIL_GOOGLE = "https://mail.google.com/"
IMAP_SCOPES = (MAIL_GOOGLE,)

RECONNECT = "Click Reconnect on the account and sign in with Google again."
# invalid_grant "Token has been expired or revoked." is also what an OAuth app in Testing gets after 7 days.
RECONNECT_OR_PUBLISH = (
	"If someone removed Email Sync's access, or changed the password, click Reconnect. If it keeps happening "
	"about a week after each connection, the Google OAuth app is in Testing mode, whose refresh tokens last 7 "
	"days: publish the OAuth app for production (Google Cloud Console > APIs & Services > OAuth consent screen "
	"> Publish app), then Reconnect."
)
CLIENT_FIX = (
	"Check the Google OAuth client ID and secret in Email Sync Settings (Google Cloud Console > APIs & Services > "
	"Credentials, an OAuth client of type Web application)."
)


def auth_uri(auth_base: str | None = None) -> str:
	return f"{auth_base.rstrip('/')}/o/oauth2/v2/auth" if auth_base else AUTH_URI


def token_uri(auth_base: str | None = None) -> str:
	return f"{(auth_base or TOKEN_BASE).rstrip('/')}/token"


def revoke_uri(auth_base: str | None = None) -> str:
	return f"{(auth_base or TOKEN_BASE).rstrip('/')}/revoke"


def begin_sign_in(
	client_id: str,
	client_secret: str,
	redirect_uri: str,
	state: str,
	*,
	login_hint: str | None = None,
	auth_base: str | None = None,
	scopes: tuple[str, ...] | list[str] = SCOPES,
) -> tuple[str, Secret]:
	"""(consent page URL, PKCE code verifier) from google-auth-oauthlib's Flow. Keep the verifier with `state`
	until the callback, then call finish_sign_in with it: the code Google returns is redeemable only with it.

	The Flow makes the verifier and sends its S256 challenge; access_type=offline and prompt=consent make Google
	return a refresh token every time (also on a reconnect); include_granted_scopes keeps whatever the user
	granted this client before."""
	if not client_id:
		raise ProviderError("No Google OAuth client ID is set.", code="oauth_not_configured", fix=CLIENT_FIX)
	flow = _flow(client_id, client_secret, redirect_uri, scopes, auth_base, state=state, autogenerate_code_verifier=True)
	options = {"access_type": "offline", "prompt": "consent", "include_granted_scopes": "true"}
	if login_hint:
		options["login_hint"] = login_hint
	with _loopback_http_allowed(auth_uri(auth_base)):
		url, _ = flow.authorization_url(**options)
	return url, Secret(flow.code_verifier)


def finish_sign_in(
	client_id: str,
	client_secret: str,
	code: str,
	redirect_uri: str,
	code_verifier: str,
	*,
	auth_base: str | None = None,
	timeout: float = 30.0,
	required_scopes: frozenset[str] = READ_SCOPES,
) -> OAuthTokens:
	"""Redeem the code from the consent redirect (after the caller checked `state`) with the sign-in's PKCE
	verifier, through the Flow's token request. Raises a ProviderError saying what to do on failure.

	`required_scopes`: any one of them must have been granted (IMAP access passes {MAIL_GOOGLE})."""
	# Locals on the way to any error raised here: never plain strings a traceback would print.
	client_secret, code, code_verifier = Secret(client_secret), Secret(code), Secret(code_verifier or "")
	if not client_id or not client_secret:
		raise ProviderError(
			"The Google OAuth client ID or secret is not set.", code="oauth_not_configured", fix=CLIENT_FIX
		)
	if not code_verifier:
		raise ProviderError(
			"This sign-in lost its PKCE verifier, so Google's code cannot be redeemed.",
			code="gmail_oauth_error",
			fix="Click Connect again and finish signing in within a few minutes.",
		)
	from oauthlib.oauth2.rfc6749.errors import OAuth2Error

	flow = _flow(client_id, client_secret, redirect_uri, None, auth_base, code_verifier=code_verifier)
	answer: dict = {}  # the token endpoint's status and JSON, for the error mapping (oauthlib keeps neither)
	flow.oauth2session.register_compliance_hook("access_token_response", lambda r: _keep_answer(answer, r))
	try:
		with _loopback_http_allowed(token_uri(auth_base)):
			data = masked(dict(flow.fetch_token(code=code, timeout=timeout)))
	except Warning as changed:  # oauthlib: Google granted other scopes than asked; checked below
		data = masked(dict(getattr(changed, "token", None) or {}))
	except requests.Timeout:
		raise ConnectionFailed(f"Google's token endpoint did not answer within {timeout:g} seconds.") from None
	except requests.RequestException as e:
		raise ConnectionFailed(
			f"Could not reach Google's token endpoint ({token_uri(auth_base)}): {_first_line(e)}.",
			fix="Check that this site can make outgoing HTTPS connections to oauth2.googleapis.com.",
		) from None
	except (OAuth2Error, ValueError) as e:  # Google's error answer, or one oauthlib could not read
		status = answer.get("status") or int(getattr(e, "status_code", 0) or 400)
		error = answer.get("data") or {"error": getattr(e, "error", ""), "error_description": _first_line(e)}
		raise token_error(status, error, exchanging=True) from None
	return _signed_in_tokens(client_id, client_secret, data, required_scopes)


def _flow(client_id, client_secret, redirect_uri, scopes, auth_base, **options):
	"""google-auth-oauthlib's Flow for this OAuth client, its endpoints at `auth_base` when set (tests)."""
	from google_auth_oauthlib.flow import Flow

	client = {
		"client_id": client_id,
		"client_secret": client_secret,
		"auth_uri": auth_uri(auth_base),
		"token_uri": token_uri(auth_base),
		"redirect_uris": [redirect_uri],
	}
	return Flow.from_client_config({"web": client}, scopes=list(scopes) if scopes else None, redirect_uri=redirect_uri, **options)


def _keep_answer(answer: dict, response):
	answer.update(status=response.status_code, data=masked(_json(response)))
	return response


@contextlib.contextmanager
def _loopback_http_allowed(url: str):
	"""oauthlib refuses endpoints without TLS; one on this machine (a local emulator) is allowed."""
	parts = urlsplit(url)
	loopback = parts.scheme == "http" and parts.hostname in ("127.0.0.1", "localhost", "::1")
	if not loopback or os.environ.get(INSECURE_TRANSPORT):
		yield
		return
	os.environ[INSECURE_TRANSPORT] = "1"
	try:
		yield
	finally:
		os.environ.pop(INSECURE_TRANSPORT, None)


INSECURE_TRANSPORT = "OAUTHLIB_INSECURE_TRANSPORT"


def _signed_in_tokens(client_id: str, client_secret: str, data: dict, required_scopes: frozenset[str]) -> OAuthTokens:
	access_token = data.get("access_token") or ""
	refresh_token = data.get("refresh_token") or ""
	if not access_token:
		raise ProviderError("Google answered the sign-in without an access token.", code="gmail_oauth_error")
	if not refresh_token:
		raise ProviderError(
			"Google did not hand out a refresh token, so Email Sync could not keep syncing after an hour.",
			code="no_refresh_token",
			fix="Remove Email Sync's access at https://myaccount.google.com/permissions, then connect again.",
		)
	scope = data.get("scope") or ""
	granted = scope.split() if isinstance(scope, str) else [str(s) for s in scope]
	if "scope" in data and not required_scopes & set(granted):
		raise MissingScopes(
			"Permission to read Gmail was not granted on the consent screen.",
			fix="Click Reconnect and tick the box that lets Email Sync view your email messages.",
		)
	try:
		expires_in = float(data.get("expires_in") or 0)
	except (TypeError, ValueError):
		expires_in = 0.0
	return OAuthTokens(
		client_id=client_id,
		client_secret=client_secret,
		refresh_token=refresh_token,
		access_token=access_token,
		expires_at=time.time() + expires_in if expires_in else 0.0,
		scopes=granted or list(SCOPES),
	)


def revoke_token(token: str, auth_base: str | None = None, timeout: float = 10.0) -> bool:
	"""Revoke a refresh (or access) token at Google. Never raises; True when the token no longer works.

	Revoking the refresh token ends the whole grant, access tokens included. A token Google no longer knows
	(`invalid_token`: already revoked or expired) counts as revoked.
	"""
	if not token:
		return False
	token = Secret(token)
	try:
		# In the form body, not the URL: URLs end up in proxies' and servers' access logs.
		response = requests.post(revoke_uri(auth_base), data={"token": token}, timeout=timeout)
	except requests.RequestException:
		return False
	if response.status_code == 200:
		return True
	return response.status_code == 400 and _json(response).get("error") == "invalid_token"


def token_error(status: int, data: dict, *, exchanging: bool = False) -> ProviderError:
	"""The ProviderError for an error answer of Google's token endpoint ({"error", "error_description"})."""
	error = str(data.get("error") or "")
	description = str(data.get("error_description") or "").strip()
	detail = f"{error}: {description}" if description else error or f"HTTP {status}"
	if error == "invalid_grant":
		if exchanging:
			return AccessRevoked(
				f"Google refused the sign-in code ({detail}): it expired or was already used.",
				fix="Click Connect again and finish signing in within a few minutes.",
			)
		fix = RECONNECT_OR_PUBLISH if "expired or revoked" in description.lower() else RECONNECT
		return AccessRevoked(f"Google no longer accepts this account's authorization ({detail}).", fix=fix)
	if error in ("invalid_client", "unauthorized_client"):
		return AuthenticationFailed(f"Google rejected the OAuth client ({detail}).", fix=CLIENT_FIX)
	if error == "redirect_uri_mismatch":
		return ProviderError(
			f"Google rejected the redirect address ({detail}).",
			code="redirect_uri_mismatch",
			fix="Add this site's exact redirect URI to the OAuth client's Authorized redirect URIs in the Google "
			"Cloud Console.",
		)
	if error == "invalid_scope":
		return MissingScopes(f"Google refused the requested permissions ({detail}).")
	if error == "admin_policy_enforced":
		return ProviderError(
			f"The Google Workspace administrator does not allow this app ({detail}).",
			code="admin_policy_enforced",
			fix="Ask the administrator to trust the Email Sync OAuth client (Admin console > Security > API "
			"controls), then Reconnect.",
		)
	if status >= 500:
		return ConnectionFailed(f"Google's sign-in service failed ({detail}); try again in a few minutes.")
	return ProviderError(f"Google's token endpoint refused the request ({detail}).", code="gmail_oauth_error")


def refresh_error(exc: Exception) -> ProviderError:
	"""The ProviderError for google.auth.exceptions.RefreshError (google-auth 1.x and 2.x)."""
	args = getattr(exc, "args", ())
	data = next((a for a in args if isinstance(a, dict)), None)
	text = str(args[0]) if args else str(exc)
	if data is None:
		error, _, description = text.partition(":")
		data = {"error": error.strip(), "error_description": description.strip()} if description else {}
	if data.get("error"):
		return token_error(400 if not getattr(exc, "retryable", False) else 503, data)
	if "Not all requested scopes were granted" in text:
		return MissingScopes(f"Google granted fewer permissions than needed: {text}")
	if "necessary fields" in text:  # no refresh token stored: the account was never fully connected
		return AccessRevoked("This Gmail account has no stored authorization.", fix=RECONNECT)
	if getattr(exc, "retryable", False):
		return ConnectionFailed(f"Google's sign-in service failed: {text}")
	return ProviderError(f"Refreshing the Google access token failed: {text}", code="token_refresh_failed")


DELEGATION_SCOPE_FIX = (
	"In the Google Admin console, open Security > Access and data control > API controls > Domain-wide "
	"delegation, add the service account's client id {client_id} with the scope " + GMAIL_READONLY + ", wait a "
	"few minutes, then click Test Connection."
)


def service_account_info(key_json: str, auth_base: str | None = None) -> dict:
	"""The service account's JSON key as a dict (its private key a Secret); the token URI points at auth_base
	when set (tests). Raises ProviderError for anything but a service account key."""
	import json

	try:
		info = json.loads(key_json or "")
	except ValueError:
		info = None
	if not isinstance(info, dict) or info.get("type") != "service_account" or not info.get("private_key"):
		raise ProviderError(
			"The Google service account key in Email Sync Settings is not a service account's JSON key.",
			code="bad_service_account_key",
			fix="Paste the whole JSON key file of the service account (Google Cloud Console > IAM & Admin > "
			"Service Accounts > Keys > Add key > Create new key > JSON).",
		)
	if auth_base:
		info["token_uri"] = token_uri(auth_base)
	return masked(info)


def delegation_error(exc: Exception, app, address: str) -> ProviderError:
	"""The ProviderError for a failed domain-wide delegation token (a RefreshError from the JWT-bearer grant)."""
	args = getattr(exc, "args", ())
	data = next((a for a in args if isinstance(a, dict)), None) or {}
	text = str(args[0]) if args else str(exc)
	error = str(data.get("error") or text.partition(":")[0]).strip()
	description = str(data.get("error_description") or text.partition(":")[2]).strip()
	detail = f"{error}: {description}" if description else error
	try:
		client_id = service_account_info(app.service_account_key).get("client_id") or "?"
	except ProviderError:
		client_id = "?"
	if error == "unauthorized_client":
		return ProviderError(
			f"The service account may not act as {address}: domain-wide delegation of Gmail is not allowed for it "
			f"({detail}).",
			code="delegation_not_allowed",
			fix=DELEGATION_SCOPE_FIX.format(client_id=client_id),
		)
	if error == "invalid_grant" and ("email" in description.lower() or "user id" in description.lower()):
		return MailboxNotHosted(
			f"Google Workspace has no user {address} for this service account to act as ({detail}).",
			fix="Check the address: domain-wide delegation reads the mailboxes of users in the service account's "
			"Google Workspace organization (not personal Gmail accounts or groups).",
		)
	if error == "invalid_grant" and "signature" in description.lower():
		return AuthenticationFailed(
			f"Google no longer accepts the service account's key ({detail}).",
			fix="The key was deleted or disabled: create a new JSON key for the service account and paste it in "
			"Email Sync Settings.",
		)
	if getattr(exc, "retryable", False) or error in ("server_error", "temporarily_unavailable"):
		return ConnectionFailed(f"Google's sign-in service failed ({detail}); try again in a few minutes.")
	return ProviderError(
		f"Google refused the service account's token for {address} ({detail or 'no reason given'}).",
		code="delegation_failed",
		fix="Check the service account key in Email Sync Settings and its domain-wide delegation in the Google "
		"Admin console (Security > Access and data control > API controls).",
	)


def refresh_tokens(tokens: OAuthTokens, auth_base: str | None = None, timeout: float = 30.0) -> OAuthTokens:
	"""New access token for a Google sign-in, by google-auth's Credentials.refresh (the refresh the Gmail API
	client does too). Returns updated copies of `tokens`; raises a ProviderError saying what to do."""
	import calendar
	import dataclasses

	from google.auth import exceptions as auth_exceptions
	from google.auth.transport.requests import Request
	from google.oauth2.credentials import Credentials

	creds = Credentials(
		token=None,
		refresh_token=tokens.refresh_token,
		token_uri=token_uri(auth_base),
		client_id=tokens.client_id,
		client_secret=tokens.client_secret,
	)
	session = requests.Session()
	transport = Request(session=session)
	try:
		# google-auth passes no timeout of its own to the token request: ours bounds it.
		creds.refresh(lambda *args, **kwargs: transport(*args, **{**kwargs, "timeout": timeout}))
	except auth_exceptions.RefreshError as e:
		raise refresh_error(e) from None
	except auth_exceptions.TransportError as e:
		raise ConnectionFailed(
			f"Could not reach Google's token endpoint ({token_uri(auth_base)}): {_first_line(e)}.",
			fix="Check that this site can make outgoing HTTPS connections to oauth2.googleapis.com.",
		) from None
	finally:
		session.close()
	granted = getattr(creds, "granted_scopes", None)  # google-auth 2.x reads the answer's scope; 1.x does not
	return dataclasses.replace(
		tokens,
		access_token=creds.token or "",
		refresh_token=creds.refresh_token or tokens.refresh_token,  # Google rarely rotates it
		expires_at=float(calendar.timegm(creds.expiry.utctimetuple())) if creds.expiry else time.time() + 3600,
		scopes=list(granted or tokens.scopes),
	)


def _first_line(e: Exception) -> str:
	text = str(e).strip() or type(e).__name__
	return text.splitlines()[0][:300]


def _json(response) -> dict:
	try:
		data = response.json()
	except ValueError:
		return {}
	return data if isinstance(data, dict) else {}
