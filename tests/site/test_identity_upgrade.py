"""Mail without a Message-ID stays filed once when its content key changes between versions (a better
HTML-to-text reading changes the hash): it is recognised by sender, date and subject."""

import frappe
from factories import deliver, mail, make_account, make_contact, make_customer, new_mailbox, synced, unique

from email_sync.sync.runner import sync_account


def as_an_older_version_keyed_it(row) -> str:
	"""Give the filed email the key (and Communication name) an earlier reading of its text produced."""
	old_key = "0ld" + unique("k") + "0" * 26
	old_comm = old_key[:20]
	frappe.db.sql("update `tabCommunication` set name = %s where name = %s", (old_comm, row.communication))
	frappe.db.sql("update `tabCommunication Link` set parent = %s where parent = %s", (old_comm, row.communication))
	frappe.db.sql(
		"update `tabSynced Email` set name = %s, email_key = %s, communication = %s where name = %s",
		(unique("old"), old_key, old_comm, row.name),
	)
	frappe.db.commit()
	return old_comm


def test_mail_without_message_id_is_not_filed_again_after_its_key_changes(dovecot):
	domain = f"{unique('noid')}.test"
	customer = make_customer(f"NoId {domain}")
	make_contact("Nia", [f"nia@{domain}"], customer)
	first, second = new_mailbox(dovecot), new_mailbox(dovecot)
	one, two = make_account(dovecot, first), make_account(dovecot, second)
	html = "<html><body><p>Order <b>42</b> is late, see <a href='https://x.example/o/42'>here</a></p></body></html>"
	raw = mail(f"nia@{domain}", f"{first.name}, {second.name}", subject="Late order", body="x", message_id=None)
	raw = raw.replace(b"Content-Type: text/plain", b"Content-Type: text/html").replace(b"\nx\n", f"\n{html}\n".encode())
	deliver(dovecot, first, [raw])
	deliver(dovecot, second, [raw])
	sync_account(one)
	row = synced(one)[0]
	assert row.status == "Filed"
	old_comm = as_an_older_version_keyed_it(row)

	# the mailbox is read again from the start (a UIDVALIDITY reset): nothing new
	frappe.db.set_value("Email Sync Account", one, "sync_cursor", None)
	frappe.db.commit()
	counts = sync_account(one)
	assert counts.get("already_synced") == 1 and len(synced(one)) == 1

	# the other mailbox's copy files onto the same Communication
	sync_account(two)
	assert [r.communication for r in synced(two)] == [old_comm]
	assert frappe.db.count("Communication", {"subject": "Late order", "sender": f"nia@{domain}"}) == 1
