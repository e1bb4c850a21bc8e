"""Company scale: a run with no new mail reads nothing but its cursor and the mailbox; matching looks up only
the addresses and domains of a batch, by index; a long run yields to the other accounts' jobs."""

import re

import frappe
from factories import (
	deliver,
	ensure_group,
	mail,
	make_account,
	make_contact,
	make_customer,
	new_mailbox,
	run_worker_burst,
	set_domains,
	site_user,
	synced,
	unique,
)

from email_sync import indexes
from email_sync.engine.addresses import canonical
from email_sync.sync import directory
from email_sync.sync.dispatcher import due_accounts
from email_sync.sync.runner import sync_account
from email_sync.sync.tasks import enqueue_sync

# What a run with no new mail must not read: the directory (Contacts, Customers, Users) and the rules.
DIRECTORY_TABLES = re.compile(
	r"tab(Contact|Dynamic Link|User|Customer|Email Sync (Customer Domain|Blacklist|Filter))\b"
)


def recorded(monkeypatch, call):
	"""(result, statements, Questions) of `call()`: every statement it sent, and what MariaDB counted."""
	statements = []
	original = frappe.db.sql

	def sql(query, *args, **kwargs):
		statements.append(" ".join(str(query).split()))
		return original(query, *args, **kwargs)

	before = _questions()
	with monkeypatch.context() as patch:
		patch.setattr(frappe.db, "sql", sql)
		result = call()
	return result, statements, _questions() - before - 1  # less the first `show session status` itself


def _questions() -> int:
	return int(frappe.db.sql("show session status like 'Questions'")[0][1])


def test_an_idle_run_reads_no_directory_and_costs_the_same_with_more_contacts(dovecot, monkeypatch):
	user = new_mailbox(dovecot)
	deliver(dovecot, user, [mail(f"{unique('a')}@nowhere.example", user.name)])
	account = make_account(dovecot, user)
	sync_account(account)

	counts, statements, first = recorded(monkeypatch, lambda: sync_account(account))
	assert counts.get("fetched", 0) == 0
	assert [s for s in statements if DIRECTORY_TABLES.search(s)] == []
	for i in range(20):  # more Contacts on the site change nothing
		make_contact(f"Many {i}", [f"{unique('many')}@many.example"])
	frappe.db.commit()
	_, _, second = recorded(monkeypatch, lambda: sync_account(account))
	assert first == second and first <= 30, (first, statements)


def test_matching_asks_by_index_for_the_batch_alone_and_still_finds_everyone(dovecot, monkeypatch):
	domain = f"{unique('scale')}.test"
	customer = make_customer(f"Scale {domain}", domains=domain)
	ana = make_contact("Ana", [f"ana.primary@{domain}", f"ana.second@{domain}"], customer)
	joe = f"joe.doe.{unique('j')}@gmail.com"
	make_contact("Joe", [joe], customer)
	supplier = frappe.get_doc(
		{
			"doctype": "Supplier",
			"supplier_name": f"Parts {domain}",
			"supplier_group": ensure_group("Supplier Group", "All Supplier Groups", "supplier_group_name"),
		}
	).insert(ignore_permissions=True)
	vendor = f"sam@parts-{domain}"
	contact = frappe.get_doc({"doctype": "Contact", "first_name": "Sam", "email_ids": [{"email_id": vendor}]})
	contact.append("links", {"link_doctype": "Supplier", "link_name": supplier.name})
	contact.insert(ignore_permissions=True)
	colleague = site_user("scale", "Sales User")  # a system user: never matched, even as a Contact's address
	make_contact("Colleague", [colleague], customer)
	newcomer = f"new.person@{domain}"
	stranger = f"{unique('stranger')}@yahoo.com"
	user = new_mailbox(dovecot)
	deliver(
		dovecot,
		user,
		[
			mail(f"ana.second@{domain}", user.name, subject="1 additional address"),
			mail(newcomer, user.name, subject="2 new person at the customer's domain"),
			mail(vendor, user.name, subject="3 vendor"),
			mail(colleague, user.name, cc=stranger, subject="4 user"),
			mail(joe.replace(".", "", 1), user.name, subject="5 gmail without the dot"),
			mail(f"ana.primray@{domain}", user.name, subject="6 typo"),
			mail(newcomer, user.name, subject="7 new person again, a later batch"),
		],
	)
	account = make_account(dovecot, user, batch_size=2)
	settings = frappe.get_single("Email Sync Settings")
	settings.exclude_suppliers = 1
	settings.save()
	frappe.db.commit()
	lookups = []
	chunked = directory._chunked

	def recording(query, values):
		lookups.append((query, list(values)))
		return chunked(query, values)

	monkeypatch.setattr(directory, "_chunked", recording)
	try:
		sync_account(account)
	finally:
		settings.reload()
		settings.exclude_suppliers = 0
		settings.save()
		frappe.db.commit()

	rows = {r.subject.split()[0]: r for r in synced(account)}
	assert [rows[n].decision_rule for n in "123"] == ["matched", "domain", "vendor"]
	assert frappe.db.exists("Communication Link", {"parent": rows["1"].communication, "link_name": ana})
	assert rows["4"].status == "Needs Review" and f"never matched: {colleague}" in rows["4"].reason
	assert (rows["5"].decision_rule, rows["6"].decision_rule) == ("variant", "variant")
	assert joe in rows["5"].reason and f"ana.primary@{domain}" in rows["6"].reason
	assert rows["7"].decision_rule == "matched"  # the Contact made in batch 1, learnt: not a second one
	assert frappe.db.count("Contact Email", {"email_id": newcomer}) == 1

	# Only what the mail names was asked, and every lookup can use an index
	addresses = {f"ana.second@{domain}", newcomer, vendor, colleague, stranger, joe.replace(".", "", 1),
	             f"ana.primray@{domain}", user.name}  # fmt: skip
	for query, values in lookups:
		if "email_id in" in query or "email in" in query:
			assert set(values) <= addresses, query
		elif "email_sync_canonical in" in query:
			assert set(values) <= {canonical(a) for a in addresses}, query
		elif "domain in" in query:
			assert set(values) <= {a.rpartition("@")[2] for a in addresses}, query
		for step in frappe.db.sql("explain " + query, {"values": values[:500] or [""]}, as_dict=True):
			if not str(step.table).startswith("<"):  # a union's own row
				assert step.possible_keys, (query, step)


def test_lookup_columns_follow_saves_and_migrate_fills_what_was_written_around_the_orm():
	domain = f"{unique('cols')}.test"
	customer = make_customer(f"Cols {domain}", domains=f"{domain}\n@Other-{domain}, {domain}")

	def domains():
		return frappe.get_all(
			"Email Sync Customer Domain", filters={"customer": customer}, pluck="domain", order_by="idx asc"
		)

	assert domains() == [domain, f"other-{domain}"]
	set_domains(customer, f"sales.{domain}")
	assert domains() == [f"sales.{domain}"]
	frappe.db.set_value("Customer", customer, "email_sync_domains", domain)  # around the ORM
	assert domains() == [f"sales.{domain}"] and indexes.backfill_customer_domains() >= 1
	assert domains() == [domain]

	contact = make_contact("Eve", ["Eve.Doe+News@GoogleMail.com"])
	columns = ["email_sync_domain", "email_sync_canonical"]
	row = frappe.db.get_value("Contact Email", {"parent": contact}, columns)
	assert row == ("googlemail.com", "evedoe@gmail.com")
	# Rows written by SQL get the same columns from migrate's UPDATE as a save gives them
	tricky = ["A.B+x@GoogleMail.com", " j.doe@Gmail.com ", "first.last+tag+more@acme.com", "+tag@acme.com",
	          "@gmail.com", "@googlemail.com", "odd@sub.acme.com", "a@b@acme.com", "plain"]  # fmt: skip
	for i, email in enumerate(tricky):
		frappe.db.sql(
			"""insert into `tabContact Email` (name, parent, parenttype, parentfield, idx, email_id)
			values (%s, %s, 'Contact', 'email_ids', %s, %s)""",
			(f"{contact}-sql-{i}", contact, i + 10, email),
		)
	indexes.backfill_contact_emails()
	for i, email in enumerate(tricky):
		got = frappe.db.get_value("Contact Email", f"{contact}-sql-{i}", columns)
		address = email.strip().lower()
		assert got == (address.rpartition("@")[2] if "@" in address else "", canonical(address)), email


def test_the_dispatcher_asks_one_query_its_status_index_serves(monkeypatch):
	due_accounts()  # with the DocType's meta cached, as every minute after the first
	_, statements, _ = recorded(monkeypatch, due_accounts)
	[query] = [s for s in statements if "tabEmail Sync Account" in s]
	assert len(statements) == 1
	[step] = frappe.db.sql("explain " + query, as_dict=True)
	assert "status" in (step.possible_keys or "")


def test_a_long_first_sync_yields_and_another_account_runs_in_between(dovecot):
	big_user, small_user = new_mailbox(dovecot), new_mailbox(dovecot)
	sender = f"{unique('n')}@nowhere.example"
	deliver(dovecot, big_user, [mail(sender, big_user.name, subject=f"m{i}") for i in range(10)])
	deliver(dovecot, small_user, [mail(sender, small_user.name)])
	big = make_account(dovecot, big_user, batch_size=4, frequency="Manual only")
	small = make_account(dovecot, small_user, frequency="Manual only")
	settings = frappe.get_single("Email Sync Settings")
	settings.run_time_budget = 0.01  # every run yields after its first batch
	settings.save()
	frappe.db.commit()
	try:
		enqueue_sync(big, "Manual")
		enqueue_sync(small, "Manual")
		frappe.db.commit()  # enqueued after the commit
		run_worker_burst()
	finally:
		settings.reload()
		settings.run_time_budget = 120
		settings.save()
		frappe.db.commit()

	logs = frappe.get_all(
		"Email Sync Log",
		filters={"account": ("in", [big, small])},
		fields=["account", "fetched", "yielded", "triggered_by", "status"],
		order_by="creation asc",
	)
	order = [log.account for log in logs]
	assert order[0] == big and order.index(small) < max(i for i, a in enumerate(order) if a == big)
	runs = [(log.fetched, log.yielded, log.triggered_by, log.status) for log in logs if log.account == big]
	assert runs == [(4, 1, "Manual", "Success"), (4, 1, "Continued", "Success"), (2, 0, "Continued", "Success")]
	rows = synced(big)
	assert len(rows) == 10 and len({r.subject for r in rows}) == 10  # everything, exactly once
	assert len({r.communication for r in rows if r.communication}) == len([r for r in rows if r.communication])
