"""Company mailboxes on the real site: faults real tenants hit, against the local emulators of tier 1."""

from datetime import datetime, timezone

import frappe
import pytest
from conftest import set_site_config
from factories import make_contact, make_customer, synced, unique
from frappe.utils.password import set_encrypted_password
from gmail_emulator import GmailEmulator  # tests/providers is on the path (conftest)

from email_sync.sync.runner import sync_account


@pytest.fixture
def gmail():
	emulator = GmailEmulator(address=f"{unique('gm')}@workspace.example").start()
	settings = frappe.get_single("Email Sync Settings")
	settings.google_client_id, settings.google_client_secret = emulator.client_id, emulator.client_secret
	settings.save()
	set_site_config("email_sync_endpoints", {"google_auth": emulator.base, "google_api": emulator.url})
	frappe.db.commit()
	yield emulator
	set_site_config("email_sync_endpoints", None)
	emulator.stop()


def gmail_account(gmail) -> str:
	tokens = gmail.issue_tokens()
	name = frappe.get_doc(
		{"doctype": "Email Sync Account", "provider": "Gmail", "email_address": gmail.address, "status": "Active",
		 "sync_start_date": "2000-01-01", "auth_type": "OAuth"}
	).insert().name
	set_encrypted_password("Email Sync Account", name, tokens["refresh_token"], "refresh_token")
	frappe.db.commit()
	return name


def test_a_message_the_provider_will_not_hand_out_is_an_error_synced_email(gmail):
	domain = f"{unique('umbrella')}.test"
	make_contact("Lee", [f"lee@{domain}"], make_customer(f"Umbrella {domain}"))
	day = datetime(2026, 11, 20, tzinfo=timezone.utc)
	gmail.add_message(sender=f"lee@{domain}", subject="Before", date=day)
	bad = gmail.add_message(sender=f"lee@{domain}", subject="Signed", date=day.replace(hour=1))
	gmail.add_message(sender=f"lee@{domain}", subject="After", date=day.replace(hour=2))
	gmail.poison(bad, 400, "failedPrecondition", "Precondition check failed.")
	account = gmail_account(gmail)

	counts = sync_account(account)
	assert (counts.get("Filed"), counts.get("Error")) == (2, 1), counts
	rows = {r.subject or "": r for r in synced(account)}
	error = rows[""]
	assert error.status == "Error" and error.decision_rule == "fetch-error:message_unavailable"
	assert "Precondition check failed." in error.reason
	assert frappe.db.get_value("Synced Email", error.name, "provider_id") == bad
	assert {rows["Before"].status, rows["After"].status} == {"Filed"}
	assert frappe.db.get_value("Email Sync Account", account, "last_error") in (None, "")

	# The cursor moved past it: the next run files new mail and does not record the bad one twice.
	gmail.add_message(sender=f"lee@{domain}", subject="Later")
	counts = sync_account(account)
	assert counts.get("Filed") == 1 and not counts.get("Error"), counts
	assert len(synced(account)) == 4
