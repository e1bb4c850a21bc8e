"""IMAPProvider.fetch_range (bringing in older mail) against a real Dovecot: SEARCH SINCE/BEFORE per folder,
resumable by its own position, never touching the sync cursor."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from dovecot import Mailbox
from test_imap import config, make_message, numbers

from email_sync.providers.base import BIDIRECTIONAL, MANUAL_SELECTION, FolderMissing
from email_sync.providers.imap import IMAPProvider


def fill(mailbox: Mailbox) -> None:
	# Messages 1..6 on dates around the range [2024-01-01, 2024-02-01).
	for n, day in enumerate(
		[datetime(2023, 12, 31, 23, 0), datetime(2024, 1, 1, 0, 30), datetime(2024, 1, 15, 12, 0),
		 datetime(2024, 1, 31, 22, 0), datetime(2024, 2, 1, 0, 5), datetime(2024, 3, 1, 8, 0)],
		start=1,
	):  # fmt: skip
		mailbox.append("INBOX", [make_message(n)], date=day)


def fetch_range(cfg, since=date(2024, 1, 1), before=date(2024, 2, 1), **kwargs):
	with IMAPProvider(cfg) as provider:
		return list(provider.fetch_range(since, before, **kwargs))


def test_range_takes_only_the_days_between_since_and_before(mailbox: Mailbox):
	fill(mailbox)
	batches = fetch_range(config(mailbox))
	assert numbers(batches) == [2, 3, 4]  # 1 is the day before, 5 and 6 from the day `before` on
	assert batches[-1].remaining == 0
	assert batches[-1].cursor["folders"]["INBOX"]["done"] is True


def test_range_is_independent_of_the_sync_start_and_the_cursor(mailbox: Mailbox):
	fill(mailbox)
	cfg = config(mailbox, sync_start=date(2024, 2, 1))
	with IMAPProvider(cfg) as provider:
		synced = list(provider.fetch(None))
		assert numbers(synced) == [5, 6]
		older = list(provider.fetch_range(date(2023, 1, 1), date(2024, 2, 1)))
		assert numbers(older) == [1, 2, 3, 4]
		assert list(provider.fetch(synced[-1].cursor)) == []  # the sync's own position did not move
	assert "done" not in synced[-1].cursor["folders"]["INBOX"]


def test_range_resumes_after_the_batches_handed_out(mailbox: Mailbox):
	fill(mailbox)
	cfg = config(mailbox, batch_size=1)
	with IMAPProvider(cfg) as provider:
		first = next(iter(provider.fetch_range(date(2024, 1, 1), date(2024, 2, 1))))
	assert numbers([first]) == [2]
	assert first.remaining == 2
	rest = fetch_range(cfg, position=first.cursor)
	assert numbers(rest) == [3, 4]
	assert fetch_range(cfg, position=rest[-1].cursor) == []  # a finished range hands out nothing more


def test_range_reads_every_synced_folder_or_the_one_asked_for(mailbox: Mailbox):
	mailbox.create("Clients")
	mailbox.append("INBOX", [make_message(1)], date=datetime(2024, 1, 10, 9, 0))
	mailbox.append("Clients", [make_message(2)], date=datetime(2024, 1, 11, 9, 0))
	mailbox.append("Sent", [make_message(3)], date=datetime(2024, 1, 12, 9, 0))
	mailbox.append("Junk", [make_message(4)], date=datetime(2024, 1, 12, 9, 0))
	cfg = config(mailbox, folders=["INBOX", "Clients", "Junk"], direction=BIDIRECTIONAL)
	everything = fetch_range(cfg)
	assert sorted(numbers(everything)) == [1, 2, 3]  # junk never, even when listed
	assert [m.from_sent_folder for b in everything for m in b.messages if m.folder == "Sent"] == [True]
	assert numbers(fetch_range(cfg, folders=["Clients"])) == [2]
	with pytest.raises(FolderMissing):
		fetch_range(cfg, folders=["Archive"])


def test_range_in_manual_selection_takes_only_tagged_mail(mailbox: Mailbox):
	mailbox.append("INBOX", [make_message(1), make_message(2)], date=datetime(2024, 1, 10, 9, 0))
	mailbox.set_flags("INBOX", [2], ["EmailSync"])
	assert numbers(fetch_range(config(mailbox, direction=MANUAL_SELECTION))) == [2]


def test_range_never_changes_flags(mailbox: Mailbox):
	fill(mailbox)
	before = mailbox.flags("INBOX")
	fetch_range(config(mailbox))
	assert mailbox.flags("INBOX") == before
