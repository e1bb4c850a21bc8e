"""Retro-filing: mail waiting in Needs Review is filed, by a real background job, once a Contact gets its
address or a Customer its domain; nothing else moves, and running the job again changes nothing."""

import frappe
import pytest
from factories import (
	deliver,
	mail,
	make_account,
	make_contact,
	make_customer,
	new_mailbox,
	run_worker_burst,
	set_domains,
	synced,
	unique,
	wait_for,
)

from email_sync.sync.retrofile import file_for_contact, file_for_customer
from email_sync.sync.runner import sync_account


@pytest.fixture
def waiting(dovecot):
	"""Three unknown senders at one new domain, and one elsewhere, each waiting for review."""
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	domain = f"{unique('retro')}.test"
	senders = [f"ann@{domain}", f"bob@{domain}", f"cat@{domain}", f"dan@{unique('other')}.test"]
	deliver(dovecot, box, [mail(s, box.name, subject=f"From {s}") for s in senders])
	sync_account(account)
	assert {r.status for r in synced(account)} == {"Needs Review"}
	return frappe._dict(account=account, domain=domain, senders=senders)


def filed(account, sender) -> bool:
	"""Run the queued jobs (a worker of another test run may hold ours a moment) until `sender`'s mail is filed."""
	return bool(wait_for(lambda: row_of(account, sender).status == "Filed", queue="default"))


def statuses(account) -> dict:
	return {r.sender: r.status for r in synced(account)}


def row_of(account, sender):
	return next(r for r in synced(account) if r.sender == sender)


def linked(communication) -> set:
	links = frappe.get_all(
		"Communication Link", filters={"parent": communication}, fields=["link_doctype", "link_name"]
	)
	return {(link.link_doctype, link.link_name) for link in links}


def snapshot(account) -> list:
	return frappe.get_all("Synced Email", filters={"account": account}, fields=["name", "status", "modified"])


def test_a_contact_made_afterwards_files_the_mail_waiting_from_its_address(waiting):
	ann = waiting.senders[0]
	customer = make_customer(f"Retro {unique()}")
	contact = make_contact("Ann", [ann], customer)
	frappe.db.commit()
	assert filed(waiting.account, ann)
	row = row_of(waiting.account, ann)
	assert row.status == "Filed"
	assert row.decision_rule == "retro-filed"
	assert row.reason == f"Filed when Contact {contact} got this address."
	assert frappe.db.get_value("Synced Email", row.name, "decision_history").endswith(f"{row.reason}\n")
	assert linked(row.communication) == {("Contact", contact), ("Customer", customer)}
	assert [s for s, status in statuses(waiting.account).items() if status == "Filed"] == [ann]
	assert not frappe.db.get_value("Synced Email", row.name, "issue")
	before = snapshot(waiting.account)
	assert file_for_contact(contact) == 0
	assert snapshot(waiting.account) == before


def test_a_second_address_on_a_contact_files_that_address_mail(waiting):
	ann, bob = waiting.senders[:2]
	contact = make_contact("Ann", [f"ann@{unique('elsewhere')}.test"])
	frappe.db.commit()
	run_worker_burst("default")
	assert set(statuses(waiting.account).values()) == {"Needs Review"}
	doc = frappe.get_doc("Contact", contact)
	doc.append("email_ids", {"email_id": bob})
	doc.save(ignore_permissions=True)
	frappe.db.commit()
	assert filed(waiting.account, bob)
	assert statuses(waiting.account) == {s: "Filed" if s == bob else "Needs Review" for s in waiting.senders}
	assert linked(row_of(waiting.account, bob).communication) == {("Contact", contact)}
	assert ann not in {r.sender for r in synced(waiting.account, status="Filed")}


def test_a_customer_gaining_a_domain_files_its_waiting_mail_on_new_contacts(waiting):
	customer = make_customer(f"Retro {unique()}")
	frappe.db.commit()
	set_domains(customer, waiting.domain)
	frappe.db.commit()
	assert all(filed(waiting.account, s) for s in waiting.senders[:3])
	at_domain = waiting.senders[:3]
	expected = {s: "Filed" if s in at_domain else "Needs Review" for s in waiting.senders}
	assert statuses(waiting.account) == expected
	for sender in at_domain:
		contact = frappe.db.get_value("Contact Email", {"email_id": sender}, "parent")
		assert frappe.db.get_value("Contact", contact, "email_sync_created") == 1
		row = row_of(waiting.account, sender)
		assert row.reason == f"Filed when Customer {customer} got the email domain {waiting.domain}."
		assert linked(row.communication) == {("Contact", contact), ("Customer", customer)}
	before = snapshot(waiting.account)
	assert file_for_customer(customer) == 0
	run_worker_burst("default")  # the new Contacts queued no job of their own, or one that finds nothing
	assert snapshot(waiting.account) == before


def test_a_link_to_a_customer_names_the_customer(waiting):
	cat = waiting.senders[2]
	contact = make_contact("Cat", [cat])
	frappe.db.commit()
	assert filed(waiting.account, cat)
	assert row_of(waiting.account, cat).status == "Filed"  # by its address, on the Contact alone
	customer = make_customer(f"Retro {unique()}")
	frappe.db.set_value("Synced Email", row_of(waiting.account, cat).name, "status", "Needs Review")  # again
	doc = frappe.get_doc("Contact", contact)
	doc.append("links", {"link_doctype": "Customer", "link_name": customer})
	doc.save(ignore_permissions=True)
	frappe.db.commit()
	assert filed(waiting.account, cat)
	row = row_of(waiting.account, cat)
	assert row.reason == f"Filed when Contact {contact} was linked to Customer {customer}."
	assert linked(row.communication) == {("Contact", contact), ("Customer", customer)}


def test_sent_mail_to_the_address_is_filed_with_every_copy_and_exactly(dovecot):
	sender, other = new_mailbox(dovecot), new_mailbox(dovecot)
	domain = f"{unique('sent')}.test"
	eve, near = f"eve@{domain}", f"steve@{domain}"
	sent = mail(sender.name, f"{near}, {eve}, {other.name}", subject=f"To {eve}")
	deliver(dovecot, sender, [sent], "Sent")
	deliver(dovecot, sender, [mail(sender.name, near, subject=f"To {near}")], "Sent")
	deliver(dovecot, other, [sent])
	one = make_account(dovecot, sender, direction="Bidirectional")
	two = make_account(dovecot, other)
	sync_account(one)
	sync_account(two)
	assert {r.status for r in synced(one) + synced(two)} == {"Needs Review"}
	contact = make_contact("Eve", [eve])
	frappe.db.commit()
	assert wait_for(lambda: {r.status for r in synced(two)} == {"Filed"}, queue="default")
	rows = {(r.subject, r.direction): r for r in synced(one) + synced(two)}
	assert {key: r.status for key, r in rows.items()} == {
		(f"To {eve}", "Outbound"): "Filed",
		(f"To {eve}", "Inbound"): "Filed",  # the copy in the other mailbox follows
		(f"To {near}", "Outbound"): "Needs Review",  # steve@ is not eve@
	}
	assert linked(rows[(f"To {eve}", "Outbound")].communication) == {("Contact", contact)}
