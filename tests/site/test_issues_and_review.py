"""Customer mail into Issues, replies onto their Issue, and the Needs Review actions, on the real site."""

import frappe
import pytest
from factories import make_party, site_user, deliver, mail, make_account, new_mailbox, synced, unique

from email_sync.api import assign_to_customer, create_customer, create_issues, ignore_senders
from email_sync.sync.runner import sync_account


@pytest.fixture
def party():
	return make_party("Umbrella", "Lee")


@pytest.fixture
def settings():
	doc = frappe.get_single("Email Sync Settings")
	saved = (doc.closed_issue_reply, doc.one_open_issue_per_customer)
	yield doc
	doc.reload()
	doc.closed_issue_reply, doc.one_open_issue_per_customer = saved
	doc.save()
	frappe.db.commit()


def issue_of(account, subject):
	frappe.db.rollback()
	return frappe.db.get_value("Synced Email", {"account": account, "subject": subject}, "issue")


def test_request_becomes_an_issue_and_replies_thread_onto_it(dovecot, party, settings):
	support = new_mailbox(dovecot)
	account = make_account(dovecot, support, create_issues=1, direction="Bidirectional", attach_eml=1)
	first_id = f"<req@{party.domain}>"
	deliver(
		dovecot,
		support,
		[mail(f"Lee <lee@{party.domain}>", support.name, subject="Printer not working", body="It shows error 5.",
			message_id=first_id)],
	)
	assert sync_account(account)["issues_created"] == 1
	issue_name = issue_of(account, "Printer not working")
	issue = frappe.get_doc("Issue", issue_name)
	assert (issue.customer, issue.contact, issue.raised_by) == (party.customer, party.contact, f"lee@{party.domain}")
	assert (issue.priority, issue.email_sync_source, issue.email_sync_account) == ("Medium", "Email", account)
	assert "error 5" in issue.description
	assert frappe.db.exists("File", {"attached_to_doctype": "Issue", "attached_to_name": issue_name})
	comms = frappe.get_all("Communication", filters={"reference_doctype": "Issue", "reference_name": issue_name}, pluck="name")
	assert len(comms) == 1

	# Our answer from the mailbox (Sent), the customer's reply by References, and one by subject id alone
	deliver(dovecot, support, [mail(support.name, f"lee@{party.domain}", subject="Re: Printer not working",
		message_id=f"<ans@{party.domain}>", headers={"In-Reply-To": first_id})], "Sent")
	deliver(
		dovecot,
		support,
		[
			mail(f"lee@{party.domain}", support.name, subject="Re: Printer not working",
				headers={"References": f"{first_id} <ans@{party.domain}>"}),
			mail(f"lee@{party.domain}", support.name, subject=f"[{issue_name}] one more thing"),
		],
	)
	counts = sync_account(account)
	assert counts["Filed"] == 3 and counts["issues_created"] == 0
	threaded = frappe.get_all("Communication", filters={"reference_doctype": "Issue", "reference_name": issue_name},
		fields=["sent_or_received"])
	assert sorted(c.sent_or_received for c in threaded) == ["Received", "Received", "Received", "Sent"]


def test_reply_from_another_mailbox_joins_the_same_issue(dovecot, party):
	one, two = new_mailbox(dovecot), new_mailbox(dovecot)
	a1 = make_account(dovecot, one, create_issues=1)
	a2 = make_account(dovecot, two, create_issues=1)
	first_id = f"<x@{party.domain}>"
	deliver(dovecot, one, [mail(f"lee@{party.domain}", one.name, subject="Broken widget", message_id=first_id)])
	sync_account(a1)
	deliver(dovecot, two, [mail(f"lee@{party.domain}", two.name, subject="Re: Broken widget",
		headers={"In-Reply-To": first_id})])
	assert sync_account(a2)["issues_created"] == 0
	assert issue_of(a2, "Re: Broken widget") == issue_of(a1, "Broken widget")


def test_closed_issue_reopens_or_splits_per_setting(dovecot, party, settings):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, create_issues=1)
	deliver(dovecot, box, [mail(f"lee@{party.domain}", box.name, subject="URGENT outage", message_id=f"<o@{party.domain}>")])
	sync_account(account)
	issue = issue_of(account, "URGENT outage")
	assert frappe.db.get_value("Issue", issue, "priority") == "High"
	frappe.db.set_value("Issue", issue, "status", "Closed")
	frappe.db.commit()

	deliver(dovecot, box, [mail(f"lee@{party.domain}", box.name, subject="Re: URGENT outage",
		headers={"In-Reply-To": f"<o@{party.domain}>"}, message_id=f"<o2@{party.domain}>")])
	sync_account(account)
	assert issue_of(account, "Re: URGENT outage") == issue
	assert frappe.db.get_value("Issue", issue, "status") == "Open"  # reopened

	settings.closed_issue_reply = "Starts a new Issue"
	settings.save()
	frappe.db.set_value("Issue", issue, "status", "Closed")
	frappe.db.commit()
	deliver(dovecot, box, [mail(f"lee@{party.domain}", box.name, subject="Re: Re: URGENT outage",
		headers={"In-Reply-To": f"<o2@{party.domain}>"})])
	sync_account(account)
	new_issue = issue_of(account, "Re: Re: URGENT outage")
	assert new_issue and new_issue != issue
	assert frappe.db.get_value("Issue", issue, "status") == "Closed"


def test_one_open_issue_per_customer(dovecot, party, settings):
	settings.one_open_issue_per_customer = 1
	settings.save()
	frappe.db.commit()
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, create_issues=1)
	deliver(dovecot, box, [mail(f"lee@{party.domain}", box.name, subject=s) for s in ("First question", "Unrelated thing")])
	assert sync_account(account)["issues_created"] == 1
	assert issue_of(account, "First question") == issue_of(account, "Unrelated thing")


def test_assignment_rule_assigns_new_issues(dovecot, party):
	agent = frappe._dict(name=site_user("agent", "Support Team"))
	rule = frappe.get_doc({"doctype": "Assignment Rule", "name": unique("Email issues "), "document_type": "Issue",
		"assign_condition": f"customer == '{party.customer}'", "rule": "Round Robin", "priority": 99,
		"users": [{"user": agent.name}],
		"assignment_days": [{"day": d} for d in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")]}).insert(ignore_permissions=True)
	frappe.db.commit()
	try:
		box = new_mailbox(dovecot)
		account = make_account(dovecot, box, create_issues=1)
		deliver(dovecot, box, [mail(f"lee@{party.domain}", box.name, subject="Please help")])
		sync_account(account)
		issue = issue_of(account, "Please help")
		assert frappe.get_all("ToDo", filters={"reference_type": "Issue", "reference_name": issue, "status": "Open"},
			pluck="allocated_to") == [agent.name]
	finally:
		frappe.delete_doc("Assignment Rule", rule.name, force=True)
		frappe.db.commit()


def review_mailbox(dovecot, senders):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	deliver(dovecot, box, [mail(s, box.name, subject=f"from {s}") for s in senders])
	sync_account(account)
	rows = {r.sender: r for r in synced(account)}
	assert all(r.status == "Needs Review" for r in rows.values())
	return account, rows


def test_assign_to_customer_learns_the_address_and_files(dovecot, party):
	stranger = f"{unique('lee.home')}@home.example"
	account, rows = review_mailbox(dovecot, [stranger])
	assert assign_to_customer([rows[stranger].name], party.customer, party.contact) == [rows[stranger].name]
	row = frappe.get_doc("Synced Email", rows[stranger].name)
	assert row.status == "Filed" and party.customer in row.reason
	assert frappe.db.exists("Communication Link", {"parent": row.communication, "link_name": party.customer})
	assert stranger in [e.email_id for e in frappe.get_doc("Contact", party.contact).email_ids]
	# learnt: the next email from that address is matched by itself
	box = frappe.db.get_value("Email Sync Account", account, "email_address")
	user = frappe._dict(name=box, password=frappe.get_doc("Email Sync Account", account).get_password("password"))
	deliver(dovecot, user, [mail(stranger, box, subject="again")])
	sync_account(account)
	assert {r.subject: r for r in synced(account)}["again"].decision_rule == "matched"


def test_create_customer_issue_and_ignore_from_review(dovecot):
	newco = f"{unique('newco')}.test"
	spam = f"{unique('promo')}@spam.example"
	_account, rows = review_mailbox(dovecot, [f"boss@{newco}", spam, f"x@{unique('other')}.example"])

	from email_sync.api import customer_prefill

	assert customer_prefill(rows[f"boss@{newco}"].name) == {
		"customer_name": newco.split(".")[0].title(),
		"email_sync_domains": newco,
	}
	customer = create_customer(rows[f"boss@{newco}"].name)
	assert frappe.db.get_value("Customer", customer, "email_sync_domains") == newco
	assert frappe.get_doc("Synced Email", rows[f"boss@{newco}"].name).status == "Filed"

	[issue] = create_issues([rows[f"boss@{newco}"].name])
	assert frappe.db.get_value("Issue", issue, "customer") == customer

	comm = rows[spam].communication
	assert ignore_senders([rows[spam].name]) == [rows[spam].name]
	assert frappe.db.exists("Email Sync Blacklist", spam)
	assert frappe.get_doc("Synced Email", rows[spam].name).status == "Skipped"
	assert not frappe.db.exists("Communication", comm)
	with pytest.raises(frappe.ValidationError, match="only emails in status"):
		ignore_senders([rows[spam].name])


def test_private_account_issues_keep_emails_off_the_shared_timeline(dovecot, party):
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, create_issues=1, shared=0)
	deliver(dovecot, box, [mail(f"lee@{party.domain}", box.name, subject="Private request")])
	assert sync_account(account)["issues_created"] == 1
	row = synced(account)[0]
	assert frappe.db.get_value("Communication", row.communication, "reference_name") == issue_of(account, "Private request")
	assert not frappe.db.exists("Communication Link", {"parent": row.communication})


def test_new_issue_gets_mapped_fields_and_an_acknowledgement(dovecot, party, settings):
	template = frappe.get_doc({"doctype": "Email Template", "name": unique("Ack "), "subject": "We got it: {{ subject }}",
		"response": "Hello, your request {{ name }} is logged."}).insert(ignore_permissions=True)
	issue_type = frappe.get_doc({"doctype": "Issue Type"}).insert(ignore_permissions=True, set_name=unique("Email ")).name
	settings.reload()
	settings.append("issue_fields", {"issue_field": "issue_type", "email_property": "Fixed Value", "default_value": issue_type})
	settings.save()
	frappe.db.commit()
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, create_issues=1, acknowledgement_template=template.name)
	try:
		# Without an outgoing Email Account the acknowledgement cannot be queued: the Issue still is made
		deliver(dovecot, box, [mail(f"lee@{party.domain}", box.name, subject="Need a quote")])
		sync_account(account)
		issue = issue_of(account, "Need a quote")
		assert issue and frappe.db.get_value("Issue", issue, "issue_type") == issue_type
		row = frappe.get_doc("Synced Email", synced(account)[0].name)
		assert "acknowledgement was not sent" in row.reason

		frappe.get_doc({"doctype": "Email Account", "email_id": f"{unique('support')}@ourco.example",
			"email_account_name": unique("Support "), "enable_outgoing": 1, "default_outgoing": 1,
			"smtp_server": "127.0.0.1", "awaiting_password": 1}).insert(ignore_permissions=True)
		frappe.db.commit()
		deliver(dovecot, box, [mail(f"lee@{party.domain}", box.name, subject="Second quote")])
		sync_account(account)
		second = issue_of(account, "Second quote")
		queued = frappe.get_all("Email Queue", filters={"reference_doctype": "Issue", "reference_name": second},
			fields=["name", "message"])
		assert len(queued) == 1 and "We got it: Second quote" in queued[0].message
		assert frappe.get_all("Email Queue Recipient", filters={"parent": queued[0].name}, pluck="recipient") == [
			f"lee@{party.domain}"
		]
	finally:
		frappe.db.rollback()
		for name in frappe.get_all("Email Account", filters={"email_id": ("like", "support%@ourco.example")}, pluck="name"):
			frappe.delete_doc("Email Account", name, force=True, ignore_permissions=True)
		settings.reload()
		settings.set("issue_fields", [])
		settings.save()
		frappe.db.commit()
