"""A message the mail server will not hand out: one Error Synced Email while the rest of its folder is filed,
and Retry on it, on the real site against a real Dovecot storing Maildir (one file per message), where one
stored message is made unreadable as a damaged disk would."""

import json
import os

import frappe
import pytest
from dovecot import Dovecot, DovecotUnavailable, Mailbox
from factories import deliver, mail, make_account, make_party, new_mailbox, site_user, synced

from email_sync.email_sync.doctype.synced_email.synced_email import retry_download
from email_sync.sync.runner import sync_account


@pytest.fixture(scope="module")
def maildir_server():
	try:
		server = Dovecot.start(maildir=True, settings={"imap_fetch_failure": "no-after"})
	except DovecotUnavailable as e:
		if os.environ.get("EMAIL_SYNC_REQUIRE_DOVECOT"):
			pytest.fail(str(e))
		pytest.skip(str(e))
	yield server
	server.cleanup()


@pytest.fixture
def poisoned(maildir_server):
	"""An account whose INBOX holds three emails from a Contact; the second cannot be read from disk."""
	party = make_party("Poison", "Ann")
	user = new_mailbox(maildir_server)
	sender = f"ann@{party.domain}"
	deliver(maildir_server, user, [mail(sender, user.name, subject=f"Order {n}") for n in (1, 2, 3)])
	path = Mailbox(maildir_server, user).make_unreadable("INBOX", 2)
	account = make_account(maildir_server, user)
	return frappe._dict(account=account, party=party, path=path)


def error_rows(account: str) -> list:
	return synced(account, status="Error")


def test_a_poisoned_message_is_one_error_row_and_the_rest_is_filed(poisoned):
	counts = sync_account(poisoned.account, "Manual")

	assert counts["Filed"] == 2 and counts["Error"] == 1
	rows = synced(poisoned.account)
	assert sorted(r.subject for r in rows if r.status == "Filed") == ["Order 1", "Order 3"]
	[error] = error_rows(poisoned.account)
	assert error.decision_rule == "fetch-error:message_unavailable"
	assert "would not hand out this message" in error.reason and "Internal error" in error.reason
	assert frappe.db.get_value("Synced Email", error.name, "provider_id").endswith("/2")
	account = frappe.get_doc("Email Sync Account", poisoned.account)
	assert json.loads(account.sync_cursor)["folders"]["INBOX"]["last_uid"] == 3  # past it
	assert account.status == "Active" and not account.last_error

	# The next run does not stop at it again, nor add a second Error row.
	assert sync_account(poisoned.account, "Manual").get("fetched", 0) == 0
	assert len(error_rows(poisoned.account)) == 1


def test_retry_keeps_the_error_while_the_server_refuses_then_files_the_email(poisoned):
	sync_account(poisoned.account, "Manual")
	[error] = error_rows(poisoned.account)

	[still] = retry_download([error.name])
	assert still["status"] == "Error" and "Internal error" in still["message"] and "synced_email" not in still
	row = frappe.get_doc("Synced Email", error.name)
	assert row.status == "Error" and "Retry failed" in row.decision_history

	poisoned.path.chmod(0o644)  # the server hands it out again
	[result] = retry_download(json.dumps([error.name]))
	assert result["status"] == "Filed"
	assert not frappe.db.exists("Synced Email", error.name)  # the Error row became the filed email
	filed = frappe.get_doc("Synced Email", result["synced_email"])
	assert (filed.status, filed.subject, filed.account) == ("Filed", "Order 2", poisoned.account)
	assert filed.provider_id.endswith("/2") and "Downloaded on retry" in filed.decision_history
	assert poisoned.party.contact in filed.matched_contacts
	links = frappe.get_all(
		"Communication Link", filters={"parent": filed.communication, "link_name": poisoned.party.customer}
	)
	assert links, "the email is on its Customer's timeline"
	assert not error_rows(poisoned.account)
	assert sorted(r.subject for r in synced(poisoned.account, status="Filed")) == ["Order 1", "Order 2", "Order 3"]
	# The sync cursor is the sync's: a retry does not move it.
	cursor = json.loads(frappe.db.get_value("Email Sync Account", poisoned.account, "sync_cursor"))
	assert cursor["folders"]["INBOX"]["last_uid"] == 3


def test_retry_needs_write_permission_and_a_failed_download(poisoned):
	sync_account(poisoned.account, "Manual")
	[error] = error_rows(poisoned.account)
	filed = synced(poisoned.account, status="Filed")[0]

	with pytest.raises(frappe.ValidationError, match="nothing to retry"):
		retry_download([filed.name])
	with pytest.raises(frappe.ValidationError, match="at most 50"):  # each is a download while the user waits
		retry_download([error.name] + [f"missing-{n}" for n in range(50)])

	frappe.set_user(site_user("retry-reader", "Sales Manager"))  # may read Synced Emails, not write them
	with pytest.raises(frappe.PermissionError):
		retry_download([error.name])
	frappe.set_user("Administrator")
	assert frappe.db.get_value("Synced Email", error.name, "status") == "Error"
