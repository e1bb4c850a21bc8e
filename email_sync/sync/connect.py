"""Connecting a Gmail or Microsoft account: the OAuth authorization-code flow, and disconnecting it.

The `state` sent to the provider is single-use, expires in ten minutes and is bound to the user and the
browser session that clicked Connect: a callback carrying any other state is refused.
"""

from __future__ import annotations

import frappe
from frappe import _
from frappe.utils import get_url, now_datetime, today

from email_sync.providers import ProviderError
from email_sync.sync.company import is_shared, reads_through_sign_in
from email_sync.sync.context import account_config, endpoints, oauth_client, provider_for, store_tokens

STATE_TTL = 600  # seconds
CALLBACK = "/api/method/email_sync.api.oauth_callback"


def redirect_uri() -> str:
	return get_url(CALLBACK)


def _state_key(state: str) -> str:
	return f"email_sync:oauth_state:{state}"


def authorization_url(account) -> str:
	"""Where the browser goes to consent. Remembers the state, with the sign-in's PKCE verifier (Google:
	google-auth-oauthlib's Flow; Microsoft: msal's whole auth-code flow), for the callback."""
	if is_shared(account):
		frappe.throw(
			_(
				"A shared or delegated mailbox needs no sign-in: it is read with the app's own access. Set that "
				"up under Company Mailboxes in Email Sync Settings, then click Test Connection and set the "
				"status to Active."
			)
		)
	client_id, client_secret = oauth_client(account.provider)
	if not client_id:
		frappe.throw(
			_("Enter the {0} OAuth client in Email Sync Settings first (see the README).").format(account.provider)
		)
	if account.provider not in ("Gmail", "Microsoft"):
		frappe.throw(_("Connect is for Gmail and Microsoft accounts; IMAP accounts use a password."))
	state = frappe.generate_hash(length=32)
	sign_in = {"account": account.name, "user": frappe.session.user, "sid": frappe.session.sid}
	if account.provider == "Gmail":
		from email_sync.providers.google_oauth import IMAP_SCOPES, SCOPES, begin_sign_in

		url, sign_in["code_verifier"] = begin_sign_in(
			client_id,
			client_secret,
			redirect_uri(),
			state,
			login_hint=account.email_address,
			auth_base=endpoints().get("google_auth"),
			scopes=IMAP_SCOPES if _over_imap(account) else SCOPES,
		)
	else:
		from email_sync.providers.microsoft_oauth import (
			IMAP_SIGN_IN_SCOPES,
			SHARED_SIGN_IN_SCOPES,
			begin_sign_in,
		)

		scopes = IMAP_SIGN_IN_SCOPES if _over_imap(account) else None
		through_sign_in = reads_through_sign_in(account)
		if through_sign_in:
			scopes = SHARED_SIGN_IN_SCOPES  # the person signs in as themselves: no hint of the shared address
		flow = begin_sign_in(
			client_id,
			client_secret,
			redirect_uri(),
			state,
			_tenant(account),
			endpoints().get("microsoft_auth"),
			login_hint=None if through_sign_in else account.email_address,
			scopes=scopes,
			verify=endpoints().get("ca_bundle") or True,
		)
		sign_in["flow"], url = flow, flow["auth_uri"]
	frappe.cache.set_value(_state_key(state), sign_in, expires_in_sec=STATE_TTL)
	return url


def claim_state(state: str) -> str:
	"""The account a callback's state was issued for, if the same user and session asked for it. Single use.
	What the sign-in keeps for the code exchange (PKCE verifier, msal's flow) stays with this request for
	finish()."""
	data = frappe.cache.get_value(_state_key(state or "")) if state else None
	frappe.cache.delete_value(_state_key(state or ""))
	if not data or data.get("user") != frappe.session.user or data.get("sid") != frappe.session.sid:
		raise frappe.PermissionError(
			_("This sign-in could not be verified (it expired, was already used, or was started by someone else). Click Connect again.")
		)
	frappe.local.email_sync_sign_in = data
	return data["account"]


def finish(account_name: str, code: str) -> None:
	"""Trade the code for tokens, check the mailbox is the account's (for a shared mailbox read through this
	sign-in: that the person who signed in may read it), keep the tokens, start real time."""
	account = frappe.get_doc("Email Sync Account", account_name)
	account.check_permission("write")
	client_id, client_secret = oauth_client(account.provider)
	sign_in = getattr(frappe.local, "email_sync_sign_in", None) or {}
	tokens = _exchange(account, client_id, client_secret, code, sign_in)
	# Stored first: a refresh while reading the profile stores newer tokens through on_tokens_refreshed.
	store_tokens(account.name, tokens)
	config = account_config(account)
	config.oauth = tokens
	try:
		with provider_for(account, config) as provider:
			address = (getattr(provider, "email_address", "") or getattr(provider, "mailbox_address", "")).lower()
	except ProviderError:
		frappe.db.rollback()  # e.g. the person may not read the shared mailbox: keep no tokens
		raise
	# For a shared mailbox read through this sign-in, the address is the shared one connect() could open (the
	# person signed in as themselves), so this holds as long as they may read it.
	if address and address != account.email_address:
		frappe.db.rollback()
		raise ProviderError(
			f"You signed in as {address}, but this account is for {account.email_address}.",
			code="wrong_mailbox",
			fix=f"Click Connect again and choose {account.email_address}, or create an account for {address}."
			+ (
				f" If {account.email_address} is a shared mailbox {address} may read, set Mailbox to Shared, "
				"through my sign-in and click Connect again."
				if account.provider == "Microsoft"
				else ""
			),
		)
	values = {"connected_by": frappe.session.user, "connected_on": now_datetime(), "auth_type": "OAuth"}
	if account.status in ("Draft", "Disconnected", "Error"):
		values.update(status="Active", consecutive_failures=0, next_sync_after=None)
		if not account.get("activated_on"):
			values["activated_on"] = now_datetime()  # older mail is history: see IssueRouter
		if not account.get("sync_start_date"):
			# An account saved before the form showed the date: the form's default, never "all mail ever".
			values["sync_start_date"] = today()
	frappe.db.set_value("Email Sync Account", account.name, values)
	frappe.db.commit()


def _tenant(account) -> str:
	return account.microsoft_tenant or "organizations"


def _over_imap(account) -> bool:
	return account.mail_access == "IMAP (XOAUTH2)"


def _exchange(account, client_id: str, client_secret: str, code: str, sign_in: dict):
	"""Tokens for the code, with what the sign-in began with: the PKCE verifier of google-auth-oauthlib's Flow
	for Google, msal's whole auth-code flow (verifier, nonce) for Microsoft."""
	if account.provider == "Gmail":
		from email_sync.providers.google_oauth import MAIL_GOOGLE, READ_SCOPES, finish_sign_in

		return finish_sign_in(
			client_id,
			client_secret,
			code,
			redirect_uri(),
			sign_in.get("code_verifier") or "",
			auth_base=endpoints().get("google_auth"),
			required_scopes=frozenset({MAIL_GOOGLE}) if _over_imap(account) else READ_SCOPES,
		)
	from email_sync.providers.microsoft_oauth import IMAP_SCOPE, SHARED_TOKEN_SCOPES, finish_sign_in

	if not sign_in.get("flow"):
		raise ProviderError(
			"This sign-in could not be finished: it was not started here, or it expired.",
			code="microsoft_auth_error",
			fix="Click Connect again and finish signing in within ten minutes.",
		)
	tokens = finish_sign_in(
		sign_in["flow"],
		code,
		client_id,
		client_secret,
		_tenant(account),
		endpoints().get("microsoft_auth"),
		verify=endpoints().get("ca_bundle") or True,
		scopes=[IMAP_SCOPE] if _over_imap(account) else SHARED_TOKEN_SCOPES if reads_through_sign_in(account) else None,
	)
	tokens.tenant = _tenant(account)
	return tokens
