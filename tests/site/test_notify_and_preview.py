"""Notifications to the people the settings name, and a filter's preview that changes nothing."""

import frappe
import pytest
from factories import site_user, deliver, mail, make_account, make_contact, make_customer, new_mailbox, synced, unique, wait_for

from email_sync.api import preview_filter
from email_sync.sync.runner import sync_account


@pytest.fixture
def watcher():
	user = frappe._dict(name=site_user("lead", "Support Team"))
	settings = frappe.get_single("Email Sync Settings")
	for event in ("New Issue from Email", "High-Priority Email", "Emails Need Review", "Sync Error"):
		settings.append("notifications", {"event": event, "user": user.name, "channel": "In-app"})
	settings.save()
	frappe.db.commit()
	yield user.name
	settings.reload()
	settings.set("notifications", [r for r in settings.notifications if r.user != user.name])
	settings.save()
	frappe.db.commit()


def subjects_for(user, expected: int, since):
	"""The user's notification subjects since `since`, once `expected` exist (a background job makes them)."""

	def subjects():
		found = frappe.get_all("Notification Log", filters={"for_user": user, "creation": (">=", since)}, pluck="subject")
		return found if len(found) >= expected else None

	return wait_for(subjects, queue="default") or []


def test_new_issue_high_priority_review_and_errors_are_notified(dovecot, watcher):
	started = frappe.utils.now_datetime().replace(microsecond=0)
	domain = f"{unique('acme')}.test"
	make_contact("Ana", [f"ana@{domain}"], make_customer(f"Acme {domain}"))
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, create_issues=1)
	deliver(dovecot, box, [
		mail(f"ana@{domain}", box.name, subject="Emergency: line stopped"),
		mail("who@unknown.test", box.name, subject="hello?"),
	])
	sync_account(account)
	subjects = subjects_for(watcher, 3, started)
	assert any(s.startswith("New Issue") and "Emergency" in s for s in subjects)
	assert any(s.startswith("High-priority email") for s in subjects)
	assert f"1 email synced from {account} needs review" in subjects

	frappe.db.set_value("Email Sync Account", account, "imap_port", 1)
	frappe.db.commit()
	sync_account(account)
	assert any(s.startswith(f"Sync of {account} failed") for s in subjects_for(watcher, 4, started))


def test_preview_shows_what_a_filter_would_do_and_changes_nothing(dovecot):
	domain = f"{unique('acme')}.test"
	make_contact("Ana", [f"ana@{domain}"], make_customer(f"Acme {domain}"))
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	deliver(dovecot, box, [
		mail(f"ana@{domain}", box.name, subject="Invoice 7"),
		mail(f"ana@{domain}", box.name, subject="Lunch?"),
		mail(f"news@{domain}", box.name, subject="Invoice digest", headers={"List-Unsubscribe": "<mailto:x@y>"}),
	])
	sync_account(account)
	before = {r.subject: r.status for r in synced(account)}

	result = preview_filter("Exclude", "Subject", "contains", "invoice", account=account)
	rows = {r["subject"]: r for r in result["rows"]}
	assert result["checked"] == 3 and result["would_change"] == 1
	assert rows["Invoice 7"]["new_status"] == "Skipped" and "this filter" in rows["Invoice 7"]["new_reason"]
	assert rows["Lunch?"]["new_status"] == "Filed"
	assert rows["Invoice digest"]["new_status"] == "Skipped" and not rows["Invoice digest"]["changes"]
	assert {r.subject: r.status for r in synced(account)} == before  # nothing changed

	with pytest.raises(frappe.ValidationError, match="regular expression"):
		preview_filter("Exclude", "Subject", "regex", "([", account=account)
