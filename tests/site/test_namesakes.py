"""A second address of a known person, on the real site: Lee Smith, a Contact of Acme, writes from a new
address at Acme's domain. Per setting the address goes onto her Contact, or the email waits in Needs Review
until a reviewer adds it there, or a new Contact is made as before; never onto another Customer's Lee Smith."""

from contextlib import contextmanager
from datetime import datetime, timezone

import frappe
import pytest
from factories import deliver, mail, make_account, make_customer, new_mailbox, set_domains, site_user, unique

from email_sync import api
from email_sync.engine.namesakes import ADD, ASK, CREATE
from email_sync.sync.retrofile import file_for_customer
from email_sync.sync.runner import sync_account


@contextmanager
def namesake_action(action):
	"""The site-wide setting, for as short as the sync needs it (other suites share the site and save these
	settings too: one value is set, not the whole document)."""
	before = frappe.db.get_single_value("Email Sync Settings", "namesake_action", cache=False)
	frappe.db.set_single_value("Email Sync Settings", "namesake_action", action)
	frappe.db.commit()
	try:
		yield
	finally:
		frappe.db.set_single_value("Email Sync Settings", "namesake_action", before)
		frappe.db.commit()


def person(first: str, last: str, emails: list[str], customer: str) -> str:
	doc = frappe.get_doc({"doctype": "Contact", "first_name": first, "last_name": last,
		"links": [{"link_doctype": "Customer", "link_name": customer}]})  # fmt: skip
	for i, email in enumerate(emails):
		doc.append("email_ids", {"email_id": email, "is_primary": int(i == 0)})
	return doc.insert(ignore_permissions=True).name


@pytest.fixture
def acme(dovecot):
	"""Acme (its own domain) with Contact Lee Smith; Globex, another Customer, has a Lee Smith too."""
	domain, globex_domain = f"{unique('acme')}.test", f"{unique('globex')}.test"
	customer = make_customer(f"Acme {domain}", domains=domain)
	globex = make_customer(f"Globex {globex_domain}", domains=globex_domain)
	box = new_mailbox(dovecot)
	data = frappe._dict(
		domain=domain, customer=customer, globex=globex, box=box, account=make_account(dovecot, box),
		lee=person("Lee", "Smith", [f"lee.smith@{domain}"], customer),
		globex_lee=person("Lee", "Smith", [f"lee@{globex_domain}"], globex),
	)  # fmt: skip
	frappe.db.commit()
	return data


def receive(dovecot, acme, sender: str, action: str):
	subject = f"From my phone {unique()}"
	deliver(dovecot, acme.box, [mail(sender, acme.box.name, subject=subject, date=datetime.now(timezone.utc))])
	with namesake_action(action):
		sync_account(acme.account)
	return frappe.get_all("Synced Email", filters={"account": acme.account, "subject": subject}, fields=["*"])[0]


def contacts_of(email: str) -> list[str]:
	return frappe.get_all("Contact Email", filters={"email_id": email}, pluck="parent")


def timeline(communication: str) -> set:
	return {
		(link.link_doctype, link.link_name)
		for link in frappe.get_all("Communication Link", filters={"parent": communication}, fields=["link_doctype", "link_name"])
	}


def test_add_puts_the_address_on_her_contact_and_files_the_email_there(dovecot, acme):
	address = f"lee.mobile@{acme.domain}"
	row = receive(dovecot, acme, f'"LEE  SMITH" <{address}>', ADD)
	assert row.status == "Filed" and row.matched_contacts == acme.lee
	assert contacts_of(address) == [acme.lee]  # no look-alike Contact
	assert timeline(row.communication) == {("Contact", acme.lee), ("Customer", acme.customer)}
	assert f"is a second address of Contact {acme.lee} of Customer {acme.customer}" in row.reason
	# the next email from that address is an exact match
	assert receive(dovecot, acme, address, ADD).decision_rule == "matched"


def test_ask_waits_in_review_until_a_reviewer_adds_the_address(dovecot, acme):
	address = f"lee.home@{acme.domain}"
	row = receive(dovecot, acme, f'"Smith, Lee" <{address}>', ASK)
	assert (row.status, row.decision_rule, row.matched_contacts, row.confidence) == (
		"Needs Review", f"namesake:{address}", acme.lee, 90)  # fmt: skip
	assert contacts_of(address) == [] and timeline(row.communication) == set()
	assert "has a Contact of that name" in row.reason

	frappe.set_user(site_user("namesake-reviewer", "Email Sync Reviewer", "Sales User"))
	with pytest.raises(frappe.ValidationError):  # only the Contacts of that name are offered
		api.add_address_to_contact([row.name], acme.globex_lee)
	frappe.db.rollback()
	assert api.add_address_to_contact([row.name], acme.lee) == [row.name]
	frappe.set_user("Administrator")
	after = frappe.get_doc("Synced Email", row.name)
	assert after.status == "Filed" and after.matched_contacts == acme.lee
	assert contacts_of(address) == [acme.lee]
	assert timeline(row.communication) == {("Contact", acme.lee), ("Customer", acme.customer)}


def test_create_makes_a_new_contact_as_before(dovecot, acme):
	address = f"lee.other@{acme.domain}"
	row = receive(dovecot, acme, f'"Lee Smith" <{address}>', CREATE)
	[made] = contacts_of(address)
	assert row.status == "Filed" and made != acme.lee


def test_the_same_name_at_another_customer_is_somebody_else(dovecot, acme):
	# Globex's Lee Smith is not Acme's: a new Contact of Acme, whatever the setting.
	address = f"lsmith@{acme.domain}"
	frappe.db.delete("Contact Email", {"parent": acme.lee})  # Acme has no Lee Smith with an address...
	frappe.db.delete("Dynamic Link", {"parent": acme.lee})  # ...nor at all
	frappe.db.commit()
	row = receive(dovecot, acme, f'"Lee Smith" <{address}>', ADD)
	[made] = contacts_of(address)
	assert row.status == "Filed" and made not in (acme.lee, acme.globex_lee)


def test_only_namesake_emails_take_the_action(dovecot, acme):
	row = receive(dovecot, acme, f'"Lee Smith" <lee@{unique("nobody")}.test>', ASK)  # a domain no Customer has
	assert (row.status, row.decision_rule) == ("Needs Review", "unmatched")
	with pytest.raises(frappe.ValidationError):
		api.add_address_to_contact([row.name], acme.lee)


@pytest.mark.parametrize("action", [ASK, ADD])
def test_mail_already_waiting_when_the_customer_gets_its_domain_follows_the_setting(dovecot, acme, action):
	"""Retro-filing makes a Contact per unknown address at a Customer's new domain: not a look-alike."""
	domain = f"{unique('acme-new')}.test"
	address = f"lee@{domain}"
	row = receive(dovecot, acme, f'"Lee Smith" <{address}>', action)
	assert (row.status, row.decision_rule) == ("Needs Review", "unmatched")  # nobody claims the domain yet
	set_domains(acme.customer, f"{acme.domain}\n{domain}")
	frappe.db.commit()
	with namesake_action(action):
		file_for_customer(acme.customer)
	after = frappe.get_doc("Synced Email", row.name)
	if action == ASK:
		assert (after.status, after.decision_rule, after.matched_contacts) == ("Needs Review", f"namesake:{address}", acme.lee)
		assert contacts_of(address) == []
		with namesake_action(action):
			assert file_for_customer(acme.customer) == 0  # held for a person: not picked up again
	else:
		assert (after.status, after.matched_contacts) == ("Filed", acme.lee)
		assert contacts_of(address) == [acme.lee]
