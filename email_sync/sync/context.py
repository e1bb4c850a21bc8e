"""Everything a sync run reads from the site, turned into the engine's and the provider's plain objects."""

from __future__ import annotations

import json

import frappe

from email_sync.engine import NEEDS_REVIEW, SKIPPED, BlacklistEntry, Context, Directory, Filter, RuleError, RuleSet
from email_sync.engine import namesakes
from email_sync.engine.shared import FILE_ON_ALL
from email_sync.providers import AccountConfig, OAuthTokens, ProviderError, get_provider
from email_sync.sync.company import app_credentials, is_shared, reads_through_sign_in
from email_sync.sync.directory import SiteSource


def endpoints() -> dict:
	"""Where Google's and Microsoft's endpoints live. Empty (the real services) unless the site config
	`email_sync_endpoints` points them elsewhere, as the tests do with their local emulators."""
	return frappe.conf.get("email_sync_endpoints") or {}


IMAP_HOSTS = {"Gmail": "imap.gmail.com", "Microsoft": "outlook.office365.com"}


def provider_for(account, config: AccountConfig | None = None):
	config = config or account_config(account)
	options = {}
	if account.provider == "Microsoft" and endpoints().get("ca_bundle"):
		options["verify"] = endpoints()["ca_bundle"]
	if account.provider in IMAP_HOSTS and account.mail_access == "IMAP (XOAUTH2)":
		# The same sign-in, through the provider's IMAP server (or the one the admin entered).
		config.provider = "IMAP"
		config.host = config.host or IMAP_HOSTS[account.provider]
		config.port = config.port or 993
		config.password = ""
		options["oauth_issuer"] = "Google" if account.provider == "Gmail" else "Microsoft"
	return get_provider(config, **options)


def oauth_client(provider: str) -> tuple[str, str]:
	settings = frappe.get_cached_doc("Email Sync Settings")
	prefix = "google" if provider == "Gmail" else "microsoft"
	secret = settings.get_password(f"{prefix}_client_secret", raise_exception=False) or ""
	return settings.get(f"{prefix}_client_id") or "", secret


def account_tokens(account) -> OAuthTokens | None:
	if (account.provider == "IMAP" and account.auth_type != "OAuth") or is_shared(account):
		return None  # shared or delegated mailboxes are read with the app's own access (company.py)
	client_id, client_secret = oauth_client(account.provider)
	return OAuthTokens(
		client_id=client_id,
		client_secret=client_secret,
		refresh_token=account.get_password("refresh_token", raise_exception=False) or "",
		access_token=account.get_password("access_token", raise_exception=False) or "",
		expires_at=float(account.access_token_expires_at or 0),
		tenant=account.microsoft_tenant or "",
	)


def store_tokens(account_name: str, tokens: OAuthTokens) -> None:
	"""Keep refreshed tokens encrypted on the account (called by providers mid-sync)."""
	from frappe.utils.password import set_encrypted_password

	if tokens.refresh_token:
		set_encrypted_password("Email Sync Account", account_name, tokens.refresh_token, "refresh_token")
	if tokens.access_token:
		set_encrypted_password("Email Sync Account", account_name, tokens.access_token, "access_token")
	frappe.db.set_value(
		"Email Sync Account", account_name, "access_token_expires_at", tokens.expires_at, update_modified=False
	)


def account_config(account) -> AccountConfig:
	"""The provider's view of an Email Sync Account document."""
	prefix = {"Gmail": "google", "Microsoft": "microsoft"}.get(account.provider, "")
	return AccountConfig(
		provider=account.provider,
		address=(account.email_address or "").strip().lower(),
		aliases=[row.alias.strip().lower() for row in account.aliases if row.alias],
		direction=account.direction or "Inbound only",
		folders=[row.folder_name for row in account.folders if row.folder_name],
		sync_start=frappe.utils.getdate(account.sync_start_date) if account.sync_start_date else None,
		host=(account.imap_host or "").strip(),
		port=int(account.imap_port or 0),
		security=account.imap_security or "SSL",
		username=(account.username or account.email_address or "").strip(),
		password=account.get_password("password", raise_exception=False) or "",
		timeout=float(account.connection_timeout or 30),
		batch_size=int(account.batch_size or 200),
		oauth=account_tokens(account),
		app=app_credentials(account),
		through_sign_in=reads_through_sign_in(account),
		api_base=endpoints().get(f"{prefix}_api", "") if prefix else "",
		auth_base=endpoints().get(f"{prefix}_auth", "") if prefix else "",
		on_tokens_refreshed=lambda tokens: store_tokens(account.name, tokens),
	)


def load_cursor(account) -> dict:
	try:
		return json.loads(account.sync_cursor or "{}")
	except ValueError:
		return {}


def load_directory(internal_domains: list[str], extra_free_mail: list[str] = ()) -> Directory:
	"""A directory that reads nothing now: it asks the site about each batch's addresses as it meets them."""
	return Directory.build(
		internal_domains=internal_domains, extra_free_mail_domains=extra_free_mail, source=SiteSource()
	)


def split_lines(value: str | None) -> list[str]:
	return [v.strip() for v in (value or "").replace(",", "\n").splitlines() if v.strip()]


def load_rules(account_name: str) -> RuleSet:
	blacklist = [
		BlacklistEntry(row.entry, row.reason or "")
		for row in frappe.get_all("Email Sync Blacklist", fields=["entry", "reason"])
	]
	filters = []
	for row in frappe.get_all(
		"Email Sync Filter",
		filters={"enabled": 1},
		or_filters=[["account", "is", "not set"], ["account", "=", account_name]],
		fields=["name", "filter_type", "match_field", "operator", "value"],
	):
		try:
			filters.append(Filter(row.name, row.filter_type, row.match_field, row.operator, row.value or ""))
		except RuleError as e:
			raise ProviderError(str(e), code="bad_filter", fix=f"Correct or disable the filter {row.name}.") from e
	return RuleSet(blacklist, filters)


def load_settings():
	return frappe.get_cached_doc("Email Sync Settings")


def load_context(account, config: AccountConfig) -> Context:
	settings = load_settings()
	return Context(
		directory=load_directory(split_lines(settings.internal_domains), split_lines(settings.free_mail_domains)),
		rules=load_rules(account.name),
		own_addresses=config.own_addresses,
		unmatched_action=SKIPPED if settings.unmatched_action == "Skip" else NEEDS_REVIEW,
		skip_auto_submitted=bool(settings.skip_auto_submitted),
		create_contacts=bool(settings.create_contacts),
		accept_variants=bool(settings.accept_variants),
		exclude_suppliers=bool(settings.exclude_suppliers),
		only_customers=bool(settings.only_customers),
		shared_addresses=settings.get("shared_address_action") or FILE_ON_ALL,
		namesake_action=settings.get("namesake_action") or namesakes.ASK,
	)
