"""Scale benchmark: what a sync run costs as the site grows from 1,000 to 100,000 and 1,000,000 Contacts.

Run from the bench's `sites` directory with the bench's Python (use a site of its own: it holds the seeded
Contacts between runs):

    cd <bench>/sites
    ../env/bin/python <repo>/benchmarks/scale.py --site <site> --contacts 1000,100000
    ../env/bin/python <repo>/benchmarks/scale.py --site <site> --contacts 1000,100000,1000000
    ../env/bin/python <repo>/benchmarks/scale.py --site <site> --cleanup      # remove every seeded row

Per Contact count N, in the order given:
1. The site is brought to exactly N seeded Contacts by bulk INSERT statements (not the ORM): Contacts named
   SCALE-0000000.., one Contact Email and one Dynamic Link each, linked to Customers SCALE-C-000000.. (one per
   five Contacts, each with its own domain in *Email Domains*). Four in five Contacts write from their
   company's domain, one in five from a free-mail address. Rows are kept between runs (a smaller N deletes
   the surplus) and carry the SCALE- prefix, so --cleanup can remove them.
2. idle: an account whose mailbox has nothing new (synced once beforehand) is synced --idle-runs times.
3. 200 messages: a fresh mailbox with --messages messages is synced once, --repeats times (a new account
   each time). The mail is the same at every N and only names the first 1,000 seeded Contacts: 70% from
   known company addresses (a quarter with a colleague in Cc), 10% from new people at seeded Customer domains
   (new Contacts), 10% unknown free-mail senders, 5% one-letter typos of known addresses, 5% known free-mail
   Contacts (half of them Gmail addresses written without their dot).
   Each run's records are deleted afterwards (accounts, Synced Emails, Communications, logs, new Contacts).
4. dispatcher: 1,000 Active Real-time accounts (half due) are inserted, the dispatcher's `due_accounts()`
   is timed, and the accounts are deleted again.

Wall times are the median and the best of the runs (the best is the steadier figure on a shared machine);
queries are the MariaDB `Questions` of this connection. Ratios are to the smallest N.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "providers"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from imap_sync import (  # noqa: E402
	FIRST,
	LAST,
	cleanup_email_sync,
	create_email_sync_account,
	delete_new_contacts,
	status_value,
)

TAG = "SCALE-"
PER_CUSTOMER = 5
FREE = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")
CHUNK = 5000
ACCOUNT_PREFIX = "scale-inbox-"
DISPATCH_PREFIX = "scale-dispatch-"
MAIL_POOL = 1000  # the mail names only these first Contacts, present at every N


# -- the seeded population: a pure function of the Contact's number ------------------------------------------


def customer_domain(d: int) -> str:
	return f"co{d:06d}.scale.example"


def person(i: int) -> tuple[str, str, str, int]:
	"""(first, last, email, customer number) of seeded Contact i."""
	first, last = FIRST[i % len(FIRST)], LAST[(i // len(FIRST)) % len(LAST)]
	d = i // PER_CUSTOMER
	if i % PER_CUSTOMER == PER_CUSTOMER - 1:
		email = f"{first.lower()}.{last.lower()}{i}@{FREE[d % len(FREE)]}"
	else:
		email = f"{first.lower()}.{last.lower()}@{customer_domain(d)}"
	return first, last, email, d


def contact_name(i: int) -> str:
	return f"{TAG}{i:07d}"


def customer_name(d: int) -> str:
	return f"{TAG}C-{d:06d}"


def customers_for(contacts: int) -> int:
	return -(-contacts // PER_CUSTOMER)


def seeded(frappe) -> int:
	return frappe.db.sql("select count(*) from tabContact where name like %s", (TAG + "%",))[0][0]


def insert_rows(frappe, table: str, columns: tuple[str, ...], rows: list[tuple]) -> None:
	if not rows:
		return
	placeholders = "(" + ", ".join(["%s"] * len(columns)) + ")"
	names = ", ".join(f"`{c}`" for c in columns)
	for start in range(0, len(rows), CHUNK):
		chunk = rows[start : start + CHUNK]
		values = [v for row in chunk for v in row]
		frappe.db.sql(f"insert into `{table}` ({names}) values {', '.join([placeholders] * len(chunk))}", values)


def has_column(frappe, table: str, column: str) -> bool:
	return bool(frappe.db.sql(f"show columns from `{table}` like %s", (column,)))


def has_table(frappe, table: str) -> bool:
	return bool(frappe.db.sql("show tables like %s", (table,)))


def seed_to(frappe, target: int) -> float:
	"""Bring the seeded Contacts to exactly `target`; returns the seconds it took."""
	t0 = time.perf_counter()
	have = seeded(frappe)
	if have > target:
		remove_seed(frappe, target)
	step = 20_000
	for start in range(have, target, step):
		insert_contacts(frappe, start, min(target, start + step))
		frappe.db.commit()  # each step is whole: Contacts with their Customers, addresses and links
		print(f"  seeded {min(target, start + step):,} Contacts", end="\r", flush=True)
	return time.perf_counter() - t0


def insert_contacts(frappe, start: int, end: int) -> None:
	from email_sync.engine.addresses import canonical

	now = datetime.now().strftime("%Y-%m-%d %H:%M:%S.%f")
	std = (now, now, "Administrator", "Administrator", 0)
	std_cols = ("creation", "modified", "owner", "modified_by", "docstatus")
	first_customer, last_customer = customers_for(start), customers_for(end)
	customers = [
		(name, name, "Company", "All Customer Groups", "All Territories", customer_domain(d), *std)
		for d in range(first_customer, last_customer)
		for name in [customer_name(d)]
	]
	insert_rows(
		frappe,
		"tabCustomer",
		("name", "customer_name", "customer_type", "customer_group", "territory", "email_sync_domains", *std_cols),
		customers,
	)
	if has_table(frappe, "tabEmail Sync Customer Domain"):  # the indexed Email Domains, where the site has them
		insert_rows(
			frappe,
			"tabEmail Sync Customer Domain",
			("name", "customer", "idx", "domain", *std_cols),
			[
				(f"{TAG}D-{d:06d}", customer_name(d), 1, customer_domain(d), *std)
				for d in range(first_customer, last_customer)
			],
		)
	people = [(i, *person(i)) for i in range(start, end)]
	insert_rows(
		frappe,
		"tabContact",
		("name", "first_name", "last_name", "full_name", "email_id", "status", *std_cols),
		[(contact_name(i), f, la, f"{f} {la}", e, "Passive", *std) for i, f, la, e, _ in people],
	)
	email_cols = ("name", "parent", "parenttype", "parentfield", "idx", "email_id", "is_primary", *std_cols)
	indexed = has_column(frappe, "tabContact Email", "email_sync_domain")
	if indexed:
		email_cols += ("email_sync_domain", "email_sync_canonical")
	insert_rows(
		frappe,
		"tabContact Email",
		email_cols,
		[
			(f"{TAG}E-{i:07d}", contact_name(i), "Contact", "email_ids", 1, e, 1, *std)
			+ ((e.rpartition("@")[2], canonical(e)) if indexed else ())
			for i, _f, _la, e, _ in people
		],
	)
	insert_rows(
		frappe,
		"tabDynamic Link",
		("name", "parent", "parenttype", "parentfield", "idx", "link_doctype", "link_name", "link_title",
		 *std_cols),
		[
			(f"{TAG}L-{i:07d}", contact_name(i), "Contact", "links", 1, "Customer", name, name, *std)
			for i, _f, _la, _e, d in people
			for name in [customer_name(d)]
		],
	)


def remove_seed(frappe, keep: int = 0) -> None:
	"""Delete seeded Contacts numbered `keep` and above, with their rows and Customers no Contact is left in."""
	for table, column, prefix, width in (
		("tabContact Email", "name", f"{TAG}E-", 7),
		("tabDynamic Link", "name", f"{TAG}L-", 7),
		("tabContact", "name", TAG, 7),
	):
		frappe.db.sql(
			f"delete from `{table}` where {column} like %s and {column} >= %s",
			(f"{prefix}{'_' * width}", f"{prefix}{keep:0{width}d}"),
		)
	first_gone = customers_for(keep)
	frappe.db.sql(
		"delete from tabCustomer where name like %s and name >= %s", (f"{TAG}C-______", customer_name(first_gone))
	)
	if has_table(frappe, "tabEmail Sync Customer Domain"):
		frappe.db.sql(
			"delete from `tabEmail Sync Customer Domain` where name like %s and name >= %s",
			(f"{TAG}D-______", f"{TAG}D-{first_gone:06d}"),
		)
	frappe.db.commit()


# -- the mail ---------------------------------------------------------------------------------------------


def generate_mail(run: str, mailbox: str, count: int) -> list[bytes]:
	"""The same mix at every N (see the module docstring); Message-IDs carry the run id."""
	company = [i for i in range(MAIL_POOL) if i % PER_CUSTOMER != PER_CUSTOMER - 1]
	free = [i for i in range(MAIL_POOL) if i % PER_CUSTOMER == PER_CUSTOMER - 1]
	gmail = [i for i in free if person(i)[2].endswith("@gmail.com")]
	messages = []
	when = datetime(2026, 3, 2, 8, 0, tzinfo=timezone.utc)
	for k in range(count):
		slot = k % 20
		cc = ""
		i = company[(k * 7) % len(company)]
		first, last, email, d = person(i)
		if slot < 14:  # a known company address, sometimes with a colleague in Cc
			sender = email
			if slot % 4 == 0:
				cc = person(i + 1 if (i + 1) % PER_CUSTOMER != PER_CUSTOMER - 1 else i - 1)[2]
		elif slot < 16:  # a new person at a Customer's domain
			sender = f"new.person{k}.{run}@{customer_domain(d)}"
		elif slot < 18:  # nobody known, at a free-mail domain
			sender = f"someone{k}.{run}@{FREE[k % len(FREE)]}"
		elif slot == 18:  # a one-letter typo of a known address
			local, _, domain = email.partition("@")
			sender = f"{local[:-2]}{local[-1]}@{domain}"
		elif k // 20 % 2:  # a known free-mail Contact
			sender = person(free[k % len(free)])[2]
		else:  # a known Gmail Contact, written without the dot
			sender = person(gmail[k % len(gmail)])[2].replace(".", "", 1)
		msg = EmailMessage()
		msg["From"] = sender
		msg["To"] = mailbox
		if cc:
			msg["Cc"] = cc
		msg["Subject"] = f"Order {10000 + k}: delivery date"
		msg["Date"] = format_datetime(when.replace(minute=k % 60, second=k // 60 % 60))
		msg["Message-ID"] = f"<{run}.{k:05d}@scale.example>"
		msg.set_content(f"Hello,\n\ncould you confirm the delivery date of order {10000 + k}?\n\n{first} {last}\n")
		messages.append(msg.as_bytes())
	return messages


# -- measuring -------------------------------------------------------------------------------------------


def make_account(frappe, server, user, run: str) -> str:
	return create_email_sync_account(frappe, f"{ACCOUNT_PREFIX}{run}@scale.example", server, user, batch_size=200)


def run_id() -> str:
	# Random, so no two runs' new addresses are one letter apart (they would be near variants of each other).
	return uuid.uuid4().hex[:10]


def timed_sync(frappe, account: str, overhead: int) -> tuple[float, int, dict]:
	from email_sync.sync.runner import sync_account

	q0 = status_value(frappe, "Questions")
	t0 = time.perf_counter()
	counts = sync_account(account, trigger="Manual")
	seconds = time.perf_counter() - t0
	return seconds, status_value(frappe, "Questions") - q0 - overhead, counts


def mail_run(frappe, server, args, run: str, overhead: int) -> dict:
	from dovecot import fill_mailbox

	user = server.add_user(name=f"{ACCOUNT_PREFIX}{run}@scale.example")
	mail = generate_mail(run, user.name, args.messages)
	fill_mailbox(server.host, server.port, user.name, user.password, "INBOX", mail)
	account = make_account(frappe, server, user, run)
	since = frappe.utils.now_datetime()
	try:
		seconds, queries, _ = timed_sync(frappe, account, overhead)
		statuses = dict(
			frappe.db.sql(
				"select decision_rule, count(*) from `tabSynced Email` where account = %s group by decision_rule",
				(account,),
			)
		)
	finally:
		new = frappe.db.sql_list(
			"select email_id from `tabContact Email` where email_id like %s", (f"new.person%.{run}@%",)
		)
		cleanup_email_sync(frappe, account, {a.lower() for a in new}, since)
	return {"seconds": seconds, "queries": queries, "rules": statuses}


def idle_runs(frappe, server, args, run: str, overhead: int) -> dict:
	from dovecot import fill_mailbox

	user = server.add_user(name=f"{ACCOUNT_PREFIX}{run}@scale.example")
	fill_mailbox(server.host, server.port, user.name, user.password, "INBOX", generate_mail(run, user.name, 1))
	account = make_account(frappe, server, user, run)
	try:
		timed_sync(frappe, account, overhead)  # the one message; from here on nothing is new
		samples = [timed_sync(frappe, account, overhead) for _ in range(args.idle_runs)]
	finally:
		cleanup_email_sync(frappe, account, set(), frappe.utils.now_datetime())
	return {"seconds": [s for s, _, _ in samples], "queries": max(q for _, q, _ in samples)}


def bench_level(frappe, server, args, n: int, overhead: int) -> dict:
	seconds = seed_to(frappe, n)
	total = frappe.db.count("Contact")
	print(f"\n{n:,} seeded Contacts ({total:,} on the site), seeding took {seconds:.1f} s", flush=True)
	if seconds > 1:
		time.sleep(args.settle)  # let the database finish its own work on the rows just written or deleted
	mail_run(frappe, server, args, run_id(), overhead)  # warm-up: caches, connections
	idle = idle_runs(frappe, server, args, run_id(), overhead)
	times = ", ".join(f"{s:.3f}" for s in idle["seconds"])
	print(f"  idle runs: {times} s, {idle['queries']} queries", flush=True)
	runs = [mail_run(frappe, server, args, run_id(), overhead) for _ in range(args.repeats)]
	for r in runs:
		print(f"  {args.messages}-message run: {r['seconds']:.3f} s, {r['queries']} queries, {r['rules']}")
	return {
		"contacts": n,
		"site_contacts": total,
		"seed_seconds": round(seconds, 1),
		"idle_seconds": statistics.median(idle["seconds"]),
		"idle_best": min(idle["seconds"]),
		"idle_queries": idle["queries"],
		"mail_seconds": statistics.median(r["seconds"] for r in runs),
		"mail_best": min(r["seconds"] for r in runs),
		"mail_queries": statistics.median(r["queries"] for r in runs),
		"rules": runs[0]["rules"],
	}


def bench_dispatcher(frappe, accounts: int, overhead: int) -> dict:
	from email_sync.sync import dispatcher

	remove_dispatch_accounts(frappe)
	now = frappe.utils.now_datetime()
	rows = []
	for k in range(accounts):
		name = f"{DISPATCH_PREFIX}{k:05d}@scale.example"
		last = frappe.utils.add_to_date(now, minutes=-2 if k % 2 else 0, seconds=-10)
		rows.append((name, name, "IMAP", "Active", "Real-time", "Inbound only", last, now, now, "Administrator",
		             "Administrator", 0))  # fmt: skip
	insert_rows(
		frappe,
		"tabEmail Sync Account",
		("name", "email_address", "provider", "status", "frequency", "direction", "last_sync", "creation",
		 "modified", "owner", "modified_by", "docstatus"),
		rows,
	)  # fmt: skip
	frappe.db.commit()
	try:
		dispatcher.due_accounts()  # warm-up
		samples = []
		for _ in range(20):
			q0 = status_value(frappe, "Questions")
			t0 = time.perf_counter()
			due = dispatcher.due_accounts()
			samples.append((time.perf_counter() - t0, status_value(frappe, "Questions") - q0 - overhead))
		plan = frappe.db.sql("explain " + dispatcher_query(frappe), as_dict=True)
	finally:
		remove_dispatch_accounts(frappe)
	return {
		"accounts": accounts,
		"due": sum(1 for a in due if a.startswith(DISPATCH_PREFIX)),
		"seconds": statistics.median(s for s, _ in samples),
		"queries": max(q for _, q in samples),
		"plan": [{k: p.get(k) for k in ("table", "type", "possible_keys", "key", "rows")} for p in plan],
	}


def dispatcher_query(frappe) -> str:
	"""The SQL of the dispatcher's one query, for EXPLAIN (its filters, as due_accounts() passes them)."""
	return frappe.get_all(
		"Email Sync Account",
		filters={"status": "Active", "frequency": ("!=", "Manual only")},
		fields=["name", "frequency", "last_sync", "next_sync_after", "skip_times"],
		order_by="last_sync asc",
		run=0,
	)


def remove_dispatch_accounts(frappe) -> None:
	frappe.db.sql("delete from `tabEmail Sync Account` where name like %s", (DISPATCH_PREFIX + "%",))
	frappe.db.commit()


def cleanup_stale(frappe) -> None:
	"""What runs that died before their own cleanup left: accounts, and the Contacts their mail created."""
	accounts = frappe.db.sql_list(
		"select name from `tabEmail Sync Account` where name like %s", (ACCOUNT_PREFIX + "%",)
	)
	for name in accounts:
		cleanup_email_sync(frappe, name, set(), frappe.utils.now_datetime())
	remove_dispatch_accounts(frappe)
	created = frappe.db.sql_list(
		"select email_id from `tabContact Email` where email_id like 'new.person%%.scale.example'"
	)
	delete_new_contacts(frappe, {e.lower() for e in created}, datetime(2000, 1, 1))
	frappe.db.commit()


def print_table(results: list[dict], dispatch: dict | None, messages: int) -> None:
	results = sorted(results, key=lambda r: r["contacts"])
	base = results[0]
	print(f"\n{'':12} {'idle run: median':>17} {'best':>12} {'queries':>8}   "
	      f"{f'{messages} messages: median':>23} {'best':>12} {'ms/msg':>7} {'queries':>8}")  # fmt: skip
	print(f"{'Contacts':>12}")
	for r in results:

		def cell(key: str) -> str:
			return f"{r[key]:.3f} {r[key] / base[key]:>5.2f}x"

		print(
			f"{r['contacts']:>12,} {cell('idle_seconds'):>17} {cell('idle_best'):>12} {r['idle_queries']:>8}   "
			f"{cell('mail_seconds'):>23} {cell('mail_best'):>12} {1000 * r['mail_best'] / messages:>7.2f} "
			f"{r['mail_queries']:>8}"
		)
	print(f"decisions of one {messages}-message run: {results[-1]['rules']}")
	if dispatch:
		print(
			f"dispatcher, {dispatch['accounts']:,} Active accounts ({dispatch['due']} due): "
			f"{1000 * dispatch['seconds']:.1f} ms, {dispatch['queries']} queries; plan {dispatch['plan']}"
		)
	sys.stdout.flush()


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--contacts", default="1000,100000", help="seeded Contact counts, comma-separated")
	parser.add_argument("--messages", type=int, default=200, help="messages in a mail run")
	parser.add_argument("--repeats", type=int, default=5, help="mail runs per Contact count")
	parser.add_argument("--idle-runs", type=int, default=5, help="idle runs per Contact count")
	parser.add_argument("--settle", type=float, default=60, help="seconds to wait after (re)seeding")
	parser.add_argument("--accounts", type=int, default=1000, help="accounts for the dispatcher (0: skip)")
	parser.add_argument("--cleanup", action="store_true", help="remove every seeded row and exit")
	args = parser.parse_args()

	import frappe
	from dovecot import Dovecot

	frappe.init(args.site, sites_path=".")
	frappe.connect()
	frappe.set_user("Administrator")
	import email_sync.sync.dispatcher  # noqa: F401 - the code measured is the code at the start
	import email_sync.sync.runner  # noqa: F401

	try:
		cleanup_stale(frappe)
		if args.cleanup:
			remove_seed(frappe, 0)
			print("seeded rows removed")
			return
		a = status_value(frappe, "Questions")
		overhead = status_value(frappe, "Questions") - a  # what one `show session status` itself counts
		server = Dovecot.start()
		try:
			levels = [int(c) for c in args.contacts.split(",") if c.strip()]
			results = [bench_level(frappe, server, args, n, overhead) for n in levels]
		finally:
			server.stop()
			server.cleanup()
		dispatch = bench_dispatcher(frappe, args.accounts, overhead) if args.accounts else None
		print_table(results, dispatch, args.messages)
	finally:
		frappe.destroy()


if __name__ == "__main__":
	main()
