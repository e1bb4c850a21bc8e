"""Company mailboxes: shared and delegated mailboxes read with the app's own access, no personal sign-in.

An account whose Mailbox is "Shared or delegated" holds no tokens. A Microsoft 365 account reads
/users/{address} with app-only tokens (the app registration's client id, the tenant id and a client secret or
certificate from Email Sync Settings); a Google Workspace account acts as its address through the service
account key's domain-wide delegation. This module turns those settings into the provider's AppCredentials.

A Microsoft account whose Mailbox is "Shared, through my sign-in" is a third way: a person with access to the
shared mailbox clicks Connect and signs in as themselves (with the delegated Mail.Read.Shared); the account
keeps that person's tokens and reads /users/{address} with them. Gmail has nothing like it.
"""

from __future__ import annotations

import frappe
from frappe import _

from email_sync.providers import AppCredentials

SHARED = "Shared or delegated"
SHARED_SIGN_IN = "Shared, through my sign-in"
PROVIDERS = ("Gmail", "Microsoft")


def is_shared(account) -> bool:
	return account.provider in PROVIDERS and (account.get("mailbox_kind") or "") == SHARED


def reads_through_sign_in(account) -> bool:
	"""A Microsoft shared mailbox read with the token of the person who clicked Connect (Mail.Read.Shared)."""
	return account.provider == "Microsoft" and (account.get("mailbox_kind") or "") == SHARED_SIGN_IN


def app_credentials(account) -> AppCredentials | None:
	"""The app's own credentials for a shared or delegated account; None for any other account."""
	if not is_shared(account):
		return None
	settings = frappe.get_cached_doc("Email Sync Settings")
	if account.provider == "Gmail":
		return AppCredentials(service_account_key=_password(settings, "google_service_account_key"))
	certificate = settings.get("microsoft_app_credential") == "Certificate"
	return AppCredentials(
		client_id=(settings.get("microsoft_client_id") or "").strip(),
		tenant=(settings.get("microsoft_tenant_id") or "").strip(),
		client_secret="" if certificate else _password(settings, "microsoft_client_secret"),
		certificate=(settings.get("microsoft_certificate") or "") if certificate else "",
		private_key=_password(settings, "microsoft_certificate_key") if certificate else "",
	)


def missing_setup(provider: str) -> str:
	"""What Email Sync Settings still lacks for company mailboxes of `provider`, in words; "" when nothing."""
	settings = frappe.get_cached_doc("Email Sync Settings")
	if provider == "Gmail":
		if not _password(settings, "google_service_account_key"):
			return _("the Google Service Account Key (JSON)")
		return ""
	missing = []
	if not (settings.get("microsoft_client_id") or "").strip():
		missing.append(_("the Microsoft Application (Client) ID"))
	if not (settings.get("microsoft_tenant_id") or "").strip():
		missing.append(_("the Microsoft Directory (Tenant) ID"))
	if settings.get("microsoft_app_credential") == "Certificate":
		if not (settings.get("microsoft_certificate") or "").strip():
			missing.append(_("the Microsoft Certificate"))
		if not _password(settings, "microsoft_certificate_key"):
			missing.append(_("the Microsoft Certificate Private Key"))
	elif not _password(settings, "microsoft_client_secret"):
		missing.append(_("the Microsoft Client Secret"))
	return ", ".join(missing)


def _password(settings, fieldname: str) -> str:
	return settings.get_password(fieldname, raise_exception=False) or ""
