"""Contacts created from customer domains, and disconnecting an account with its history kept or erased."""

import frappe
from factories import (
	deliver,
	mail,
	make_account,
	make_contact,
	make_customer,
	new_mailbox,
	set_domains,
	synced,
	unique,
)

from email_sync.api import disconnect
from email_sync.sync.runner import sync_account


def test_unknown_sender_at_a_customer_domain_becomes_its_contact(dovecot):
	domain = f"{unique('globex')}.test"
	customer = make_customer(f"Globex {domain}")
	set_domains(customer, f"{domain}\ngmail.com")
	twin = f"{unique('twin')}.test"  # a domain two Customers claim
	for name in ("Twin A", "Twin B"):
		make_customer(f"{name} {twin}", domains=twin)
	frappe.db.commit()
	user = new_mailbox(dovecot)
	deliver(
		dovecot,
		user,
		[
			mail(f'"Hana Sato" <Hana.Sato@{domain}>', user.name, subject="first contact"),
			mail(f"hana.sato@{domain}", user.name, subject="second mail, same person"),
			mail(f"someone@{domain.replace('.test', '.example')}", user.name, subject="not the same domain"),
			mail(f"{unique('x')}@gmail.com", user.name, subject="free mail"),
			mail(f"who@{twin}", user.name, subject="twin"),
		],
	)
	account = make_account(dovecot, user)
	sync_account(account)

	rows = {r.subject: r for r in synced(account)}
	assert rows["first contact"].status == "Filed" and rows["first contact"].decision_rule == "domain"
	[contact] = frappe.get_all("Contact Email", filters={"email_id": f"hana.sato@{domain}"}, pluck="parent")
	doc = frappe.get_doc("Contact", contact)
	assert (doc.first_name, doc.last_name, doc.email_sync_created) == ("Hana", "Sato", 1)
	assert [(l.link_doctype, l.link_name) for l in doc.links] == [("Customer", customer)]
	# the second mail (planned in the same batch) files on the same new Contact: no second Contact
	second = rows["second mail, same person"]
	assert second.status == "Filed"
	assert frappe.db.exists("Communication Link", {"parent": second.communication, "link_name": contact})
	assert frappe.db.count("Contact Email", {"email_id": f"hana.sato@{domain}"}) == 1
	# a later run matches the new Contact exactly
	deliver(dovecot, user, [mail(f"hana.sato@{domain}", user.name, subject="third")])
	sync_account(account)
	assert {r.subject: r for r in synced(account)}["third"].decision_rule == "matched"
	assert rows["not the same domain"].status == "Needs Review"
	assert rows["free mail"].status == "Needs Review"
	assert rows["twin"].decision_rule == "domain-conflict" and "Twin A" in rows["twin"].reason


def filed_account(dovecot, party_domain, count=3):
	user = new_mailbox(dovecot)
	deliver(dovecot, user, [mail(f"ana@{party_domain}", user.name, subject=f"s{i}") for i in range(count)])
	account = make_account(dovecot, user)
	sync_account(account)
	return user, account


def test_disconnect_keeps_history_by_default(dovecot):
	domain = f"{unique('keep')}.test"
	make_contact("Ana", [f"ana@{domain}"], make_customer(f"Keep {domain}"))
	_user, account = filed_account(dovecot, domain)
	comms = [r.communication for r in synced(account)]

	result = disconnect(account)
	assert result["revoked"]
	doc = frappe.get_doc("Email Sync Account", account)
	assert doc.status == "Disconnected" and not doc.get_password("password", raise_exception=False)
	assert all(frappe.db.exists("Communication", c) for c in comms) and len(synced(account)) == 3


def test_disconnect_and_erase_removes_only_what_this_account_alone_filed(dovecot):
	domain = f"{unique('erase')}.test"
	contact = make_contact("Ana", [f"ana@{domain}"], make_customer(f"Erase {domain}"))
	user, account = filed_account(dovecot, domain, count=2)
	other_user = new_mailbox(dovecot)
	shared = mail(f"ana@{domain}", f"{user.name}, {other_user.name}", subject="shared", message_id=f"<shared@{domain}>")
	deliver(dovecot, user, [shared])
	deliver(dovecot, other_user, [shared])
	sync_account(account)
	other = make_account(dovecot, other_user)
	sync_account(other)
	mine_only = [r.communication for r in synced(account) if r.subject != "shared"]
	shared_comm = synced(other)[0].communication

	result = disconnect(account, erase=True)
	assert (result["synced_emails_deleted"], result["communications_deleted"]) == (3, 2)
	assert not any(frappe.db.exists("Communication", c) for c in mine_only)
	assert not frappe.db.exists("Communication Link", {"parent": ("in", mine_only)})
	assert frappe.db.exists("Communication", shared_comm)  # the other mailbox still has it
	assert synced(account) == [] and len(synced(other)) == 1
	assert frappe.db.exists("Contact", contact)
