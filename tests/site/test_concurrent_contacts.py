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


def race_customer(prefix: str) -> tuple[str, str]:
	domain = f"{unique(prefix)}.example"
	customer = make_customer(f"Race {domain}", domains=domain)
	frappe.db.commit()
	return customer, f"new.person@{domain}"


class OtherSync(threading.Thread):
	"""Another worker, on its own connection: makes the Contact for `email`, and commits when told to.
	`write_first` gives its transaction a pending change first (as a batch filed one message at a time has)."""

	def __init__(self, site: str, new: NewContact, write_first: bool = False):
		super().__init__()
		self.site, self.sites_path, self.new, self.write_first = site, frappe.local.sites_path, new, write_first
		self.created, self.commit_now = threading.Event(), threading.Event()
		self.contacts, self.error = None, None

	def run(self):
		frappe.init(site=self.site, sites_path=self.sites_path)
		frappe.connect()
		frappe.set_user("Administrator")
		try:
			if self.write_first:
				make_customer(f"Other {unique('other')}")
			item = item_for(self.new)
			writer._create_contacts([item])
			self.contacts = item.plan.contacts
			self.created.set()
			self.commit_now.wait(30)
			frappe.db.commit()
		except Exception as e:  # noqa: BLE001 - reported by the test
			self.error = e
			self.created.set()
		finally:
			frappe.destroy()


@pytest.mark.parametrize("same_name", [True, False], ids=["same name", "another display name"])
def test_a_contact_another_sync_committed_after_this_batch_began_is_reused(site, same_name):
	customer, email = race_customer("race")
	frappe.db.sql("select count(*) from `tabContact Email`")  # this batch's snapshot: before the other's Contact
	other = OtherSync(site, NewContact(email, "New Person", customer))
	other.commit_now.set()
	other.start()
	other.join(60)
	assert other.error is None, other.error

	mine = item_for(NewContact(email, "New Person" if same_name else "N. Person (Sales)", customer))
	writer._create_contacts([mine])
	frappe.db.commit()

	assert contacts_with(email) == other.contacts
	assert mine.plan.contacts == other.contacts


def test_mid_transaction_a_contact_being_created_by_another_sync_is_waited_for_and_reused(site):
	customer, email = race_customer("wait")
	other = OtherSync(site, NewContact(email, "New Person", customer), write_first=True)
	other.start()
	assert other.created.wait(60), "the other sync did not get as far as its Contact"
	assert other.error is None, other.error
	# This batch has written already (one message at a time after a failed batch) and cannot commit early.
	make_customer(f"Mine {unique('mine')}")
	timer = threading.Timer(1.0, other.commit_now.set)
	timer.start()
	mine = item_for(NewContact(email, "N. Person", customer))
	writer._create_contacts([mine])  # waits for the other's commit
	frappe.db.commit()
	other.join(30)
	timer.cancel()

	assert contacts_with(email) == other.contacts
	assert mine.plan.contacts == other.contacts


def test_contacts_made_before_the_batch_writes_are_committed_and_unlocked(site):
	customer, email = race_customer("lock")
	writer._create_contacts([item_for(NewContact(email, "Some One", customer))])
	frappe.db.rollback()  # the batch fails after all: its new Contact stays, for the next run
	assert len(contacts_with(email)) == 1
	assert frappe.db.sql("select is_used_lock(%s)", (writer._address_lock_name(email),))[0][0] is None


def test_mid_transaction_the_address_locks_are_held_until_the_batch_ends(site):
	customer, email = race_customer("held")
	make_customer(f"Pending {unique('pending')}")  # a change not committed yet
	writer._create_contacts([item_for(NewContact(email, "Some One", customer))])
	name = writer._address_lock_name(email)
	assert frappe.db.sql("select is_used_lock(%s) = connection_id()", (name,))[0][0] == 1
	frappe.db.rollback()
	assert frappe.db.sql("select is_used_lock(%s)", (name,))[0][0] is None
	assert contacts_with(email) == []
