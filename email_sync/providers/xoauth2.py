"""OAuth access tokens for IMAP's XOAUTH2 login (Gmail and Microsoft mailboxes), from the API providers' tokens.

An IMAP account whose `AccountConfig.oauth` holds the tokens of a Google or Microsoft sign-in logs in with
`AUTHENTICATE XOAUTH2` instead of a password. `access_token_for` hands out a valid access token: the stored one
while it has more than a minute left, else a new one from the issuer's token endpoint (the same endpoints,
helpers and error mapping as the Gmail and Microsoft providers), passing rotated tokens to
`config.on_tokens_refreshed`. `sasl_xoauth2` builds the SASL message the IMAP server expects.

Scopes: XOAUTH2 only works with tokens granted for IMAP at consent time; refreshing cannot add a scope the
user never granted.

- Google: `https://mail.google.com/` (full mail access). `gmail.readonly`, which the Gmail API provider asks
  for, is refused by imap.gmail.com.
- Microsoft: `https://outlook.office.com/IMAP.AccessAsUser.All` plus `offline_access` (for the refresh token).
  Access tokens are per resource: a Graph token (Mail.Read) is refused by outlook.office365.com, so the
  stored access token is only used when it was issued for IMAP; otherwise the refresh token (Entra refresh
  tokens work for every resource the user consented to) is redeemed for an Outlook token.

So the consent screens must request these scopes for IMAP accounts (google_oauth.begin_sign_in's
`scopes=`; for Microsoft the sign-in scopes in microsoft_oauth).
"""

from __future__ import annotations

import dataclasses
import time

from email_sync.providers import google_oauth, microsoft_oauth
from email_sync.providers.base import (
	AccessRevoked,
	AccountConfig,
	MissingScopes,
	OAuthTokens,
	ProviderError,
)

GOOGLE = "Google"
MICROSOFT = "Microsoft"

GOOGLE_IMAP_SCOPE = "https://mail.google.com/"
MICROSOFT_IMAP_SCOPE = "https://outlook.office.com/IMAP.AccessAsUser.All"
# What each issuer's consent screen has to grant for IMAP (msal adds offline_access by itself when refreshing).
IMAP_SCOPES = {
	GOOGLE: (GOOGLE_IMAP_SCOPE,),
	MICROSOFT: (MICROSOFT_IMAP_SCOPE, "offline_access"),
}

EXPIRY_MARGIN = 60  # seconds: a stored access token this close to expiry is refreshed before use

# IMAP hosts whose XOAUTH2 tokens come from one issuer.
GOOGLE_HOSTS = frozenset({"imap.gmail.com", "imap.googlemail.com"})
MICROSOFT_HOSTS = frozenset({"outlook.office365.com", "outlook.office.com", "imap-mail.outlook.com"})

_ISSUER_NAMES = {"google": GOOGLE, "gmail": GOOGLE, "microsoft": MICROSOFT, "outlook": MICROSOFT}


def sasl_xoauth2(user: str, token: str) -> bytes:
	"""The XOAUTH2 initial client response: user=<user>^Aauth=Bearer <token>^A^A (before base64)."""
	return f"user={user}\x01auth=Bearer {token}\x01\x01".encode()


def normalise_issuer(issuer: str) -> str:
	"""GOOGLE or MICROSOFT for "Google", "gmail", "Microsoft", "outlook" (any case); ProviderError otherwise."""
	name = _ISSUER_NAMES.get((issuer or "").strip().lower())
	if name is None:
		raise ProviderError(
			f"Unknown OAuth issuer {issuer!r} for IMAP.",
			code="oauth_issuer_unknown",
			fix='Use "Google" for Gmail and Google Workspace, "Microsoft" for Microsoft 365 and Outlook.com.',
		)
	return name


def issuer_for_host(host: str) -> str | None:
	"""The issuer whose tokens an IMAP host accepts: imap.gmail.com -> Google, outlook.office365.com -> Microsoft."""
	host = (host or "").strip().lower().rstrip(".")
	if host in GOOGLE_HOSTS:
		return GOOGLE
	if host in MICROSOFT_HOSTS:
		return MICROSOFT
	return None


def issuer_for_tokens(tokens: OAuthTokens | None) -> str | None:
	"""A guess from the tokens themselves (for other host names): Google client ids end in
	.apps.googleusercontent.com; Microsoft sign-ins carry a tenant."""
	if tokens is None:
		return None
	if tokens.client_id.strip().lower().endswith(".apps.googleusercontent.com"):
		return GOOGLE
	if tokens.tenant.strip():
		return MICROSOFT
	return None


def needs_refresh(tokens: OAuthTokens, issuer: str) -> bool:
	"""True when the stored access token cannot be used for IMAP as it is (missing, expiring, other resource)."""
	if not tokens.access_token:
		return True
	if tokens.expires_at and tokens.expires_at - EXPIRY_MARGIN <= time.time():
		return True  # expires_at 0 means unknown: the token is tried, and refreshed if the server refuses it
	return normalise_issuer(issuer) == MICROSOFT and not _for_outlook_imap(tokens.scopes)


def access_token_for(
	config: AccountConfig, *, issuer: str, verify: bool | str = True, force_refresh: bool = False
) -> str:
	"""A valid access token for XOAUTH2: the stored one if it has more than EXPIRY_MARGIN seconds left (and, for
	Microsoft, was issued for IMAP), else a refreshed one. `force_refresh`: refresh whatever is stored (after the
	server refused it). `verify`: True, False or a CA bundle path for Microsoft's token endpoint.

	Refreshed tokens are written into config.oauth and handed to config.on_tokens_refreshed. Raises
	AccessRevoked (with the Reconnect fix) when the grant is gone, MissingScopes when IMAP was never granted.
	"""
	issuer = normalise_issuer(issuer)
	tokens = _stored(config, issuer)
	if not force_refresh and not needs_refresh(tokens, issuer):
		return tokens.access_token
	if issuer == GOOGLE:
		return _refresh_google(config, tokens)
	return _refresh_microsoft(config, verify)


def has_imap_scope(tokens: OAuthTokens | None, issuer: str) -> bool | None:
	"""Whether the granted scopes include IMAP access; None when the tokens do not say which scopes they carry."""
	if tokens is None or not tokens.scopes:
		return None
	if normalise_issuer(issuer) == GOOGLE:
		return GOOGLE_IMAP_SCOPE in tokens.scopes
	return _for_outlook_imap(tokens.scopes)


def missing_scope_error(issuer: str, user: str) -> MissingScopes:
	issuer = normalise_issuer(issuer)
	scope = GOOGLE_IMAP_SCOPE if issuer == GOOGLE else MICROSOFT_IMAP_SCOPE
	return MissingScopes(
		f"The {issuer} sign-in for {user or 'this account'} does not include mail access over IMAP ({scope}).",
		fix=reconnect_fix(issuer),
	)


def reconnect_fix(issuer: str) -> str:
	if normalise_issuer(issuer) == GOOGLE:
		return (
			"Click Reconnect on the account, sign in with Google again and allow Email Sync full access to the "
			"mailbox (Read, compose, send and permanently delete all your email: IMAP needs it)."
		)
	return (
		"Click Reconnect on the account, sign in with Microsoft again and accept access to mailboxes over IMAP "
		"(IMAP.AccessAsUser.All; an administrator may have to consent for the organization)."
	)


# -- internals ---------------------------------------------------------------------------------------------


def _stored(config: AccountConfig, issuer: str) -> OAuthTokens:
	tokens = config.oauth
	if tokens is None or not tokens.client_id:
		raise AccessRevoked(
			f"No {issuer} sign-in is stored for {config.address or 'this account'}.",
			fix=f"Click Connect (or Reconnect) on the account and sign in with {issuer}.",
		)
	return tokens


def _for_outlook_imap(scopes: list[str]) -> bool:
	"""Entra lists the scopes of the resource the token is for; an Outlook IMAP token has IMAP.AccessAsUser.All."""
	if not scopes:
		return True  # unknown: try it; a refusal by the server triggers a refresh for IMAP
	return any(s.strip().lower().endswith("/imap.accessasuser.all") for s in scopes)


def _refresh_google(config: AccountConfig, tokens: OAuthTokens) -> str:
	"""A new access token through google-auth, the Gmail provider's own refresh (google_oauth.refresh_tokens);
	invalid_grant becomes AccessRevoked with the fix."""
	if not tokens.refresh_token:
		raise AccessRevoked(
			f"The Google sign-in for {config.address or 'this account'} has no refresh token.",
			fix=google_oauth.RECONNECT,
		)
	if not tokens.client_secret:
		raise ProviderError(
			"The Google OAuth client secret is not set.", code="oauth_not_configured", fix=google_oauth.CLIENT_FIX
		)
	fresh = google_oauth.refresh_tokens(tokens, config.auth_base, config.timeout)
	if not fresh.access_token:
		raise ProviderError(
			"Google answered the token refresh without an access token.", code="token_refresh_failed"
		)
	tokens.access_token, tokens.expires_at = fresh.access_token, fresh.expires_at
	tokens.refresh_token, tokens.scopes = fresh.refresh_token, fresh.scopes
	_announce(config, tokens)
	return tokens.access_token


class _IMAPTokenManager(microsoft_oauth.TokenManager):
	"""microsoft_oauth.TokenManager asking for an Outlook IMAP token instead of a Graph one.

	TokenManager.refresh asks for TOKEN_SCOPES (Graph Mail.Read); Outlook's IMAP server refuses Graph tokens,
	so this refresh is the same but for MICROSOFT_IMAP_SCOPE (msal adds offline_access, openid and profile).
	"""

	scopes = (MICROSOFT_IMAP_SCOPE,)

	def _checked(self, result: dict) -> dict:
		try:
			return microsoft_oauth._checked(result, "a token for IMAP")
		except MissingScopes as error:
			error.fix = reconnect_fix(MICROSOFT)
			raise


def _refresh_microsoft(config: AccountConfig, verify: bool | str) -> str:
	manager = _IMAPTokenManager(config, verify=verify)
	try:
		return manager.refresh()
	finally:
		manager.close()


def _announce(config: AccountConfig, tokens: OAuthTokens) -> None:
	if config.on_tokens_refreshed:
		config.on_tokens_refreshed(dataclasses.replace(tokens, scopes=list(tokens.scopes)))
