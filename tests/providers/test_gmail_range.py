"""GmailProvider.fetch_range (bringing in older mail) against the Gmail API emulator: `q=after:… before:…` per
label, paged, resumable by its own position, the sync's cursor never read or moved."""

from __future__ import annotations

from datetime import date, datetime, timezone

import pytest
from test_gmail import fill, make_provider, sync

from email_sync.providers.base import BIDIRECTIONAL, FolderMissing

pytest_plugins = ["conftest_gmail"]


def epoch(day: date) -> int:
	return int(datetime(day.year, day.month, day.day, tzinfo=timezone.utc).timestamp())


def range_of(provider, since=date(2024, 3, 5), before=date(2024, 3, 15), **kwargs):
	batches = list(provider.fetch_range(since, before, **kwargs))
	return [m for b in batches for m in b.messages], batches


def test_range_lists_between_the_dates_oldest_first_in_pages(gmail, gmail_config):
	ids = fill(gmail, range(1, 21))
	with make_provider(gmail_config(batch_size=4)) as provider:
		messages, batches = range_of(provider)
	assert [m.provider_id for m in messages] == ids[4:14]  # 5 March up to, not including, 15 March
	assert [b.remaining for b in batches] == [6, 2, 0]
	listing = [r for r in gmail.requests if r.path == "/gmail/v1/users/me/messages"]
	assert listing[0].query["q"] == [f"after:{epoch(date(2024, 3, 5))} before:{epoch(date(2024, 3, 15))}"]
	assert len(listing) == 2  # 10 ids, pages of 7: the listing is paged
	assert batches[-1].cursor == {"done": ["INBOX"]}


def test_range_leaves_the_sync_cursor_alone(gmail, gmail_config):
	fill(gmail, range(1, 11))
	with make_provider(gmail_config(sync_start=date(2024, 3, 6))) as provider:
		synced, batches = sync(provider)
		cursor = batches[-1].cursor
		older, _ = range_of(provider, since=date(2024, 3, 1), before=date(2024, 3, 6))
		again, _ = sync(provider, cursor)
	assert len(synced) == 5 and len(older) == 5
	assert not {m.provider_id for m in synced} & {m.provider_id for m in older}
	assert again == []  # nothing new for the sync: the range did not move it back


def test_range_resumes_after_the_last_ids_handed_out(gmail, gmail_config):
	ids = fill(gmail, range(1, 21))
	with make_provider(gmail_config(batch_size=3)) as provider:
		first = next(iter(provider.fetch_range(date(2024, 3, 5), date(2024, 3, 15))))
		assert [m.provider_id for m in first.messages] == ids[4:7]
		assert first.cursor["label"] == "INBOX" and first.cursor["last_ids"] == ids[4:7]
		rest, batches = range_of(provider, position=first.cursor)
		assert [m.provider_id for m in rest] == ids[7:14]
		done, _ = range_of(provider, position=batches[-1].cursor)
	assert done == []


def test_range_reads_the_synced_labels_or_the_one_asked_for(gmail, gmail_config):
	clients = gmail.add_label("Clients")
	inbox = fill(gmail, [6])
	labelled = fill(gmail, [7], labels=(clients,))
	sent = fill(gmail, [8], labels=("SENT",))
	fill(gmail, [9], labels=("SPAM",))
	config = gmail_config(folders=["INBOX", "Clients", "SPAM"], direction=BIDIRECTIONAL)
	with make_provider(config) as provider:
		everything, _ = range_of(provider)
		only, _ = range_of(provider, folders=["Clients"])
		with pytest.raises(FolderMissing):
			range_of(provider, folders=["Archive"])
	assert sorted(m.provider_id for m in everything) == sorted(inbox + labelled + sent)
	assert [m.provider_id for m in only] == labelled
