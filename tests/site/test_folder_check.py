"""A wrong folder name is caught on save, told apart from a failed connection, and explained at sync time."""

import frappe
import pytest
from factories import make_account, new_mailbox

from email_sync import api
from email_sync.sync.runner import sync_account


def account_with_folders(server, user, *names, **values) -> str:
	return make_account(server, user, folders=[{"folder_name": n} for n in names], **values)


def test_save_with_a_missing_folder_is_refused_naming_it_and_the_existing_ones(dovecot):
	user = new_mailbox(dovecot)
	with pytest.raises(frappe.ValidationError) as refused:
		account_with_folders(dovecot, user, "INBOX", "Kunden", "Archiv")
	message = str(refused.value)
	assert '"Kunden", "Archiv" do not exist' in message
	assert "Folders that exist:" in message and "INBOX" in message and "Sent" in message


def test_existing_folders_save_and_a_draft_changing_them_is_checked_too(dovecot):
	user = new_mailbox(dovecot)
	account = account_with_folders(dovecot, user, "INBOX", "Sent")
	doc = frappe.get_doc("Email Sync Account", account)
	doc.status = "Draft"
	doc.save()
	doc.append("folders", {"folder_name": "Kunden"})
	with pytest.raises(frappe.ValidationError, match='"Kunden" does not exist'):
		doc.save()


def test_unreachable_server_warns_but_saves(dovecot):
	user = new_mailbox(dovecot)
	frappe.clear_messages()
	account = account_with_folders(dovecot, user, "Kunden", imap_port=1)  # nothing listens there
	assert frappe.db.exists("Email Sync Account", account)
	warnings = [frappe.parse_json(m) for m in frappe.local.message_log]
	assert any("could not be checked" in w.get("message", "") for w in warnings)


def test_test_connection_says_connected_but_the_folder_is_missing(dovecot):
	user = new_mailbox(dovecot)
	account = account_with_folders(dovecot, user, "INBOX")
	frappe.db.set_value("Email Sync Folder", {"parent": account}, "folder_name", "Kunden")  # renamed since
	frappe.db.commit()
	result = api.test_connection(account)
	assert not result["ok"] and result["connected"] and result["code"] == "folder_missing"
	assert result["message"].startswith('Connected, but the folder "Kunden" does not exist')
	assert {"INBOX", "Sent"} <= {f["name"] for f in result["folders"]}

	broken = api.test_connection(make_account(dovecot, new_mailbox(dovecot), imap_port=1))
	assert not broken["connected"] and not broken["folders"]


def test_missing_folder_at_sync_time_names_it_and_the_existing_ones(dovecot):
	user = new_mailbox(dovecot)
	account = account_with_folders(dovecot, user, "INBOX")
	frappe.db.set_value("Email Sync Folder", {"parent": account}, "folder_name", "Kunden")
	frappe.db.commit()
	sync_account(account)
	doc = frappe.get_doc("Email Sync Account", account)
	assert doc.last_error_code == "folder_missing" and '"Kunden"' in doc.last_error
	assert 'Remove "Kunden"' in doc.last_error_fix and "Folders that exist:" in doc.last_error_fix
	assert "INBOX" in doc.last_error_fix
