"""Two syncs meeting the same new person at once (the same mail in two mailboxes, synced by two workers)
make one Contact, and neither fails on the other's."""

import threading

import frappe
import pytest
from factories import make_customer, unique

from email_sync.engine import FILED, Plan
from email_sync.engine.model import Message, NewContact
from email_sync.sync import writer


def item_for(new: NewContact) -> writer.Item:
	plan = Plan(Message(key=unique("key")), FILED, "new person at a customer's domain", "domain")
	plan.new_contacts.append(new)
	return writer.Item(fetched=None, plan=plan)


def contacts_with(email: str) -> list[str]:
	frappe.db.commit()  # a fresh snapshot
	return frappe.db.sql_list("select distinct parent from `tabContact Email` where email_id = %s", (email,))


@pytest.mark.parametrize("same_name", [True, False], ids=["same name", "another display name"])
def test_a_new_address_being_created_by_another_sync_is_waited_for_and_reused(site, same_name):
	domain = f"{unique('race')}.example"
	customer = make_customer(f"Race {domain}", domains=domain)
	frappe.db.commit()
	email = f"new.person@{domain}"
	created, commit_now, other = threading.Event(), threading.Event(), {}
	sites_path = frappe.local.sites_path

	def other_sync():
		# Another worker: creates the Contact inside its batch's transaction and commits a moment later.
		frappe.init(site=site, sites_path=sites_path)
		frappe.connect()
		frappe.set_user("Administrator")
		try:
			item = item_for(NewContact(email, "New Person", customer))
			writer._create_contacts([item])
			other["contacts"] = item.plan.contacts
			created.set()
			commit_now.wait(30)
			frappe.db.commit()
		except Exception as e:  # reported by the test below
			other["error"] = e
			created.set()
		finally:
			frappe.destroy()

	thread = threading.Thread(target=other_sync)
	thread.start()
	assert created.wait(60), "the other sync did not get as far as its Contact"
	assert "error" not in other, other.get("error")
	# This sync's transaction began before the other committed: its snapshot does not show that Contact.
	frappe.db.sql("select count(*) from `tabContact Email`")
	timer = threading.Timer(1.0, commit_now.set)
	timer.start()
	mine = item_for(NewContact(email, "New Person" if same_name else "N. Person (Sales)", customer))
	writer._create_contacts([mine])
	frappe.db.commit()
	thread.join(30)
	timer.cancel()

	assert contacts_with(email) == other["contacts"]
	assert mine.plan.contacts == other["contacts"]


def test_the_address_locks_are_released_when_the_batch_ends(site):
	domain = f"{unique('lock')}.example"
	customer = make_customer(f"Lock {domain}", domains=domain)
	email = f"someone@{domain}"
	writer._create_contacts([item_for(NewContact(email, "Some One", customer))])
	name = writer._address_lock_name(email)
	assert frappe.db.sql("select is_used_lock(%s) = connection_id()", (name,))[0][0] == 1
	frappe.db.rollback()
	assert frappe.db.sql("select is_used_lock(%s)", (name,))[0][0] is None
	assert contacts_with(email) == []
