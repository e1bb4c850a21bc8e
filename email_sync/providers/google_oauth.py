"""Google OAuth 2.0 for the Gmail provider: the consent URL, the code exchange and token revocation.

Plain functions on `requests` and the standard library: no Frappe, and no Google client library, so the Frappe side
can build the "Connect with Google" link without importing the Gmail API client. Access tokens are refreshed by
google-auth alone (its Credentials.refresh): inside the Gmail provider's API client, and through `refresh_tokens`
for IMAP's XOAUTH2; `refresh_error` turns its failures into the provider's errors.

Endpoints: the consent page is https://accounts.google.com/o/oauth2/v2/auth, the token and revocation endpoints are
https://oauth2.googleapis.com/token and /revoke. An `auth_base` (tests: a local emulator) replaces both hosts:
<auth_base>/o/oauth2/v2/auth, <auth_base>/token and <auth_base>/revoke.
"""

from __future__ import annotations

import time
from urllib.parse import quote, urlencode

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


def authorization_url(
	client_id: str,
	redirect_uri: str,
	state: str,
	login_hint: str | None = None,
	auth_base: str | None = None,
	scopes: tuple[str, ...] | list[str] = SCOPES,
	code_challenge: str | None = None,
) -> str:
	"""The Google consent page to send the user to. Google redirects back to `redirect_uri` with code and state.

	access_type=offline and prompt=consent make Google return a refresh token every time (also on a reconnect);
	include_granted_scopes keeps whatever the user granted this client before. `code_challenge` (from
	pkce_pair) binds the code to the verifier exchange_code must then send.
	"""
	if not client_id:
		raise ProviderError("No Google OAuth client ID is set.", code="oauth_not_configured", fix=CLIENT_FIX)
	params = {
		"client_id": client_id,
		"redirect_uri": redirect_uri,
		"response_type": "code",
		"scope": " ".join(scopes),
		"access_type": "offline",
		"prompt": "consent",
		"include_granted_scopes": "true",
		"state": state,
	}
	if login_hint:
		params["login_hint"] = login_hint
	if code_challenge:
		params.update(code_challenge=code_challenge, code_challenge_method="S256")
	return f"{auth_uri(auth_base)}?{urlencode(params, quote_via=quote)}"


def pkce_pair() -> tuple[str, str]:
	"""(code_verifier, code_challenge) for PKCE with S256 (RFC 7636)."""
	import base64
	import hashlib
	import secrets

	verifier = secrets.token_urlsafe(64)
	challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
	return Secret(verifier), challenge


def exchange_code(
	client_id: str,
	client_secret: str,
	code: str,
	redirect_uri: str,
	auth_base: str | None = None,
	timeout: float = 30.0,
	required_scopes: frozenset[str] = READ_SCOPES,
	code_verifier: str | None = None,
) -> OAuthTokens:
	"""Trade the code from the consent redirect for tokens. Raises a ProviderError saying what to do on failure.

	`required_scopes`: any one of them must have been granted (IMAP access passes {MAIL_GOOGLE});
	`code_verifier`: the PKCE verifier of the code_challenge the consent page was opened with."""
	client_secret, code = Secret(client_secret), Secret(code)  # locals on the way to any error raised here
	if not client_id or not client_secret:
		raise ProviderError(
			"The Google OAuth client ID or secret is not set.", code="oauth_not_configured", fix=CLIENT_FIX
		)
	data = _post_token(
		auth_base,
		{
			"grant_type": "authorization_code",
			"code": code,
			"redirect_uri": redirect_uri,
			"client_id": client_id,
			"client_secret": client_secret,
			**({"code_verifier": code_verifier} if code_verifier else {}),
		},
		timeout,
		exchanging=True,
	)
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
	granted = str(data.get("scope") or "").split()
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
		response = requests.post(
			revoke_uri(auth_base),
			params={"token": token},
			headers={"Content-Type": "application/x-www-form-urlencoded"},
			timeout=timeout,
		)
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


def _post_token(auth_base: str | None, form: dict, timeout: float, *, exchanging: bool) -> dict:
	"""POST `form` to the token endpoint; the answer, its tokens as Secrets. Raises a ProviderError."""
	form, uri = masked(form), token_uri(auth_base)
	try:
		response = requests.post(uri, data=form, timeout=timeout)
	except requests.Timeout:
		raise ConnectionFailed(
			f"Google's token endpoint did not answer within {timeout:g} seconds."
		) from None
	except requests.RequestException as e:
		raise ConnectionFailed(
			f"Could not reach Google's token endpoint ({uri}): {e}.",
			fix="Check that this site can make outgoing HTTPS connections to oauth2.googleapis.com.",
		) from None
	data = masked(_json(response))
	if response.status_code != 200 or "error" in data:
		raise token_error(response.status_code, data, exchanging=exchanging)
	return data


def _json(response) -> dict:
	try:
		data = response.json()
	except ValueError:
		return {}
	return data if isinstance(data, dict) else {}
