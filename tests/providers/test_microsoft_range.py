"""MicrosoftProvider.fetch_range (bringing in older mail) against the Graph emulator: a paged
`receivedDateTime ge … and lt …` listing per folder, resumable by its own position, never the delta cursor."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from test_microsoft import fetch_all, ids

from email_sync.providers.base import BIDIRECTIONAL, MANUAL_SELECTION, FolderMissing

pytest_plugins = ["conftest_graph"]

SINCE, BEFORE = date(2024, 1, 1), date(2024, 2, 1)


def fill(graph, folder="inbox", **kwargs) -> list[str]:
	"""Messages on 31 Dec 23:59, 1 Jan 00:00, 15 Jan, 31 Jan 23:59 and 1 Feb 00:00."""
	times = [datetime(2023, 12, 31, 23, 59), datetime(2024, 1, 1), datetime(2024, 1, 15, 12),
		datetime(2024, 1, 31, 23, 59), datetime(2024, 2, 1)]  # fmt: skip
	return [graph.add_message(folder, when, **kwargs) for when in times]


def range_of(provider, since=SINCE, before=BEFORE, **kwargs):
	batches = list(provider.fetch_range(since, before, **kwargs))
	return [m for b in batches for m in b.messages], batches


def range_filters(graph) -> list[str]:
	found = []
	for method, target in graph.requests:
		parts = urlsplit(target)
		if method == "GET" and parts.path.endswith("/messages") and "/mailFolders/" in parts.path:
			found.append(parse_qs(parts.query).get("$filter", [""])[0])
	return found


def test_range_lists_by_received_date_oldest_first(graph, make_provider, make_config):
	listed = fill(graph)
	provider = make_provider(make_config(batch_size=2), page_size=2)
	messages, batches = range_of(provider)
	assert ids(messages) == listed[1:4]  # from 1 January 00:00 up to, not including, 1 February
	assert [b.remaining for b in batches] == [1, 0]
	assert batches[-1].cursor == {"done": [graph.folder_id("inbox")]}
	assert "receivedDateTime ge 2024-01-01T00:00:00Z and receivedDateTime lt 2024-02-01T00:00:00Z" in range_filters(graph)
	assert len(range_filters(graph)) == 2  # three messages in pages of two: paged through nextLink


def test_range_leaves_the_delta_cursor_alone(graph, make_provider, make_config):
	listed = fill(graph)
	provider = make_provider(make_config(sync_start=date(2024, 2, 1)))
	synced, cursor, _ = fetch_all(provider)
	assert ids(synced) == listed[4:]
	older, _ = range_of(provider, since=date(2023, 1, 1))
	assert ids(older) == listed[:4]  # the start date does not cut a range: it has dates of its own
	again, _, _ = fetch_all(provider, cursor)
	assert again == []


def test_range_resumes_after_the_last_ids_handed_out(graph, make_provider, make_config):
	listed = [graph.add_message("inbox", datetime(2024, 1, 2) + timedelta(hours=n)) for n in range(7)]
	provider = make_provider(make_config(batch_size=3))
	first = next(iter(provider.fetch_range(SINCE, BEFORE)))
	assert ids(first.messages) == listed[:3] and first.remaining == 4
	rest, batches = range_of(provider, position=first.cursor)
	assert ids(rest) == listed[3:]
	assert range_of(provider, position=batches[-1].cursor)[0] == []


def test_range_reads_the_synced_folders_or_the_one_asked_for(graph, make_provider, make_config):
	clients = graph.add_folder("Clients")
	inbox = graph.add_message("inbox", datetime(2024, 1, 10))
	client = graph.add_message(clients, datetime(2024, 1, 11))
	sent = graph.add_message("sentitems", datetime(2024, 1, 12))
	graph.add_message("junkemail", datetime(2024, 1, 12))
	provider = make_provider(make_config(folders=["Inbox", "Clients", "Junk Email"], direction=BIDIRECTIONAL))
	everything, _ = range_of(provider)
	assert sorted(ids(everything)) == sorted([inbox, client, sent])
	assert [m.from_sent_folder for m in everything if m.provider_id == sent] == [True]
	assert ids(range_of(provider, folders=["Clients"])[0]) == [client]
	with pytest.raises(FolderMissing):
		range_of(provider, folders=["Archive"])


def test_range_in_manual_selection_takes_only_the_category(graph, make_provider, make_config):
	graph.add_message("inbox", datetime(2024, 1, 10))
	tagged = graph.add_message("inbox", datetime(2024, 1, 11), categories=["EmailSync"])
	provider = make_provider(make_config(direction=MANUAL_SELECTION))
	assert ids(range_of(provider)[0]) == [tagged]
