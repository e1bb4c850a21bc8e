"""What the desk shows: a party's emails (private accounts honoured), the safe email view, the page's data."""

from datetime import datetime, timezone

import frappe
import pytest
from factories import make_party, site_user, deliver, mail, make_account, new_mailbox, synced

from email_sync.api import test_connection as check_connection
from email_sync.desk import dashboard, email_view, party_emails
from email_sync.sync.runner import sync_account




@pytest.fixture
def party():
	return make_party("Acme", "Ana")


def test_emails_tab_lists_newest_first_with_source_direction_and_paging(dovecot, party):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, direction="Bidirectional")
	from datetime import datetime, timezone

	deliver(dovecot, box, [mail(f"ana@{party.domain}", box.name, subject=f"m{i}",
		date=datetime(2026, 11, 1 + i, 9, tzinfo=timezone.utc)) for i in range(3)])
	deliver(dovecot, box, [mail(box.name, f"ana@{party.domain}", subject="our answer",
		date=datetime(2026, 11, 10, tzinfo=timezone.utc))], "Sent")
	sync_account(account)
	erpnext_sent = frappe.get_doc({"doctype": "Communication", "communication_type": "Communication",
		"communication_medium": "Email", "sent_or_received": "Sent", "subject": "from ERPNext",
		"communication_date": "2026-11-11 10:00:00", "recipients": f"ana@{party.domain}",
		"timeline_links": [{"link_doctype": "Customer", "link_name": party.customer}]}).insert(ignore_permissions=True)

	page = party_emails("Customer", party.customer, 0, 3)
	assert [e.subject for e in page["emails"]] == ["from ERPNext", "our answer", "m2"] and page["more"]
	assert [(e.source, e.direction) for e in page["emails"]] == [("ERPNext", "out"), ("IMAP", "out"), ("IMAP", "in")]
	rest = party_emails("Customer", party.customer, 3, 3)
	assert [e.subject for e in rest["emails"]] == ["m1", "m0"] and not rest["more"]
	# Frappe links the ERPNext email to the Contact by its recipient address too
	assert [e.subject for e in party_emails("Contact", party.contact)["emails"]][:2] == ["from ERPNext", "our answer"]
	assert erpnext_sent.name in [e.name for e in page["emails"]]


def test_private_account_emails_show_only_to_owner_and_administrators(dovecot, party):
	owner, other = site_user("owner", "Sales User"), site_user("other", "Sales User")
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, shared=0, account_owner=owner)
	deliver(dovecot, box, [mail(f"ana@{party.domain}", box.name, subject="private matter")])
	sync_account(account)
	comm = synced(account)[0].communication
	assert not frappe.db.exists("Communication Link", {"parent": comm})  # kept off the shared timeline

	def subjects(user):
		frappe.set_user(user)
		try:
			return [e.subject for e in party_emails("Customer", party.customer)["emails"]]
		finally:
			frappe.set_user("Administrator")

	assert subjects(owner) == ["private matter"]
	assert subjects("Administrator") == ["private matter"]
	assert subjects(other) == []
	frappe.set_user(other)
	with pytest.raises(frappe.PermissionError):
		email_view(comm)
	frappe.set_user("Administrator")


def test_email_view_is_sanitised_with_remote_images_held_back(dovecot, party):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	html = ('<p>Hi</p><script>alert(1)</script><img src="https://tracker.example/p.gif">'
		'<a href="javascript:alert(2)">x</a><form action="https://evil.example"><input></form>')
	from email.message import EmailMessage

	msg = EmailMessage()
	msg["From"], msg["To"], msg["Subject"] = f"ana@{party.domain}", box.name, "hostile"
	msg.set_content("plain")
	msg.add_alternative(html, subtype="html")
	deliver(dovecot, box, [msg.as_bytes()])
	sync_account(account)
	view = email_view(synced(account)[0].communication)
	assert view["remote_images"] == 1 and "<p>Hi</p>" in view["html"]
	for bad in ("<script", "javascript:", "<form", "<input", ' src="https://tracker'):
		assert bad not in view["html"]
	stored = frappe.db.get_value("Communication", synced(account)[0].communication, "content")
	assert "<script" not in stored and ' src="https://tracker' not in stored  # the standard timeline is safe too


def test_dashboard_for_administrators_only(dovecot, party):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	# dated now: Needs Review shows the newest emails first, and a busy site has many waiting
	deliver(dovecot, box, [mail("who@unknown.test", box.name, subject="who?", date=datetime.now(timezone.utc))])
	sync_account(account)
	data = dashboard()
	card = next(a for a in data["accounts"] if a.name == account)
	assert card.health == "green" and card.emails_synced == 0
	assert any(r.account == account and r.subject == "who?" for r in data["needs_review"])
	assert any(l.account == account for l in data["log"])
	frappe.set_user(site_user("sales", "Sales User"))
	with pytest.raises(frappe.PermissionError):
		dashboard()


def test_test_connection_previews_what_the_next_sync_would_do(dovecot, party):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	deliver(dovecot, box, [mail(f"ana@{party.domain}", box.name, subject="known"), mail("x@nowhere.test", box.name, subject="unknown")])
	result = check_connection(account)
	assert result["ok"]
	assert [(p["subject"], p["status"]) for p in result["preview"]] == [("known", "Filed"), ("unknown", "Needs Review")]
	assert synced(account) == [] and not frappe.db.get_value("Email Sync Account", account, "sync_cursor")
