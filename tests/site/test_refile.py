"""Putting a wrong filing right: reassign, remove from a record, link to an Issue or split from it, on the real
site, with every copy of the email following and each user held to what they may change."""

import json

import frappe
import pytest
from factories import (
	deliver,
	mail,
	mail_with_files,
	make_account,
	make_contact,
	make_customer,
	new_mailbox,
	pdf,
	site_user,
	synced,
	unique,
)

from email_sync import api
from email_sync.sync.runner import sync_account


@pytest.fixture
def filed(dovecot):
	"""An email from Lee (of Umbrella) in two shared mailboxes, filed on Lee and Umbrella; and Initech with
	Sam, where it should have gone."""
	domain = f"{unique('umbrella')}.test"
	wrong = make_customer(f"Umbrella {domain}")
	lee = make_contact("Lee", [f"lee@{domain}"], wrong)
	right = make_customer(f"Initech {unique()}")
	sam = make_contact("Sam", [f"sam@{unique('initech')}.test"], right)
	one, two = new_mailbox(dovecot), new_mailbox(dovecot)
	accounts = make_account(dovecot, one), make_account(dovecot, two)
	subject = f"Order for Initech {unique()}"
	raw = mail_with_files(f"Lee <lee@{domain}>", f"{one.name}, {two.name}", subject, [("order.pdf", pdf())])
	for box, account in zip((one, two), accounts):
		deliver(dovecot, box, [raw])
		sync_account(account)
	rows = synced(accounts[0]) + synced(accounts[1])
	assert [r.status for r in rows] == ["Filed", "Filed"]
	assert rows[0].communication == rows[1].communication
	return frappe._dict(
		wrong=wrong, lee=lee, right=right, sam=sam, domain=domain, accounts=accounts, boxes=(one, two),
		rows=[r.name for r in rows], communication=rows[0].communication, subject=subject,
	)  # fmt: skip


def links(communication):
	return sorted(
		(link.link_doctype, link.link_name)
		for link in frappe.get_all("Communication Link", filters={"parent": communication}, fields=["link_doctype", "link_name"])
	)


def copies(names):
	return frappe.get_all(
		"Synced Email",
		filters={"name": ("in", names)},
		fields=["status", "matched_contacts", "matched_customers", "decision_rule", "decision_history", "communication",
			"issue", "reason"],
	)  # fmt: skip


def sales_user():
	return site_user("refile-sales", "Sales User")


def test_a_sales_user_reassigns_an_email_and_every_copy_follows(filed):
	frappe.set_user(sales_user())
	api.reassign_emails(json.dumps([filed.communication]), contact=filed.sam, learn=1)
	frappe.set_user("Administrator")
	assert links(filed.communication) == [("Contact", filed.sam), ("Customer", filed.right)]
	for row in copies(filed.rows):
		assert (row.status, row.matched_contacts, row.matched_customers) == ("Filed", filed.sam, filed.right)
		assert row.decision_rule == "reassigned"
		assert f"Contact {filed.lee}" in row.decision_history and "email-sync-test-refile-sales" in row.decision_history
	learnt = [e.email_id for e in frappe.get_doc("Contact", filed.sam).email_ids]
	assert f"lee@{filed.domain}" in learnt
	from email_sync.desk import party_emails

	assert filed.communication in [e.name for e in party_emails("Customer", filed.right)["emails"]]
	assert filed.communication not in [e.name for e in party_emails("Customer", filed.wrong)["emails"]]


def test_reassigning_needs_write_on_the_customer_it_is_taken_from(filed):
	user = sales_user()
	restriction = frappe.get_doc(
		{"doctype": "User Permission", "user": user, "allow": "Customer", "for_value": filed.right}
	).insert(ignore_permissions=True)
	try:
		frappe.set_user(user)
		with pytest.raises(frappe.PermissionError):
			api.reassign_emails([filed.communication], customer=filed.right)
	finally:
		frappe.set_user("Administrator")
		restriction.delete(ignore_permissions=True)
		frappe.db.commit()
	assert links(filed.communication) == [("Contact", filed.lee), ("Customer", filed.wrong)]


def test_private_mail_of_another_owner_is_out_of_reach(dovecot):
	domain = f"{unique('private')}.test"
	customer = make_customer(f"Private {domain}")
	make_contact("Kim", [f"kim@{domain}"], customer)
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, shared=0, account_owner="Administrator")
	deliver(dovecot, box, [mail(f"kim@{domain}", box.name, subject="Private matter")])
	sync_account(account)
	row = synced(account)[0]
	assert row.status == "Filed" and links(row.communication) == []  # private: no timeline links
	issue = frappe.get_doc({"doctype": "Issue", "subject": "Somewhere else"}).insert(ignore_permissions=True)
	frappe.db.commit()
	other = make_customer(f"Other {unique()}")
	frappe.set_user(sales_user())
	for action in (
		lambda: api.reassign_emails([row.communication], customer=other),
		lambda: api.remove_from_record([row.communication], "Customer", customer),
	):
		with pytest.raises(frappe.PermissionError):
			action()
	frappe.set_user(site_user("refile-support", "Support Team"))
	with pytest.raises(frappe.PermissionError):
		api.link_to_issue([row.communication], issue.name)
	frappe.set_user("Administrator")
	assert frappe.db.get_value("Synced Email", row.name, ["status", "issue"]) == ("Filed", None)

	# its owner may: reassigning private mail files it by name only, still no timeline links
	api.reassign_emails([row.communication], customer=other)
	assert links(row.communication) == []
	assert frappe.db.get_value("Synced Email", row.name, "matched_customers") == other


def test_removed_from_each_record_the_email_goes_and_does_not_come_back(filed):
	frappe.set_user(sales_user())
	api.remove_from_record([filed.communication], "Customer", filed.wrong)
	frappe.set_user("Administrator")
	assert links(filed.communication) == [("Contact", filed.lee)]
	assert {(r.status, r.matched_customers) for r in copies(filed.rows)} == {("Filed", "")}
	files = frappe.get_all(
		"File", filters={"attached_to_doctype": "Communication", "attached_to_name": filed.communication}, pluck="name"
	)
	assert files

	api.remove_from_record([filed.communication], "Contact", filed.lee)
	assert not frappe.db.exists("Communication", filed.communication)
	assert not any(frappe.db.exists("File", f) for f in files)
	for row in copies(filed.rows):
		assert (row.status, row.communication, row.decision_rule) == ("Removed", None, "removed")
		assert "Removed from Customer" in row.decision_history and "Removed from Contact" in row.decision_history
	reasons = frappe.get_all("Email Sync Attachment", filters={"parent": ("in", filed.rows)}, fields=["file", "reason"])
	assert reasons and all(r.file is None and r.reason == "Removed by Administrator" for r in reasons)

	# the next sync, even one reading the whole mailbox again, leaves it removed
	frappe.db.set_value("Email Sync Account", filed.accounts[0], "sync_cursor", None)
	frappe.db.commit()
	counts = sync_account(filed.accounts[0])
	assert counts["already_synced"] >= 1 and counts.get("Filed", 0) == 0
	assert not frappe.db.exists("Communication", filed.communication)
	assert {r.status for r in copies(filed.rows)} == {"Removed"}


def test_an_email_on_an_issue_stays_when_taken_off_its_contacts(filed):
	issue = frappe.get_doc({"doctype": "Issue", "subject": "Orders"}).insert(ignore_permissions=True)
	api.link_to_issue([filed.communication], issue.name)
	api.remove_from_record([filed.communication], "Customer", filed.wrong)
	api.remove_from_record([filed.communication], "Contact", filed.lee)
	assert frappe.db.exists("Communication", filed.communication)
	assert {(r.status, r.issue) for r in copies(filed.rows)} == {("Filed", issue.name)}


def test_a_support_agent_links_an_email_to_an_issue_and_replies_follow(dovecot, filed):
	issue = frappe.get_doc({"doctype": "Issue", "subject": "Initech orders"}).insert(ignore_permissions=True)
	frappe.db.commit()
	frappe.set_user(site_user("refile-support", "Support Team"))
	assert api.link_to_issue([filed.communication], issue.name) == [filed.communication]
	frappe.set_user("Administrator")
	assert frappe.db.get_value("Communication", filed.communication, ["reference_doctype", "reference_name"]) == (
		"Issue", issue.name)  # fmt: skip
	assert {r.issue for r in copies(filed.rows)} == {issue.name}
	assert frappe.db.exists("File", {"attached_to_doctype": "Issue", "attached_to_name": issue.name})
	assert "Linked to Issue" in copies(filed.rows)[0].decision_history

	message_id = frappe.db.get_value("Communication", filed.communication, "message_id")
	box, account = filed.boxes[0], filed.accounts[0]
	deliver(dovecot, box, [mail(f"lee@{filed.domain}", box.name, subject=f"Re: {filed.subject}",
		headers={"In-Reply-To": message_id})])  # fmt: skip
	sync_account(account)
	assert frappe.db.get_value("Synced Email", {"account": account, "subject": f"Re: {filed.subject}"}, "issue") == issue.name


def test_linking_with_the_thread_takes_the_answers_along(dovecot, filed):
	box, account = filed.boxes[0], filed.accounts[0]
	message_id = frappe.db.get_value("Communication", filed.communication, "message_id")
	deliver(dovecot, box, [mail(f"lee@{filed.domain}", box.name, subject=f"Re: {filed.subject}",
		headers={"In-Reply-To": message_id})])  # fmt: skip
	sync_account(account)
	reply = frappe.db.get_value("Synced Email", {"account": account, "subject": f"Re: {filed.subject}"}, "communication")
	issue = frappe.get_doc({"doctype": "Issue", "subject": "Thread"}).insert(ignore_permissions=True)
	assert sorted(api.link_to_issue([filed.communication], issue.name, thread=1)) == sorted([filed.communication, reply])
	assert frappe.db.get_value("Communication", reply, "reference_name") == issue.name


def test_split_into_a_new_issue_and_replies_follow_the_split(dovecot, filed):
	first = frappe.get_doc({"doctype": "Issue", "subject": "Everything"}).insert(ignore_permissions=True)
	api.link_to_issue([filed.communication], first.name)
	frappe.db.commit()
	frappe.set_user(site_user("refile-support", "Support Team"))
	issue = api.split_to_issue(filed.communication)
	frappe.set_user("Administrator")
	assert issue != first.name
	assert frappe.db.get_value("Issue", issue, ["customer", "contact"]) == (filed.wrong, filed.lee)
	assert {r.issue for r in copies(filed.rows)} == {issue}
	assert "Moved from Issue" in copies(filed.rows)[0].decision_history

	message_id = frappe.db.get_value("Communication", filed.communication, "message_id")
	box, account = filed.boxes[1], filed.accounts[1]
	deliver(dovecot, box, [mail(f"lee@{filed.domain}", box.name, subject=f"Re: {filed.subject}",
		headers={"In-Reply-To": message_id})])  # fmt: skip
	sync_account(account)
	assert frappe.db.get_value("Synced Email", {"account": account, "subject": f"Re: {filed.subject}"}, "issue") == issue


def test_several_emails_are_reassigned_at_once(dovecot, filed):
	box, account = filed.boxes[0], filed.accounts[0]
	deliver(dovecot, box, [mail(f"lee@{filed.domain}", box.name, subject=f"Second order {unique()}")])
	sync_account(account)
	second = synced(account, status="Filed")[-1].communication
	assert second != filed.communication
	frappe.set_user(sales_user())
	assert api.reassign_emails([filed.communication, second], customer=filed.right) == [filed.communication, second]
	frappe.set_user("Administrator")
	for communication in (filed.communication, second):
		assert links(communication) == [("Customer", filed.right)]
	assert {(r.matched_contacts, r.matched_customers) for r in copies(filed.rows)} == {("", filed.right)}


def test_who_may_do_what_with_a_filed_email(filed):
	"""A Sales User puts a Customer's email right on the Customers they may edit, but links it to no Issue; a
	Support Team user links it to an Issue, but takes it off no Customer; neither may erase it."""
	from email_sync.erasure import erase, preview_erasure

	issue = frappe.get_doc({"doctype": "Issue", "subject": f"Orders {unique()}"}).insert(ignore_permissions=True)
	frappe.db.commit()
	sales, support = sales_user(), site_user("refile-support", "Support Team")

	frappe.set_user(support)
	for action in (
		lambda: api.reassign_emails([filed.communication], customer=filed.right),
		lambda: api.remove_from_record([filed.communication], "Customer", filed.wrong),
	):
		with pytest.raises(frappe.PermissionError):
			action()
	frappe.set_user(sales)
	with pytest.raises(frappe.PermissionError):
		api.link_to_issue([filed.communication], issue.name)
	for user in (sales, support):
		frappe.set_user(user)
		for action in (
			lambda: erase(address=f"lee@{filed.domain}"),
			lambda: erase(contact=filed.lee),
			lambda: preview_erasure(address=f"lee@{filed.domain}"),
		):
			with pytest.raises(frappe.PermissionError):
				action()
	frappe.set_user("Administrator")
	assert links(filed.communication) == [("Contact", filed.lee), ("Customer", filed.wrong)]
	assert {(r.status, r.issue) for r in copies(filed.rows)} == {("Filed", None)}

	# what each may do, they can
	frappe.set_user(support)
	assert api.link_to_issue([filed.communication], issue.name) == [filed.communication]
	frappe.set_user(sales)
	assert api.remove_from_record([filed.communication], "Customer", filed.wrong) == [filed.communication]
	frappe.set_user("Administrator")
	assert links(filed.communication) == [("Contact", filed.lee)]
	assert frappe.db.exists("Communication", filed.communication)  # on its Contact and its Issue still


def test_a_sales_user_removes_nothing_from_a_customer_they_may_not_edit(filed):
	user = sales_user()
	restriction = frappe.get_doc(
		{"doctype": "User Permission", "user": user, "allow": "Customer", "for_value": filed.right}
	).insert(ignore_permissions=True)
	frappe.db.commit()
	try:
		frappe.set_user(user)
		with pytest.raises(frappe.PermissionError):
			api.remove_from_record([filed.communication], "Customer", filed.wrong)
	finally:
		frappe.set_user("Administrator")
		restriction.delete(ignore_permissions=True)
		frappe.db.commit()
	assert links(filed.communication) == [("Contact", filed.lee), ("Customer", filed.wrong)]


def test_the_confirmation_says_what_a_removal_will_do(filed):
	frappe.set_user(sales_user())
	outcome = api.removal_outcome(filed.communication, "Customer", filed.wrong)
	assert outcome == {"deletes": False, "kept_by": [f"Contact {filed.lee}"]}
	api.remove_from_record([filed.communication], "Customer", filed.wrong)
	assert api.removal_outcome(filed.communication, "Contact", filed.lee) == {"deletes": True, "kept_by": []}
	frappe.set_user("Administrator")
	issue = frappe.get_doc({"doctype": "Issue", "subject": f"Orders {unique()}"}).insert(ignore_permissions=True)
	api.link_to_issue([filed.communication], issue.name)
	assert api.removal_outcome(filed.communication, "Contact", filed.lee) == {"deletes": False, "kept_by": [f"Issue {issue.name}"]}
	assert frappe.db.exists("Communication", filed.communication)  # asking changed nothing
