"""GmailProvider with the real google-api-python-client and google-auth against a local Gmail API emulator.

No mocks of the client libraries: every call goes over HTTP to gmail_emulator.py (discovery-built URLs, batch
multipart requests and responses, the OAuth token endpoint). Waiting for throttling is recorded, not slept.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from datetime import date, datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from gmail_emulator import DROP

from email_sync.providers.base import (
	BIDIRECTIONAL,
	MANUAL_SELECTION,
	AccessRevoked,
	AccountClosed,
	AuthenticationFailed,
	ConnectionFailed,
	FolderMissing,
	MailboxNotHosted,
	MissingScopes,
	ProviderError,
	Throttled,
)
from email_sync.providers.gmail import GmailProvider, parse_push, verify_push_token
from email_sync.providers.google_oauth import GMAIL_READONLY, begin_sign_in, finish_sign_in

pytest_plugins = ["conftest_gmail"]

REDIRECT = "https://erp.example.com/api/method/email_sync.oauth.callback"


class Waits(list):
	"""Stands in for time.sleep: records each wait instead of sleeping."""

	def __call__(self, seconds):
		self.append(seconds)


def make_provider(config, waits=None, **kwargs) -> GmailProvider:
	kwargs.setdefault("backoff", 0.001)
	return GmailProvider(config, sleep=waits if waits is not None else Waits(), **kwargs)


def sync(provider, cursor=None):
	"""Run fetch to the end: (all messages, batches)."""
	batches = list(provider.fetch(cursor))
	return [m for b in batches for m in b.messages], batches


def fill(gmail, days, *, labels=("INBOX",), year=2024, month=3):
	return [gmail.add_message(labels=labels, date=datetime(year, month, d, 12)) for d in days]


# -- first sync ----------------------------------------------------------------------------------------------


def test_first_sync_from_sync_start_oldest_first_in_batches(gmail, gmail_config):
	old = fill(gmail, [1, 2, 3])
	new = fill(gmail, range(4, 21))
	gmail.add_message(labels=["SPAM"], date=datetime(2024, 3, 10))
	gmail.add_message(labels=["SENT"], date=datetime(2024, 3, 10))
	start_history = gmail.history_id
	config = gmail_config(sync_start=date(2024, 3, 4), batch_size=6)
	with make_provider(config) as provider:
		messages, batches = sync(provider)

	assert [
		m.provider_id for m in messages
	] == new  # oldest first, nothing before sync_start, no spam or sent
	assert not set(old) & {m.provider_id for m in messages}
	assert [len(b.messages) for b in batches] == [6, 6, 5]
	assert [b.remaining for b in batches] == [11, 5, 0]
	first = messages[0]
	assert first.raw == gmail.messages[first.provider_id].raw
	assert first.raw.startswith(b"Message-ID: <")
	assert first.received_at == datetime(2024, 3, 4, 12)
	assert first.thread_id == first.provider_id and first.folder == "INBOX" and not first.from_sent_folder
	# Until the listing is done the cursor has no history id; the final one is the id read before the listing.
	assert all(
		b.cursor["history_id"] is None and b.cursor["listing"]["labels"] == ["INBOX"] for b in batches[:-1]
	)
	assert batches[-1].cursor["history_id"] == str(start_history)
	assert batches[-1].cursor["labels"] == ["INBOX"] and "listing" not in batches[-1].cursor
	# The history id is read before messages.list, and all bodies come through batch requests.
	paths = [r.path for r in gmail.requests if not r.in_batch]
	assert paths.index("/gmail/v1/users/me/profile", 1) < paths.index("/gmail/v1/users/me/messages")
	assert gmail.count("/messages/", in_batch=False) == 0
	assert gmail.count("/messages/", in_batch=True) == 17
	listing = [r for r in gmail.requests if r.path == "/gmail/v1/users/me/messages"]
	assert listing[0].query["q"] == [f"after:{int(datetime(2024, 3, 4, tzinfo=timezone.utc).timestamp())}"]
	assert len(listing) == 3  # 17 ids, pages of 7


def test_mail_arriving_during_the_first_sync_is_not_lost(gmail, gmail_config):
	fill(gmail, range(1, 10))
	provider = make_provider(gmail_config(batch_size=4))
	provider.connect()
	fetching = provider.fetch(None)
	next(fetching)  # the listing is done; now mail arrives before the first sync has finished
	late = gmail.add_message(date=datetime(2024, 3, 20))
	rest = list(fetching)
	assert late not in {m.provider_id for b in rest for m in b.messages}
	messages, _ = sync(provider, rest[-1].cursor)
	assert [m.provider_id for m in messages] == [late]


def test_empty_mailbox_first_sync_still_stores_a_history_id(gmail, gmail_config):
	with make_provider(gmail_config()) as provider:
		messages, batches = sync(provider)
	assert messages == []
	assert len(batches) == 1 and batches[0].cursor["history_id"] == str(gmail.history_id)


def test_batch_bytes_close_a_batch_early(gmail, gmail_config):
	fill(gmail, range(1, 7))
	size = len(next(iter(gmail.messages.values())).raw)
	with make_provider(gmail_config(batch_size=100, batch_bytes=2 * size + 1)) as provider:
		messages, batches = sync(provider)
	assert len(messages) == 6
	assert [len(b.messages) for b in batches] == [3, 3]  # a batch closes once it reaches batch_bytes
	# Batch requests are sized by the average message seen so far: 1+1+1 before it is known, then 2+1.
	assert gmail.count("/batch") == 5


# -- incremental ---------------------------------------------------------------------------------------------


def test_incremental_sync_hands_out_only_new_mail(gmail, gmail_config):
	fill(gmail, range(1, 6))
	with make_provider(gmail_config()) as provider:
		_, batches = sync(provider)
		cursor = batches[-1].cursor
		arrived = [gmail.add_message() for _ in range(3)]
		gmail.add_message(labels=["SPAM"])
		gmail.add_message(labels=["SENT"])  # not synced when inbound only
		gmail.add_message(labels=["INBOX", "TRASH"])  # trashed at once: never read
		gets_before = gmail.count("/messages/", in_batch=True)
		messages, batches = sync(provider, cursor)
		assert [m.provider_id for m in messages] == arrived
		assert (
			gmail.count("/messages/", in_batch=True) - gets_before == 4
		)  # the trashed one is read, then dropped
		assert (
			gmail.count("/gmail/v1/users/me/messages", method="GET", in_batch=False) == 1
		)  # no listing again
		assert batches[-1].cursor["history_id"] == str(gmail.history_id)
		history = [r for r in gmail.requests if r.path.endswith("/history")]
		assert history[0].query["startHistoryId"] == [cursor["history_id"]]
		assert sorted(history[0].query["historyTypes"]) == ["labelAdded", "messageAdded"]
		# Nothing new: nothing to hand out, no batch.
		assert sync(provider, batches[-1].cursor) == ([], [])


def test_incremental_batches_carry_a_safe_history_id(gmail, gmail_config):
	with make_provider(gmail_config(batch_size=2)) as provider:
		_, batches = sync(provider)
		cursor = batches[-1].cursor
		arrived = [gmail.add_message() for _ in range(5)]
		batches = list(provider.fetch(cursor))
		assert [len(b.messages) for b in batches] == [2, 2, 1]
		# Resuming from the first batch's cursor hands out the rest (at worst again), never less.
		resumed, _ = sync(provider, batches[0].cursor)
		assert [m.provider_id for m in resumed] == arrived[2:]
		resumed, _ = sync(provider, batches[1].cursor)
		assert [m.provider_id for m in resumed] == arrived[4:]


def test_mail_arriving_while_history_pages_are_read_is_not_lost(gmail, gmail_config):
	with make_provider(gmail_config()) as provider:
		_, batches = sync(provider)
		arrived = [gmail.add_message() for _ in range(10)]  # two pages of history (7 a page)
		late = []

		def arrive_during_paging(request):
			if request.path.endswith("/history") and "pageToken" in request.query and not late:
				late.append(gmail.add_message())

		gmail.on_request = arrive_during_paging
		messages, batches = sync(provider, batches[-1].cursor)
		gmail.on_request = None
		assert [m.provider_id for m in messages] == arrived  # the late one is past the pages' snapshot
		messages, _ = sync(provider, batches[-1].cursor)
	assert [m.provider_id for m in messages] == late


def test_deleted_before_download_is_skipped(gmail, gmail_config):
	with make_provider(gmail_config()) as provider:
		_, batches = sync(provider)
		kept = gmail.add_message()
		gone = gmail.add_message()
		gmail.delete_message(gone)  # in the history, but 404 by the time it is fetched
		messages, _ = sync(provider, batches[-1].cursor)
	assert [m.provider_id for m in messages] == [kept]


# -- directions and labels -----------------------------------------------------------------------------------


def test_bidirectional_reads_sent_and_inbound_does_not(gmail, gmail_config):
	inbox = fill(gmail, [1, 2])
	sent = fill(gmail, [3, 4], labels=["SENT"])
	to_self = gmail.add_message(labels=["SENT", "INBOX"], date=datetime(2024, 3, 5))
	with make_provider(gmail_config(direction=BIDIRECTIONAL)) as provider:
		messages, batches = sync(provider)
	ids = [m.provider_id for m in messages]
	assert sorted(ids) == sorted([*inbox, *sent, to_self]) and len(ids) == len(set(ids))
	assert {m.provider_id for m in messages if m.from_sent_folder} == {*sent, to_self}
	assert {m.folder for m in messages if m.provider_id in sent} == {"SENT"}
	assert batches[-1].cursor["labels"] == ["INBOX", "SENT"]

	with make_provider(gmail_config()) as provider:
		messages, batches = sync(provider)
	assert sorted(m.provider_id for m in messages) == sorted([*inbox, to_self])
	assert batches[-1].cursor["labels"] == ["INBOX"]


def test_bidirectional_incremental_includes_sent(gmail, gmail_config):
	with make_provider(gmail_config(direction=BIDIRECTIONAL)) as provider:
		_, batches = sync(provider)
		sent = gmail.add_message(labels=["SENT"])
		draft = gmail.add_message(labels=["DRAFT"])
		messages, _ = sync(provider, batches[-1].cursor)
	assert [m.provider_id for m in messages] == [sent] and draft != sent
	assert messages[0].from_sent_folder and messages[0].folder == "SENT"


def test_manual_selection_reads_only_the_emailsync_label(gmail, gmail_config):
	label = gmail.add_label("EmailSync")
	fill(gmail, [1, 2, 3])
	chosen = gmail.add_message(labels=["INBOX", label], date=datetime(2024, 3, 4))
	archived = gmail.add_message(labels=[label], date=datetime(2024, 3, 5))
	with make_provider(gmail_config(direction=MANUAL_SELECTION)) as provider:
		messages, batches = sync(provider)
		assert [m.provider_id for m in messages] == [chosen, archived]
		assert {m.folder for m in messages} == {"EmailSync"}
		assert batches[-1].cursor["labels"] == [label]
		# Later the user labels an old message and new mail arrives unlabelled: only the labelled one comes.
		old = next(iter(gmail.messages))
		gmail.label_message(old, label)
		gmail.add_message()
		messages, _ = sync(provider, batches[-1].cursor)
	assert [m.provider_id for m in messages] == [old]


def test_manual_selection_without_the_label_says_how_to_create_it(gmail, gmail_config):
	config = gmail_config(direction=MANUAL_SELECTION)
	with make_provider(config) as provider, pytest.raises(FolderMissing) as caught:
		list(provider.fetch(None))
	assert caught.value.code == "folder_missing"
	assert '"EmailSync"' in caught.value.message and "create a label named" in caught.value.fix
	result = make_provider(config).test()
	assert not result.ok and "create a label named" in result.message


def test_list_folders_roles_and_configured_labels(gmail, gmail_config):
	clients = gmail.add_label("Clients/Acme")
	in_label = gmail.add_message(labels=[clients], date=datetime(2024, 3, 2))
	gmail.add_message(labels=["SPAM"], date=datetime(2024, 3, 3))
	config = gmail_config(folders=["clients/acme", "SPAM"])
	with make_provider(config) as provider:
		folders = {f.name: f.role for f in provider.list_folders()}
		assert folders["INBOX"] == "inbox" and folders["SENT"] == "sent" and folders["SPAM"] == "junk"
		assert folders["TRASH"] == "trash" and folders["DRAFT"] == "drafts" and folders["Clients/Acme"] == ""
		assert "UNREAD" not in folders
		messages, batches = sync(provider)
		assert [m.provider_id for m in messages] == [in_label] and messages[0].folder == "Clients/Acme"
		assert provider.skipped_folders == ["SPAM"] and batches[-1].cursor["labels"] == [clients]
	with make_provider(gmail_config(folders=["Nope"])) as provider, pytest.raises(FolderMissing):
		list(provider.fetch(None))
	result = make_provider(gmail_config()).test()
	assert (
		result.ok and gmail.address in result.message and "Clients/Acme" in {f.name for f in result.folders}
	)


def test_a_label_added_to_the_settings_is_listed_once(gmail, gmail_config):
	clients = gmail.add_label("Clients")
	fill(gmail, [1, 2])
	tagged = gmail.add_message(labels=[clients], date=datetime(2024, 3, 3))
	with make_provider(gmail_config()) as provider:
		_, batches = sync(provider)
	cursor = batches[-1].cursor
	new_mail = gmail.add_message()
	with make_provider(gmail_config(folders=["INBOX", "Clients"])) as provider:
		messages, batches = sync(provider, cursor)
		assert [m.provider_id for m in messages] == [new_mail, tagged]
		assert batches[-1].cursor["labels"] == ["INBOX", clients]
		assert sync(provider, batches[-1].cursor) == ([], [])


def test_test_connection_flags_a_different_google_account(gmail, gmail_config):
	result = make_provider(gmail_config(address="someone.else@example.com")).test()
	assert not result.ok and gmail.address in result.message


# -- resuming and expired history ----------------------------------------------------------------------------


def test_interrupted_first_sync_resumes_without_loss_or_redownload(gmail, gmail_config):
	ids = fill(gmail, range(1, 21))
	config = gmail_config(batch_size=5)
	with make_provider(config) as provider:
		fetching = provider.fetch(None)
		batches = [next(fetching), next(fetching)]
		fetching.close()  # the run dies here; the second batch's cursor is what the app committed
	assert [m.provider_id for b in batches for m in b.messages] == ids[:10]
	assert gmail.count("/messages/", in_batch=True) == 10  # nothing downloaded ahead of what was handed out
	cursor = batches[1].cursor
	assert cursor["history_id"] is None and cursor["listing"]["last_ids"] == ids[:10]
	arrived = gmail.add_message()  # after the listing started
	with make_provider(config) as provider:
		messages, batches = sync(provider, cursor)
		assert [m.provider_id for m in messages] == [*ids[10:], arrived]  # the label is listed again
		assert gmail.count("/messages/", in_batch=True) == 21  # the first ten are not downloaded again
		assert batches[-1].cursor["history_id"] == cursor["listing"]["start_history_id"]
		messages, _ = sync(provider, batches[-1].cursor)
	# The history from before the listing hands it out again: a duplicate the app dedupes, never a loss.
	assert [m.provider_id for m in messages] == [arrived]


def test_resume_after_the_marker_messages_were_deleted_loses_nothing(gmail, gmail_config):
	ids = fill(gmail, range(1, 13))
	config = gmail_config(batch_size=4)
	with make_provider(config) as provider:
		cursor = next(provider.fetch(None)).cursor
	for message_id in cursor["listing"]["last_ids"]:
		gmail.delete_message(message_id)
	with make_provider(config) as provider:
		messages, batches = sync(provider, cursor)
	assert set(ids[4:]) <= {m.provider_id for m in messages}  # at worst handed out again, never lost
	assert batches[-1].cursor["history_id"]


def test_expired_history_falls_back_to_a_bounded_relisting(gmail, gmail_config):
	fill(gmail, range(1, 8))
	with make_provider(gmail_config(sync_start=date(2024, 1, 1))) as provider:
		_, batches = sync(provider)
		cursor = batches[-1].cursor
		recent = [
			gmail.add_message(date=datetime.now(timezone.utc) - timedelta(hours=h)) for h in (30, 3, 2, 1)
		]
		gmail.expire_history()
		listed_before = gmail.count("/gmail/v1/users/me/messages", in_batch=False)
		messages, batches = sync(provider, cursor)
	ids = [m.provider_id for m in messages]
	assert ids == recent[1:]  # from a day before the last sync: the old mail is not listed again
	assert len(ids) == len(set(ids))
	assert batches[-1].cursor["history_id"] == str(gmail.history_id)
	assert batches[-1].cursor["history_id"] != cursor["history_id"]
	relisting = [r for r in gmail.requests if r.path == "/gmail/v1/users/me/messages"][listed_before:]
	assert relisting and relisting[0].query["q"] == [f"after:{cursor['synced_at'] - 86400}"]
	assert any(r.path.endswith("/history") and r.status == 404 for r in gmail.requests)


# -- throttling ----------------------------------------------------------------------------------------------


def test_retry_after_is_honoured_then_the_sync_succeeds(gmail, gmail_config):
	ids = fill(gmail, range(1, 6))
	waits = Waits()
	gmail.fail_next(429, count=3, retry_after=2, match="/batch")  # the whole batch request
	gmail.fail_next(429, count=2, retry_after=3, match="/messages/")  # single calls inside a batch
	with make_provider(gmail_config(), waits) as provider:
		messages, _ = sync(provider)
	assert [m.provider_id for m in messages] == ids
	assert waits == [2, 2, 2, 3]


def test_rate_limit_without_retry_after_backs_off_exponentially(gmail, gmail_config):
	fill(gmail, [1])
	waits = Waits()
	gmail.fail_next(403, count=3, reason="userRateLimitExceeded", message="User-rate limit exceeded.")
	gmail.fail_next(503, count=1, match="/batch")
	with make_provider(gmail_config(), waits, backoff=0.5) as provider:
		messages, _ = sync(provider)
	assert len(messages) == 1
	assert len(waits) == 4
	assert 0.25 <= waits[0] <= 0.5 and 0.5 <= waits[1] <= 1.0 and 1.0 <= waits[2] <= 2.0


def test_endless_throttling_raises_throttled_and_keeps_the_last_cursor(gmail, gmail_config):
	ids = fill(gmail, range(1, 10))
	waits = Waits()
	config = gmail_config(batch_size=3)
	provider = make_provider(config, waits, max_retries=4, max_wait=30)
	provider.connect()
	fetching = provider.fetch(None)
	first = next(fetching)
	gmail.fail_next(429, count=10_000, retry_after=5, match="/messages/")
	with pytest.raises(Throttled) as caught:
		next(fetching)
	assert caught.value.code == "throttled" and caught.value.transient
	assert len(waits) == 4 and sum(waits) <= 30
	assert [m.provider_id for m in first.messages] == ids[:3]
	gmail.clear_faults()
	messages, batches = sync(make_provider(config), first.cursor)
	assert [m.provider_id for m in messages] == ids[3:]
	assert batches[-1].cursor["history_id"]


def test_the_wait_budget_per_run_is_capped(gmail, gmail_config):
	fill(gmail, [1])
	waits = Waits()
	gmail.fail_next(429, count=100, retry_after=20, match="/history")
	with make_provider(gmail_config(), waits) as provider:
		_, batches = sync(provider)
		gmail.add_message()
		with pytest.raises(Throttled):
			sync(provider, batches[-1].cursor)
	assert waits == [20, 20, 20]  # a fourth wait would pass the 60 s budget


# -- a message Gmail will not hand out -----------------------------------------------------------------------


@pytest.mark.parametrize(
	("status", "reason", "text"),
	[(400, "failedPrecondition", "Precondition check failed."), (500, "backendError", "Internal error encountered.")],
)
def test_a_message_gmail_will_not_hand_out_is_an_error_item(gmail, gmail_config, status, reason, text):
	"""A refused batch part (400 at once, 500 after the retries) costs that message, not the label."""
	ids = fill(gmail, range(1, 8))
	bad = ids[3]
	gmail.poison(bad, status, reason, text)
	waits = Waits()
	with make_provider(gmail_config(batch_size=3), waits) as provider:
		messages, batches = sync(provider)
	assert [m.provider_id for m in messages] == ids
	failed = next(m for m in messages if m.provider_id == bad)
	assert failed.failed and failed.raw == b"" and failed.error_code == "message_unavailable"
	assert text in failed.error and f"HTTP {status}" in failed.error
	assert failed.received_at == datetime(2024, 3, 4, 12) and failed.folder == "INBOX" and failed.thread_id
	assert all(not m.failed and m.raw for m in messages if m.provider_id != bad)
	assert len(waits) == (0 if status == 400 else 5)  # a 500 is retried first
	# The cursor is past it: the next run hands out new mail only.
	new = gmail.add_message()
	again, _ = sync(make_provider(gmail_config()), batches[-1].cursor)
	assert [m.provider_id for m in again] == [new]


def test_an_unreadable_raw_message_is_an_error_item(gmail, gmail_config):
	ids = fill(gmail, range(1, 4))
	original = gmail._get_message

	def broken(message_id, query):
		status, headers, body = original(message_id, query)
		if message_id == ids[1] and (query.get("format") or [""])[0] == "raw":
			data = json.loads(body)
			data["raw"] = "%%% not base64 %%%"
			body = json.dumps(data).encode()
		return status, headers, body

	gmail._get_message = broken
	with make_provider(gmail_config()) as provider:
		messages, _ = sync(provider)
	assert [m.provider_id for m in messages] == ids
	assert messages[1].failed and "unreadable encoding" in messages[1].error
	assert not messages[0].failed and not messages[2].failed


@pytest.mark.parametrize(
	("status", "reason", "error"),
	[(429, "rateLimitExceeded", Throttled), (403, "forbidden", ProviderError), (401, "authError", AccessRevoked)],
)
def test_account_or_service_trouble_on_a_download_still_stops_the_run(gmail, gmail_config, status, reason, error):
	ids = fill(gmail, range(1, 7))
	gmail.poison(ids[4], status, reason, "Refused.")
	with make_provider(gmail_config(batch_size=3)) as provider:
		fetching = provider.fetch(None)
		first = next(fetching)
		with pytest.raises(error):
			next(fetching)
	assert [m.provider_id for m in first.messages] == ids[:3]


def test_a_message_whose_metadata_fails_too_stops_the_run(gmail, gmail_config):
	"""format=raw keeps failing and so does the small check: an outage, not one bad message."""
	ids = fill(gmail, range(1, 3))
	gmail.poison(ids[1], 500)
	gmail.fail_next(500, count=1000, match=f"/messages/{ids[1]}")
	with make_provider(gmail_config()) as provider, pytest.raises(Throttled):
		sync(provider)


# -- tokens --------------------------------------------------------------------------------------------------


def test_token_expiry_mid_sync_is_refreshed_transparently(gmail, gmail_config):
	ids = fill(gmail, range(1, 10))
	refreshed = []
	config = gmail_config(batch_size=3, refreshed=refreshed)
	with make_provider(config) as provider:
		fetching = provider.fetch(None)
		handed = [m.provider_id for m in next(fetching).messages]
		assert refreshed == []
		gmail.expire_access_tokens()  # the server stops taking the token; the client still thinks it is valid
		handed += [m.provider_id for b in fetching for m in b.messages]
		assert handed == ids
		assert gmail.refreshes == 1 and len(refreshed) == 1
		tokens = refreshed[0]
		assert tokens.access_token and tokens.access_token != config.oauth.access_token
		assert tokens.refresh_token == config.oauth.refresh_token and tokens.expires_at > time.time()
		assert gmail.access_tokens[tokens.access_token]["expires"] > time.time()
		# API calls outside batches refresh too.
		gmail.expire_access_tokens()
		provider.list_folders()
	assert gmail.refreshes == 2 and len(refreshed) == 2


def test_missing_or_lapsed_access_token_is_refreshed_before_the_first_call(gmail, gmail_config):
	refreshed = []
	config = gmail_config(refreshed=refreshed)
	config.oauth.access_token = ""
	with make_provider(config) as provider:
		assert provider.email_address == gmail.address
	assert len(refreshed) == 1
	config = gmail_config(refreshed=refreshed)
	config.oauth.expires_at = time.time() - 60
	with make_provider(config):
		pass
	assert len(refreshed) == 2 and gmail.count("/profile") == 2


def test_revoked_grant_raises_access_revoked(gmail, gmail_config):
	config = gmail_config()
	gmail.revoke_grant()
	with pytest.raises(AccessRevoked) as caught:
		make_provider(config).connect()
	assert caught.value.code == "access_revoked"
	assert "invalid_grant" in caught.value.message
	assert "Reconnect" in caught.value.fix


def test_grant_revoked_mid_sync_raises_access_revoked(gmail, gmail_config):
	fill(gmail, range(1, 7))
	with make_provider(gmail_config(batch_size=3)) as provider:
		fetching = provider.fetch(None)
		next(fetching)
		gmail.revoke_grant()
		with pytest.raises(AccessRevoked):
			next(fetching)


def test_not_connected_account(gmail, gmail_config):
	config = gmail_config()
	config.oauth = None
	with pytest.raises(AccessRevoked) as caught:
		make_provider(config).connect()
	assert "Connect" in caught.value.fix


# -- errors --------------------------------------------------------------------------------------------------


def test_token_without_the_gmail_scope_raises_missing_scopes(gmail, gmail_config):
	config = gmail_config(scopes=("openid", "email"))
	with pytest.raises(MissingScopes) as caught:
		make_provider(config).connect()
	assert caught.value.code == "missing_scopes" and "insufficient" in caught.value.message


def test_mailbox_without_gmail_raises_mailbox_not_hosted(gmail, gmail_config):
	gmail.mail_enabled = False
	with pytest.raises(MailboxNotHosted) as caught:
		make_provider(gmail_config()).connect()
	assert caught.value.code == "mailbox_not_hosted" and "Mail service not enabled" in caught.value.message


def test_a_workspace_user_without_gmail_is_told_to_ask_the_admin(gmail, gmail_config):
	"""Gmail's bare 400 "Precondition check failed." for a user whose Gmail service is off (or never set up)."""
	gmail.workspace_refusal = "precondition"
	with pytest.raises(MailboxNotHosted) as caught:
		make_provider(gmail_config()).connect()
	assert caught.value.code == "gmail_not_enabled"
	assert "Precondition check failed." in caught.value.message and gmail.address in caught.value.message
	assert "administrator" in caught.value.fix and "turn Gmail on" in caught.value.fix
	result = make_provider(gmail_config()).test()
	assert not result.ok and "turn Gmail on" in result.message


def test_gmail_disabled_by_domain_policy_is_told_to_ask_the_admin(gmail, gmail_config):
	gmail.workspace_refusal = "domain_policy"
	with pytest.raises(ProviderError) as caught:
		make_provider(gmail_config()).connect()
	assert caught.value.code == "gmail_blocked_by_admin" and not isinstance(caught.value, AccountClosed)
	assert "disabled Gmail apps" in caught.value.message
	assert "administrator" in caught.value.fix and "API controls" in caught.value.fix


def test_a_refresh_token_lost_after_7_days_says_publish_the_app(gmail, gmail_config):
	"""An OAuth app left in Testing mode: Google ends its refresh tokens after 7 days."""
	gmail.testing_mode = True
	config = gmail_config()
	config.oauth.access_token = ""
	make_provider(config).connect()  # day 1: fine
	gmail.refresh_token_age_days = 8
	with pytest.raises(AccessRevoked) as caught:
		make_provider(config).connect()
	assert "Token has been expired or revoked." in caught.value.message
	assert "Testing" in caught.value.fix and "publish" in caught.value.fix.lower()
	assert caught.value.fix.rstrip(".").endswith("Reconnect")


@pytest.mark.parametrize(
	"status, reason, message, error, code",
	[
		(403, "forbidden", "Access denied by domain policy.", ProviderError, "gmail_blocked_by_admin"),
		(403, "forbidden", "The user account is disabled.", AccountClosed, "account_closed"),
		(403, "dailyLimitExceeded", "Daily Limit Exceeded", Throttled, "throttled"),
		(400, "invalidArgument", "Invalid id value", ProviderError, "gmail_error"),
		(
			403,
			"accessNotConfigured",
			"Gmail API has not been used in project 123 before or it is disabled.",
			ProviderError,
			"gmail_api_disabled",
		),
	],
)
def test_api_errors_map_to_provider_errors(gmail, gmail_config, status, reason, message, error, code):
	gmail.fail_next(status, reason=reason, message=message, match="/labels")
	with make_provider(gmail_config()) as provider, pytest.raises(error) as caught:
		provider.list_folders()
	assert caught.value.code == code and message in caught.value.message


def test_unreachable_gmail_raises_connection_failed(gmail, gmail_config):
	config = gmail_config(api_base="http://127.0.0.1:9/")
	waits = Waits()
	with pytest.raises(ConnectionFailed) as caught:
		make_provider(config, waits).connect()
	assert caught.value.transient and caught.value.code == "connection_failed"
	assert len(waits) == 2  # tried three times


def test_dropped_connections_are_retried_then_reported(gmail, gmail_config):
	waits = Waits()
	with make_provider(gmail_config(), waits) as provider:
		gmail.fail_next(DROP, count=3, match="/labels")
		assert provider.list_folders()
		assert gmail.count("/labels") == 4 and len(waits) >= 1
		gmail.fail_next(DROP, count=100, match="/labels")
		with pytest.raises(ConnectionFailed) as caught:
			provider.list_folders()
	assert "listing labels" in caught.value.message


# -- push notifications --------------------------------------------------------------------------------------


def envelope(payload, **message):
	data = base64.b64encode(json.dumps(payload).encode()).decode()
	return {
		"message": {
			"data": data,
			"messageId": "2070443601311540",
			"publishTime": "2024-03-01T12:00:00Z",
			**message,
		},
		"subscription": "projects/acme/subscriptions/gmail-push",
	}


def test_parse_push_reads_a_pubsub_envelope():
	parsed = parse_push(envelope({"emailAddress": "Me@Example.com", "historyId": 9876543210}))
	assert parsed == {
		"email_address": "me@example.com",
		"history_id": "9876543210",
		"message_id": "2070443601311540",
		"subscription": "projects/acme/subscriptions/gmail-push",
	}
	assert parse_push(envelope({"emailAddress": "a@b.c", "historyId": "12"}))["history_id"] == "12"


@pytest.mark.parametrize(
	"bad",
	[
		None,
		[],
		{},
		{"message": "x"},
		{"message": {}},
		{"message": {"data": "!!!not base64!!!"}},
		{"message": {"data": base64.b64encode(b"not json").decode()}},
		{"message": {"data": base64.b64encode(b"[1, 2]").decode()}},
		envelope({"historyId": "12"}),
		envelope({"emailAddress": "a@b.c"}),
		envelope({"emailAddress": "a@b.c", "historyId": "twelve"}),
		envelope({"emailAddress": "a@b.c", "historyId": True}),
	],
)
def test_parse_push_rejects_malformed_envelopes(bad):
	with pytest.raises(ProviderError) as caught:
		parse_push(bad)
	assert caught.value.code == "bad_push"


AUDIENCE = "https://erp.example.com/api/method/email_sync.push.gmail"
PUSHER = "gmail-push@acme-project.iam.gserviceaccount.com"


def test_verify_push_jwt_accepts_the_pubsub_oidc_token(gmail):
	from email_sync.providers.gmail import verify_push_jwt

	claims = verify_push_jwt(f"Bearer {gmail.push_jwt(AUDIENCE, PUSHER)}", AUDIENCE, PUSHER, gmail.certs_url)
	assert claims["email"] == PUSHER and claims["aud"] == AUDIENCE


@pytest.mark.parametrize(
	("header", "why"),
	[
		(lambda g: "", "no OIDC token"),
		(lambda g: "Basic abc", "no OIDC token"),
		(lambda g: "Bearer " + g.push_jwt("https://elsewhere.example/push", PUSHER), "not valid"),
		(lambda g: "Bearer " + g.push_jwt(AUDIENCE, "someone@evil.example"), "not " + PUSHER),
		(lambda g: "Bearer " + g.push_jwt(AUDIENCE, PUSHER, lifetime=-600), "not valid"),
		(lambda g: "Bearer " + g.push_jwt(AUDIENCE, PUSHER, issuer="https://evil.example"), "not valid"),
		(lambda g: "Bearer " + g.push_jwt(AUDIENCE, PUSHER, signed_by_google=False), "not valid"),
		(lambda g: "Bearer not.a.jwt", "not valid"),
	],
	ids=["missing", "not bearer", "audience", "service account", "expired", "issuer", "signature", "garbage"],
)
def test_verify_push_jwt_refuses_anything_else(gmail, header, why):
	from email_sync.providers.gmail import verify_push_jwt

	with pytest.raises(ProviderError) as caught:
		verify_push_jwt(header(gmail), AUDIENCE, PUSHER, gmail.certs_url)
	assert caught.value.code == "bad_push_token" and why in caught.value.message


def test_google_certificates_are_fetched_once_per_max_age(gmail):
	"""Each push is verified against Google's certificates, fetched only when the cached copy is older than
	their Cache-Control max-age says."""
	from email_sync.providers.gmail import CertificateCache, verify_push_jwt

	now = [1000.0]
	cache = CertificateCache(clock=lambda: now[0])
	gmail.certs_max_age = 600

	def push(**options) -> dict:
		header = f"Bearer {gmail.push_jwt(AUDIENCE, PUSHER, **options)}"
		return verify_push_jwt(header, AUDIENCE, PUSHER, gmail.certs_url, cache)

	for _ in range(5):
		assert push()["email"] == PUSHER
	assert gmail.certs_fetches == 1
	with pytest.raises(ProviderError):  # a forged push is checked against the cached copy as well
		push(signed_by_google=False)
	now[0] += 599
	push()
	assert gmail.certs_fetches == 1
	now[0] += 2  # past max-age
	push()
	push()
	assert gmail.certs_fetches == 2

	gmail.certs_max_age = 10**9  # a cache never keeps them longer than a day
	now[0] += 600
	push()
	assert gmail.certs_fetches == 3
	now[0] += CertificateCache.MAX_SECONDS - 1
	push()
	assert gmail.certs_fetches == 3
	now[0] += 2
	push()
	assert gmail.certs_fetches == 4


def test_a_rotated_google_key_fetches_the_certificates_again_at_most_once_a_minute(gmail):
	from email_sync.providers.gmail import CertificateCache, verify_push_jwt

	now = [1000.0]
	cache = CertificateCache(clock=lambda: now[0])

	def header() -> str:
		return f"Bearer {gmail.push_jwt(AUDIENCE, PUSHER)}"

	verify_push_jwt(header(), AUDIENCE, PUSHER, gmail.certs_url, cache)
	gmail._google_key = None  # Google signs with a new key from now on
	with pytest.raises(ProviderError):  # the cached certificates are too young to fetch again
		verify_push_jwt(header(), AUDIENCE, PUSHER, gmail.certs_url, cache)
	assert gmail.certs_fetches == 1
	now[0] += CertificateCache.REFETCH_SECONDS
	assert verify_push_jwt(header(), AUDIENCE, PUSHER, gmail.certs_url, cache)["email"] == PUSHER
	assert gmail.certs_fetches == 2


def test_verify_push_token():
	assert verify_push_token("s3cret-token", "s3cret-token")
	assert not verify_push_token("s3cret-token", "s3cret-tokeN")
	assert not verify_push_token("s3cret-token", "")
	assert not verify_push_token("", "")
	assert not verify_push_token("s3cret-token", None)


def test_watch_and_stop_reach_gmail(gmail, gmail_config):
	with make_provider(gmail_config(direction=BIDIRECTIONAL)) as provider:
		watch = provider.start_watch("projects/acme/topics/gmail")
		assert gmail.watch == {
			"topicName": "projects/acme/topics/gmail",
			"labelIds": ["INBOX", "SENT"],
			"labelFilterBehavior": "include",
		}
		assert watch["history_id"] == str(gmail.history_id)
		assert watch["expiration"] > time.time() * 1000
		provider.start_watch("projects/acme/topics/gmail", ["INBOX"])
		assert gmail.watch["labelIds"] == ["INBOX"]
		with pytest.raises(ProviderError) as caught:
			provider.start_watch("not-a-topic")
		assert caught.value.code == "gmail_error" and "topicName" in caught.value.message
		provider.stop_watch()
	assert gmail.stops == 1 and gmail.watch is None


# -- OAuth ---------------------------------------------------------------------------------------------------


def test_sign_in_url_asks_for_offline_gmail_access_with_pkce():
	url, verifier = begin_sign_in("client-1", "secret-1", REDIRECT, "state-xyz", login_hint="me@example.com")
	parts = urlsplit(url)
	query = {k: v[0] for k, v in parse_qs(parts.query).items()}
	assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "https://accounts.google.com/o/oauth2/v2/auth"
	challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
	assert query == {
		"client_id": "client-1",
		"redirect_uri": REDIRECT,
		"response_type": "code",
		"scope": GMAIL_READONLY,
		"access_type": "offline",
		"prompt": "consent",
		"include_granted_scopes": "true",
		"state": "state-xyz",
		"login_hint": "me@example.com",
		"code_challenge": challenge,
		"code_challenge_method": "S256",
	}
	assert 43 <= len(verifier) <= 128 and repr(verifier) == "'********'"  # RFC 7636; never in a traceback
	assert begin_sign_in("client-1", "secret-1", REDIRECT, "state-xyz")[1] != verifier  # a new one each time


def consent(gmail, state="st-1"):
	"""Follow the consent page like a browser would: the redirect's code and state, and the sign-in's verifier."""
	url, verifier = begin_sign_in(gmail.client_id, gmail.client_secret, REDIRECT, state, auth_base=gmail.base)
	response = requests.get(url, allow_redirects=False, timeout=10)
	assert response.status_code == 302
	location = urlsplit(response.headers["Location"])
	assert f"{location.scheme}://{location.netloc}{location.path}" == REDIRECT
	return {**{k: v[0] for k, v in parse_qs(location.query).items()}, "verifier": verifier}


def finish(gmail, answer, **overrides):
	values = {
		"client_id": gmail.client_id,
		"client_secret": gmail.client_secret,
		"code": answer["code"],
		"redirect_uri": REDIRECT,
		"code_verifier": answer["verifier"],
		"auth_base": gmail.base,
	}
	return finish_sign_in(**{**values, **overrides})


def test_sign_in_against_the_token_endpoint(gmail, gmail_config):
	answer = consent(gmail)
	assert answer["state"] == "st-1"
	tokens = finish(gmail, answer)
	assert tokens.refresh_token and tokens.access_token and tokens.scopes == [GMAIL_READONLY]
	assert tokens.expires_at > time.time() + 3000
	assert gmail.pkce_checked == 1  # the emulator checked the verifier against the challenge
	with make_provider(gmail_config(oauth=tokens)) as provider:  # the tokens work
		assert provider.email_address == gmail.address
	with pytest.raises(AccessRevoked) as caught:  # a code works once
		finish(gmail, answer)
	assert "Connect again" in caught.value.fix


def test_the_code_is_worth_nothing_without_its_verifier(gmail):
	"""The consent page got the S256 challenge: another verifier, or none, is refused."""
	for wrong in (consent(gmail, "other")["verifier"], ""):
		with pytest.raises(ProviderError) as caught:
			finish(gmail, consent(gmail), code_verifier=wrong)
		assert "verifier" in caught.value.message
	assert gmail.pkce_checked == 0


def test_sign_in_errors(gmail):
	answer = consent(gmail)
	with pytest.raises(AuthenticationFailed) as caught:
		finish(gmail, answer, client_secret="wrong-secret")
	assert "client" in caught.value.message and "Email Sync Settings" in caught.value.fix
	with pytest.raises(ProviderError) as caught:
		finish(gmail, answer, redirect_uri=REDIRECT + "/other")
	assert caught.value.code == "redirect_uri_mismatch"
	gmail.consent_scopes = set()  # the user unticked "read your email"
	answer = consent(gmail)
	with pytest.raises(MissingScopes):
		finish(gmail, answer)
	with pytest.raises(ConnectionFailed):
		finish(gmail, answer, auth_base="http://127.0.0.1:9")
	gmail.fail_next(503, match="/token")
	with pytest.raises(ConnectionFailed):
		finish(gmail, consent(gmail))


def test_revoke_ends_the_grant_and_never_raises(gmail, gmail_config):
	config = gmail_config()
	provider = make_provider(config)
	assert provider.revoke() is True
	assert gmail.refresh_tokens[config.oauth.refresh_token]["revoked"]
	with pytest.raises(AccessRevoked):
		provider.connect()
	assert provider.revoke() is True  # already revoked: nothing left to revoke
	config.auth_base = "http://127.0.0.1:9"
	assert make_provider(config).revoke() is False
	config = gmail_config()
	gmail.fail_next(503, match="/revoke")  # Google failing: not revoked, and no exception
	assert make_provider(config).revoke() is False
	assert not gmail.refresh_tokens[config.oauth.refresh_token]["revoked"]
