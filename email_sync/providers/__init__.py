"""Mailbox providers behind one interface (see base.py). No Frappe import anywhere in this package."""

from email_sync.providers.base import (
	AccountConfig,
	AuthenticationFailed,
	Batch,
	ConnectionFailed,
	FetchedMessage,
	Folder,
	FolderMissing,
	Provider,
	ProviderError,
	TestResult,
)


def get_provider(config: AccountConfig) -> Provider:
	"""The provider class for `config.provider`, imported lazily so IMAP users need no Google or Microsoft libs."""
	if config.provider == "IMAP":
		from email_sync.providers.imap import IMAPProvider

		return IMAPProvider(config)
	raise ProviderError(
		f"The provider {config.provider!r} is not available in this version of Email Sync.",
		code="provider_unavailable",
		fix="Choose IMAP for now, or update Email Sync.",
	)


__all__ = [
	"AccountConfig",
	"AuthenticationFailed",
	"Batch",
	"ConnectionFailed",
	"FetchedMessage",
	"Folder",
	"FolderMissing",
	"Provider",
	"ProviderError",
	"TestResult",
	"get_provider",
]
