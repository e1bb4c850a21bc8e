"""Mailbox providers behind one interface (see base.py). No Frappe import anywhere in this package."""

from email_sync.providers.base import (
	AccessRevoked,
	AccountConfig,
	AppCredentials,
	AuthenticationFailed,
	Batch,
	ConnectionFailed,
	FetchedMessage,
	Folder,
	FolderMissing,
	OAuthTokens,
	Provider,
	ProviderError,
	TestResult,
	Throttled,
)


def get_provider(config: AccountConfig, **options) -> Provider:
	"""The provider class for `config.provider`, imported lazily so IMAP users need no Google or Microsoft libs.

	`options` go to the provider's constructor (e.g. `verify=` a CA bundle for Microsoft)."""
	if config.provider == "IMAP":
		from email_sync.providers.imap import IMAPProvider

		return IMAPProvider(config, **options)
	if config.provider == "Gmail":
		from email_sync.providers.gmail import GmailProvider

		return GmailProvider(config, **options)
	if config.provider == "Microsoft":
		from email_sync.providers.microsoft import MicrosoftProvider

		return MicrosoftProvider(config, **options)
	raise ProviderError(
		f"The provider {config.provider!r} is not available in this version of Email Sync.",
		code="provider_unavailable",
		fix="Choose IMAP, Gmail or Microsoft.",
	)


__all__ = [
	"AccessRevoked",
	"AccountConfig",
	"AppCredentials",
	"AuthenticationFailed",
	"Batch",
	"ConnectionFailed",
	"FetchedMessage",
	"Folder",
	"FolderMissing",
	"OAuthTokens",
	"Provider",
	"ProviderError",
	"TestResult",
	"Throttled",
	"get_provider",
]
