"""Bringing in older mail: the Sync Start Date is the admin's, moving it earlier backfills the gap exactly once
as history (no Issue), Import older mail per folder, Test Connection's preview, and importing an upload."""

import io
import zipfile
from datetime import datetime, timedelta, timezone

import frappe
import pytest
from dovecot import fill_mailbox
from factories import deliver, mail, make_account, make_party, new_mailbox, synced, unique, wait_for
from frappe.utils import add_days, getdate, today
from frappe.utils.background_jobs import is_job_enqueued

from email_sync.sync import backfill, upload_import
from email_sync.sync.preview import preview_sync
from email_sync.sync.runner import sync_account

NOW = datetime.now(timezone.utc)


@pytest.fixture
def party():
	return make_party("Backfill", "Robin")


def deliver_on(server, box, messages, days_ago: int, folder: str = "INBOX") -> None:
	"""Mail that arrived `days_ago` days ago (its INTERNALDATE, which IMAP searches by date read)."""
	when = (NOW - timedelta(days=days_ago)).replace(tzinfo=None)
	fill_mailbox(server.host, server.port, box.name, box.password, folder, messages, date=when, create=True)


def old_and_new(dovecot, box, party) -> None:
	deliver_on(dovecot, box, [mail(f"robin@{party.domain}", box.name, subject="Old order question",
		date=NOW - timedelta(days=20))], days_ago=20)  # fmt: skip
	new = datetime.now(timezone.utc) + timedelta(minutes=1)  # after the activation: new mail, not history
	deliver(dovecot, box, [mail(f"robin@{party.domain}", box.name, subject="New order question", date=new)])


def support_account(dovecot, box, start_days_ago: int = 5, **values) -> str:
	# Activated now, with Issues on: what a support mailbox switched on today looks like.
	return make_account(
		dovecot, box, create_issues=1, activated_on=None, sync_start_date=add_days(today(), -start_days_ago), **values
	)


def finished_logs(account: str, trigger: str = "Backfill") -> list:
	frappe.db.rollback()
	return frappe.get_all(
		"Email Sync Log",
		filters={"account": account, "triggered_by": trigger, "status": ("!=", "Running")},
		fields=["name", "status", "summary", "fetched", "filed", "already_synced", "error", "yielded"],
		order_by="creation asc",
	)


def test_a_new_account_shows_today_and_activation_keeps_the_chosen_date(dovecot):
	assert getdate(frappe.new_doc("Email Sync Account").sync_start_date) == getdate(today())
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, status="Draft", sync_start_date="2026-01-15", activated_on=None)
	doc = frappe.get_doc("Email Sync Account", account)
	doc.status = "Active"
	doc.save()
	assert str(doc.sync_start_date) == "2026-01-15"  # activation used to reset it to today
	doc.sync_start_date = None
	with pytest.raises(frappe.ValidationError, match="Sync Start Date"):
		doc.save()


def test_moving_the_start_date_earlier_backfills_the_gap_once_without_issues(dovecot, party):
	box = new_mailbox(dovecot)
	account = support_account(dovecot, box)
	old_and_new(dovecot, box, party)
	assert sync_account(account)["Filed"] == 1  # only the new one: the old one is before the start date
	cursor = frappe.db.get_value("Email Sync Account", account, "sync_cursor")
	frappe.db.commit()

	doc = frappe.get_doc("Email Sync Account", account)
	doc.sync_start_date = add_days(today(), -30)
	doc.save()
	frappe.db.commit()
	assert getdate(doc.history_from) == getdate(add_days(today(), -5))  # what the syncs had read back to
	assert is_job_enqueued(backfill.job_id(account))
	assert wait_for(lambda: finished_logs(account), 60)

	rows = {row.subject: row for row in synced(account)}
	old = rows["Old order question"]
	assert old.status == "Filed" and old.communication
	assert frappe.db.exists(
		"Communication Link", {"parent": old.communication, "link_doctype": "Customer", "link_name": party.customer}
	)
	issues = dict(frappe.get_all("Synced Email", filters={"account": account}, fields=["subject", "issue"], as_list=1))
	assert not issues["Old order question"] and issues["New order question"]  # older mail opens no Issue
	log = finished_logs(account)[0]
	assert log.status == "Success" and log.fetched == 1 and log.filed == 1
	assert log.summary.startswith("Backfill from ") and "1 fetched, 1 filed" in log.summary
	account_now = frappe.db.get_value("Email Sync Account", account, ["sync_cursor", "history_from"], as_dict=True)
	assert account_now.sync_cursor == cursor  # the sync's position is untouched
	assert getdate(account_now.history_from) == getdate(add_days(today(), -30))

	# Exactly once: the same range again adds nothing, and asking again is refused as already read.
	again = backfill.run_backfill(account, str(add_days(today(), -30)), str(add_days(today(), -5)))
	assert again["status"] == "Success" and again["Filed"] == 0 and again["already_synced"] == 1
	assert len(synced(account)) == 2
	with pytest.raises(frappe.ValidationError, match="already read"):
		backfill.start_backfill(account, add_days(today(), -30))
	# And the incremental sync still finds nothing new.
	assert sync_account(account).get("fetched", 0) == 0


def test_moving_the_start_date_later_only_changes_later_syncs(dovecot, party):
	box = new_mailbox(dovecot)
	account = support_account(dovecot, box)
	sync_account(account)
	doc = frappe.get_doc("Email Sync Account", account)
	doc.sync_start_date = add_days(today(), -1)
	doc.save()
	frappe.db.commit()
	assert str(doc.sync_start_date) == str(add_days(today(), -1))
	assert not is_job_enqueued(backfill.job_id(account))


def test_a_date_moved_before_the_first_sync_needs_no_backfill(dovecot, party):
	box = new_mailbox(dovecot)
	account = support_account(dovecot, box)
	old_and_new(dovecot, box, party)
	doc = frappe.get_doc("Email Sync Account", account)
	doc.sync_start_date = add_days(today(), -30)
	doc.save()
	frappe.db.commit()
	assert not is_job_enqueued(backfill.job_id(account))
	assert sync_account(account)["Filed"] == 2  # the first sync simply starts at the earlier date


def test_import_older_mail_of_one_folder(dovecot, party):
	box = new_mailbox(dovecot)
	folder = unique("Clients")
	deliver_on(dovecot, box, [mail(f"robin@{party.domain}", box.name, subject="Old in inbox")], days_ago=20)
	deliver_on(dovecot, box, [mail(f"robin@{party.domain}", box.name, subject="Old in folder")], 20, folder)
	account = support_account(dovecot, box, folders=[{"folder_name": "INBOX"}, {"folder_name": folder}])
	sync_account(account)
	assert synced(account) == []

	backfill.start_backfill(account, add_days(today(), -30), folder)
	frappe.db.commit()
	assert wait_for(lambda: finished_logs(account), 60)
	assert [row.subject for row in synced(account)] == ["Old in folder"]
	assert f"({folder})" in finished_logs(account)[0].summary
	# One folder is not the whole mailbox: what the account covers stays where it was.
	assert getdate(backfill.covered_from(frappe.get_doc("Email Sync Account", account))) == getdate(add_days(today(), -5))


def test_the_preview_shows_only_what_the_sync_will_take(dovecot, party):
	box = new_mailbox(dovecot)
	account = support_account(dovecot, box, status="Draft")
	old_and_new(dovecot, box, party)
	doc = frappe.get_doc("Email Sync Account", account)
	assert [row["subject"] for row in preview_sync(doc)] == ["New order question"]  # not the mail before the date

	doc.status = "Active"
	doc.save()
	sync_account(account)
	doc.reload()
	assert preview_sync(doc) == []  # synced: nothing is waiting
	deliver(dovecot, box, [mail(f"robin@{party.domain}", box.name, subject="Newest", date=NOW)])
	preview = preview_sync(doc)
	assert [row["subject"] for row in preview] == ["Newest"] and preview[0]["status"] == "Filed"


def upload(account: str, name: str, content: bytes) -> str:
	file = frappe.get_doc(
		{
			"doctype": "File",
			"file_name": name,
			"content": content,
			"is_private": 1,
			"attached_to_doctype": "Email Sync Account",
			"attached_to_name": account,
		}
	).insert(ignore_permissions=True)
	frappe.db.commit()
	return file.name


def zipped(files: dict[str, bytes]) -> bytes:
	buffer = io.BytesIO()
	with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
		for name, content in files.items():
			archive.writestr(name, content)
	return buffer.getvalue()


def mbox(*messages: bytes) -> bytes:
	return b"".join(b"From sender@example.org Mon Jan  1 00:00:00 2024\n" + m.replace(b"\r\n", b"\n") + b"\n" for m in messages)


def test_an_uploaded_zip_of_eml_and_mbox_is_imported_once_as_history_then_deleted(dovecot, party):
	box = new_mailbox(dovecot)
	account = support_account(dovecot, box)
	sender = f"robin@{party.domain}"
	content = zipped({
		"2019/request.eml": mail(sender, box.name, subject="Archived request"),
		"old.mbox": mbox(mail(sender, box.name, subject="Archived one"), mail(sender, box.name, subject="Archived two")),
		"notes.txt": b"not mail",
	})  # fmt: skip
	file = upload(account, "archive.zip", content)
	upload_import.start_upload_import(account, file)
	frappe.db.commit()
	assert wait_for(lambda: finished_logs(account, "Import"), 60)

	log = finished_logs(account, "Import")[0]
	assert log.status == "Success" and log.fetched == 3 and log.filed == 3
	assert log.summary.startswith("Import of archive.zip: 3 fetched, 3 filed")
	rows = frappe.get_all("Synced Email", filters={"account": account}, fields=["subject", "issue", "provider_id"])
	assert sorted(r.subject for r in rows) == ["Archived one", "Archived request", "Archived two"]
	assert not any(r.issue for r in rows)  # imported mail is history: no Issue
	# Each keeps the name it was uploaded under, never a path on the server.
	assert {r.provider_id for r in rows} == {
		"import:archive.zip/2019/request.eml", "import:archive.zip/old.mbox#0", "import:archive.zip/old.mbox#1"
	}
	assert not frappe.db.exists("File", file)  # customer mail does not linger as an attachment of the account

	# The same archive again adds nothing.
	upload_import.run_upload_import(account, upload(account, "archive.zip", content))
	assert finished_logs(account, "Import")[-1].already_synced == 3
	assert frappe.db.count("Synced Email", {"account": account}) == 3


@pytest.mark.parametrize(
	"name, content, reason",
	[
		("broken.zip", b"PK\x03\x04 this is not a zip", "is not a readable .zip file"),
		("empty.zip", zipped({"readme.txt": b"hello"}), "holds no .eml or .mbox files"),
		("box.mbox", b"Subject: no From line\n\nhello\n", "is not an mbox file"),
		("nothing.eml", b"", "is empty"),
	],
)
def test_a_bad_upload_says_what_is_wrong_and_is_deleted(dovecot, name, content, reason):
	box = new_mailbox(dovecot)
	account = support_account(dovecot, box)
	file = upload(account, name, content) if content else _empty_upload(account, name)
	result = upload_import.run_upload_import(account, file)
	assert result["status"] == "Failed" and reason in result["error"]
	log = finished_logs(account, "Import")[-1]
	assert log.status == "Failed" and reason in log.error
	assert not frappe.db.exists("File", file)


def _empty_upload(account: str, name: str) -> str:
	# Frappe refuses a File without content: write one, then empty it on disk.
	file = frappe.get_doc("File", upload(account, name, b"x"))
	with open(file.get_full_path(), "wb"):
		pass
	return file.name


def test_an_upload_that_is_not_mail_is_refused_at_once(dovecot):
	box = new_mailbox(dovecot)
	account = support_account(dovecot, box)
	file = upload(account, "photo.png", b"\x89PNG\r\n\x1a\n")
	with pytest.raises(frappe.ValidationError, match="not an uploaded .eml, .mbox or .zip"):
		upload_import.start_upload_import(account, file)
	assert not frappe.db.exists("File", file)


def test_a_long_backfill_continues_itself_and_files_everything_once(dovecot, party):
	box = new_mailbox(dovecot)
	subjects = [f"Old message {n}" for n in range(5)]
	deliver_on(dovecot, box, [mail(f"robin@{party.domain}", box.name, subject=s) for s in subjects], days_ago=20)
	account = support_account(dovecot, box, batch_size=2, frequency="Manual only")
	sync_account(account)
	settings = frappe.get_single("Email Sync Settings")
	settings.run_time_budget = 0.01  # every run stops after its first batch and queues its continuation
	settings.save()
	frappe.db.commit()
	try:
		backfill.start_backfill(account, add_days(today(), -30))
		frappe.db.commit()
		assert wait_for(lambda: finished_logs(account), 60)
	finally:
		settings.reload()
		settings.run_time_budget = 120
		settings.save()
		frappe.db.commit()
	logs = finished_logs(account)
	assert len(logs) == 1  # one row for the whole backfill, across its runs
	assert logs[0].yielded and logs[0].status == "Success" and logs[0].fetched == 5 and logs[0].filed == 5
	assert sorted(row.subject for row in synced(account)) == subjects


def test_a_public_upload_is_made_private_and_a_link_is_refused(dovecot):
	box = new_mailbox(dovecot)
	account = support_account(dovecot, box)
	file = frappe.get_doc({"doctype": "File", "file_name": "one.eml", "is_private": 0,
		"content": mail("a@example.org", box.name), "attached_to_doctype": "Email Sync Account",
		"attached_to_name": account}).insert(ignore_permissions=True)  # fmt: skip
	upload_import.start_upload_import(account, file.name)
	assert frappe.db.get_value("File", file.name, "is_private") == 1  # customer mail is never public
	link = frappe.get_doc({"doctype": "File", "file_url": "https://files.example/archive.zip",
		"attached_to_doctype": "Email Sync Account", "attached_to_name": account}).insert(ignore_permissions=True)  # fmt: skip
	with pytest.raises(frappe.ValidationError, match="not an uploaded"):
		upload_import.start_upload_import(account, link.name)
