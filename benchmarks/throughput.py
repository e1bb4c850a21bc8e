"""Throughput on 1, 2 and 4 RQ workers: 16 IMAP mailboxes with overlapping mail, synced by real workers.

Run from the sites directory of a bench whose queue Redis no other worker listens to (the numbers would
include their work otherwise; see benchmarks/README.md for a private sites directory), with the bench's Python:

    cd <sites dir>
    <bench>/env/bin/python <repo>/benchmarks/throughput.py --site <site> --messages 8000
    <bench>/env/bin/python <repo>/benchmarks/throughput.py --site <site> --messages 8000 --workers 1,2,4

Per worker count W, with fresh mail each time (Message-IDs and new people carry the run's id):
1. A throwaway Dovecot on 127.0.0.1 (tests/providers/dovecot.py) gets 16 users. --messages placements in
   all: each distinct mail lands in 1, 2 or 4 of the mailboxes (the same Message-ID, the mailboxes in To/Cc).
   60% from seeded Contacts, 25% from new people at seeded Customers' domains (each writes several mails, to
   several mailboxes: they must become one Contact each), 10% unknown free-mail senders (Needs Review), 5%
   newsletters (skipped).
2. 16 Email Sync Accounts (IMAP, Manual only: the scheduler leaves them alone), W workers started as
   `bench worker` does (`frappe worker`, all queues) and registered, then one sync job per account is
   enqueued; the clock runs from the enqueue until every placement has its Synced Email and the queues are
   empty. The workers are stopped afterwards.
3. Checks: one Synced Email per placement, one Communication per distinct kept mail (Message-ID), one
   Contact per new address, no Synced Email in Error, no failed Email Sync Log, no Error Log row.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "providers"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from imap_sync import FIRST, LAST

MAILBOXES = 16
N_CUSTOMERS = 40
CONTACTS_PER_CUSTOMER = 4
INTERNAL = "soak-company.example"
FREE = ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com")
NEWSLETTERS = ("news@industry-weekly.example", "digest@cloudtools.example", "noreply@webinars.example")
COPIES = ((1, 0.7), (2, 0.2), (4, 0.1))  # how many mailboxes a mail lands in, and how often
SUBJECTS = ("Order {n}: delivery date", "Question about invoice INV-{n}", "Quote request {n}", "Meeting {n}",
            "Problem with shipment {n}", "Contract renewal {n}", "Returns for order {n}")  # fmt: skip


def customer_domain(c: int) -> str:
	return f"soak-c{c:02d}.example"


def known_address(c: int, k: int) -> tuple[str, str]:
	first, last = FIRST[(c * 7 + k) % len(FIRST)], LAST[(c * 3 + k * 11) % len(LAST)]
	return f"{first} {last}", f"{first.lower()}.{last.lower()}@{customer_domain(c)}"


# -- the site ----------------------------------------------------------------------------------------------------


def prepare_site(frappe) -> None:
	"""Idempotent: the internal domain, 40 Customers with a domain each, 4 Contacts at each."""
	settings = frappe.get_single("Email Sync Settings")
	domains = settings.internal_domains or ""
	if INTERNAL not in domains:
		settings.internal_domains = "\n".join(d for d in (domains.strip(), INTERNAL) if d)
		settings.save(ignore_permissions=True)
	for doctype, name, parent_field in (
		("Customer Group", "All Customer Groups", "parent_customer_group"),
		("Territory", "All Territories", "parent_territory"),
	):
		if not frappe.db.exists(doctype, name):
			frappe.get_doc({"doctype": doctype, doctype.lower().replace(" ", "_") + "_name": name, "is_group": 1,
			                parent_field: ""}).insert(ignore_permissions=True)  # fmt: skip
	for c in range(N_CUSTOMERS):
		title = f"Soak Customer {c:02d}"
		customer = frappe.db.get_value("Customer", {"customer_name": title})
		if not customer:
			customer = frappe.get_doc({
				"doctype": "Customer", "customer_name": title, "customer_type": "Company",
				"customer_group": "All Customer Groups", "territory": "All Territories",
				"email_sync_domains": customer_domain(c),
			}).insert(ignore_permissions=True).name  # fmt: skip
		for k in range(CONTACTS_PER_CUSTOMER):
			name, email = known_address(c, k)
			if frappe.db.exists("Contact Email", {"email_id": email, "parenttype": "Contact"}):
				continue
			first, _, last = name.partition(" ")
			frappe.get_doc({
				"doctype": "Contact", "first_name": first, "last_name": last,
				"email_ids": [{"email_id": email, "is_primary": 1}],
				"links": [{"link_doctype": "Customer", "link_name": customer}],
			}).insert(ignore_permissions=True)  # fmt: skip
	frappe.db.commit()


# -- the mail ----------------------------------------------------------------------------------------------------


@dataclass
class Mail:
	"""The mail of one run: what each mailbox holds, and what the site must look like afterwards."""

	run: str
	mailboxes: list[str]
	boxes: list[list[bytes]] = field(default_factory=list)  # raw messages per mailbox
	kept: set[str] = field(default_factory=set)  # Message-IDs that must become one Communication each
	new_people: set[str] = field(default_factory=set)  # addresses that must become one Contact each
	distinct: int = 0
	kinds: dict = field(default_factory=dict)

	@property
	def placements(self) -> int:
		return sum(map(len, self.boxes))


def make_mail(run: str, total: int, seed: int = 1) -> Mail:
	rng = random.Random(seed)
	mailboxes = [f"inbox{m:02d}-{run}@{INTERNAL}" for m in range(MAILBOXES)]
	mail = Mail(run, mailboxes, [[] for _ in range(MAILBOXES)])
	# New people get surnames of their own: one sharing a Contact's name at the same Customer would be held
	# for review as a possible namesake (rightly), and every run creates Contacts.
	new_pool = [
		(f"{f} {la}", f"{f.lower()}.{la.lower()}@{customer_domain(rng.randrange(N_CUSTOMERS))}")
		for j in range(max(16, total // 40))
		for f, la in [(rng.choice(FIRST), f"{rng.choice(LAST)}{letters(run, j)}")]
	]
	free_pool = [
		(f"{f} {la}", f"{f.lower()}{la.lower()}{run}{j}@{rng.choice(FREE)}")
		for j in range(max(16, total // 60))
		for f, la in [(rng.choice(FIRST), rng.choice(LAST))]
	]
	start = datetime(2026, 1, 5, 8, 0, tzinfo=timezone.utc)
	placed, i = 0, 0
	while placed < total:
		copies = min(rng.choices([c for c, _ in COPIES], [w for _, w in COPIES])[0], total - placed)
		boxes = rng.sample(range(MAILBOXES), copies)
		r = rng.random()
		kind = "known" if r < 0.60 else "new" if r < 0.85 else "free" if r < 0.95 else "newsletter"
		if kind == "known":
			name, sender = known_address(rng.randrange(N_CUSTOMERS), rng.randrange(CONTACTS_PER_CUSTOMER))
		elif kind == "new":
			name, sender = rng.choice(new_pool)
			mail.new_people.add(sender)
		elif kind == "free":
			name, sender = rng.choice(free_pool)
		else:
			name, sender = "Newsletter", rng.choice(NEWSLETTERS)
		message_id = f"<{run}.{i:06d}@{sender.rpartition('@')[2]}>"
		if kind != "newsletter":
			mail.kept.add(message_id)
		mail.kinds[kind] = mail.kinds.get(kind, 0) + 1
		raw = message(rng, i, run, kind, name, sender, [mailboxes[b] for b in boxes], message_id,
		              start + timedelta(minutes=i))  # fmt: skip
		for b in boxes:
			mail.boxes[b].append(raw)
		placed += copies
		i += 1
	mail.distinct = i
	return mail


def letters(run: str, j: int) -> str:
	"""A short lowercase tag, different for every (run, j)."""
	n, out = int(run, 16) * 100_000 + j, ""
	while n:
		n, r = divmod(n, 26)
		out += chr(97 + r)
	return out


def message(rng, i, run, kind, name, sender, to, message_id, when) -> bytes:
	headers = [
		f"From: {name} <{sender}>",
		f"To: {to[0]}",
		*([f"Cc: {', '.join(to[1:])}"] if len(to) > 1 else []),
		f"Subject: {rng.choice(SUBJECTS).format(n=rng.randint(1000, 9999))}",
		f"Date: {format_datetime(when)}",
		f"Message-ID: {message_id}",
		"MIME-Version: 1.0",
		"Content-Type: text/plain; charset=utf-8",
	]
	if kind == "newsletter":
		headers += [f"List-Unsubscribe: <mailto:unsubscribe@{sender.rpartition('@')[2]}?subject={run}{i}>",
		            "Precedence: bulk"]  # fmt: skip
	body = "\r\n".join(
		["Hello,", "", f"about our order {rng.randint(1000, 9999)}: could you confirm the delivery date?"]
		+ ["We would like to order the same quantity as last quarter."] * rng.randint(1, 6)
		+ ["", "Best regards,", name]
	)
	return ("\r\n".join(headers) + "\r\n\r\n" + body + "\r\n").encode()


def fill(server, mail: Mail) -> list:
	from dovecot import fill_mailbox

	users = []
	for m, raws in enumerate(mail.boxes):
		user = server.add_user(name=f"m{m:02d}-{mail.run}", password=f"pw-{mail.run}-{m}")
		if raws:
			fill_mailbox(server.host, server.port, user.name, user.password, "INBOX", raws)
		users.append(user)
	return users


def create_accounts(frappe, server, mail: Mail, users: list, frequency: str = "Manual only") -> list[str]:
	names = []
	for address, user in zip(mail.mailboxes, users, strict=True):
		doc = frappe.get_doc({
			"doctype": "Email Sync Account", "provider": "IMAP", "email_address": address, "status": "Active",
			"direction": "Inbound only", "frequency": frequency, "sync_start_date": "2000-01-01",
			"imap_host": server.host, "imap_port": server.port, "imap_security": "None",
			"auth_type": "Password", "username": user.name, "password": user.password, "batch_size": 200,
		}).insert(ignore_permissions=True)  # fmt: skip
		names.append(doc.name)
	frappe.db.commit()
	return names


# -- workers -----------------------------------------------------------------------------------------------------


class Workers:
	"""RQ workers started as `bench worker` starts them, in the current sites directory."""

	def __init__(self, log_dir: Path):
		self.log_dir = log_dir
		self.procs: list[subprocess.Popen] = []
		self.started = 0

	def start_one(self) -> subprocess.Popen:
		self.started += 1
		log = open(self.log_dir / f"worker-{self.started}.log", "ab")  # noqa: SIM115 - the worker owns it
		proc = subprocess.Popen(
			[sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "worker"],
			stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
		)  # fmt: skip
		self.procs.append(proc)
		return proc

	def start(self, count: int) -> None:
		for _ in range(count):
			self.start_one()

	def alive(self) -> list[subprocess.Popen]:
		return [p for p in self.procs if p.poll() is None]

	def wait_registered(self, timeout: float = 90) -> None:
		from frappe.utils.background_jobs import get_redis_conn
		from rq import Worker

		deadline = time.monotonic() + timeout
		while time.monotonic() < deadline:
			with contextlib.suppress(Exception):
				pids = {w.pid for w in Worker.all(connection=get_redis_conn())}
				if all(p.pid in pids for p in self.alive()):
					return
			time.sleep(0.5)
		raise RuntimeError("the workers did not register with the queue in time")

	def kill(self, proc: subprocess.Popen, sig=signal.SIGKILL) -> None:
		with contextlib.suppress(ProcessLookupError):
			os.killpg(proc.pid, sig)
		with contextlib.suppress(subprocess.TimeoutExpired):
			proc.wait(30)

	def stop(self, procs: list[subprocess.Popen] | None = None) -> None:
		"""SIGTERM to all, up to 15 s to finish, then SIGKILL to what is left."""
		procs = [p for p in (self.procs if procs is None else procs) if p.poll() is None]
		for proc in procs:
			with contextlib.suppress(ProcessLookupError):
				os.killpg(proc.pid, signal.SIGTERM)
		deadline = time.monotonic() + 15
		while time.monotonic() < deadline and any(p.poll() is None for p in procs):
			time.sleep(0.2)
		for proc in procs:
			if proc.poll() is None:
				self.kill(proc, signal.SIGKILL)


def queues_empty() -> bool:
	from frappe.utils.background_jobs import get_queues

	return all(q.count == 0 and q.started_job_registry.count == 0 for q in get_queues())


# -- checks ------------------------------------------------------------------------------------------------------


def check(frappe, mail: Mail, accounts: list[str], since: datetime) -> dict:
	"""What the site holds for this run's mail, and whether it is exactly what it must be."""
	frappe.db.commit()  # a fresh snapshot
	sql = frappe.db.sql
	synced = sql("select count(*) from `tabSynced Email` where account in %(a)s", {"a": accounts})[0][0]
	statuses = dict(sql("select status, count(*) from `tabSynced Email` where account in %(a)s group by status",
	                    {"a": accounts}))  # fmt: skip
	kept = {m.strip("<>") for m in mail.kept}
	per_id = dict(sql("select message_id, count(*) from tabCommunication where message_id like %s group by message_id",
	                  (f"{mail.run}.%",)))  # fmt: skip
	contacts = dict(
		sql(
			"""select e.email_id, count(distinct e.parent) from `tabContact Email` e
			where e.parenttype = 'Contact' and e.email_id in %(e)s group by e.email_id""",
			{"e": sorted(mail.new_people) or [""]},
		)
	)
	failed_logs = sql("select count(*) from `tabEmail Sync Log` where account in %(a)s and status = 'Failed'",
	                  {"a": accounts})[0][0]  # fmt: skip
	error_logs = sql("select count(*) from `tabError Log` where creation >= %s", (since,))[0][0]
	result = {
		"placements": mail.placements,
		"distinct_mails": mail.distinct,
		"synced_emails": synced,
		"statuses": statuses,
		"communications": sum(per_id.values()),
		"kept_mails": len(mail.kept),
		"mails_filed_twice": sum(1 for n in per_id.values() if n > 1),
		"kept_mails_missing": len(kept - set(per_id)),
		"new_addresses": len(mail.new_people),
		"contacts_for_them": sum(contacts.values()),
		"addresses_with_two_contacts": sum(1 for n in contacts.values() if n > 1),
		"addresses_without_contact": len(mail.new_people - set(contacts)),
		"failed_sync_logs": failed_logs,
		"error_log_rows": error_logs,
	}
	result["ok"] = (
		synced == mail.placements
		and not statuses.get("Error")
		and result["communications"] == len(mail.kept)
		and not result["mails_filed_twice"]
		and not result["kept_mails_missing"]
		and result["contacts_for_them"] == len(mail.new_people)
		and not result["addresses_without_contact"]
		and not failed_logs
		and not error_logs
	)
	return result


def site_now(frappe) -> datetime:
	from frappe.utils import now_datetime

	return now_datetime()  # site time, as `creation` is


# -- one measurement ---------------------------------------------------------------------------------------------


def measure(frappe, server, args, workers_count: int, log_dir: Path) -> dict:
	from email_sync.sync.tasks import enqueue_sync

	run = f"{datetime.now():%H%M%S}{os.urandom(2).hex()}"
	mail = make_mail(run, args.messages, args.seed)
	users = fill(server, mail)
	accounts = create_accounts(frappe, server, mail, users)
	print(f"\n== {workers_count} worker(s), run {run}: {mail.placements:,} messages in {MAILBOXES} mailboxes "
	      f"({mail.distinct:,} distinct; {mail.kinds}) ==", flush=True)  # fmt: skip
	workers = Workers(log_dir)
	workers.start(workers_count)
	try:
		workers.wait_registered()
		since = site_now(frappe)
		load = os.getloadavg()[0]
		t0 = time.perf_counter()
		for account in accounts:
			enqueue_sync(account, "Manual")
		frappe.db.commit()  # the jobs are queued after the commit
		synced, progressed = 0, t0
		deadline = t0 + args.timeout
		while time.perf_counter() < deadline:
			time.sleep(0.5)
			frappe.db.commit()
			now_synced = frappe.db.sql("select count(*) from `tabSynced Email` where account in %(a)s",
			                           {"a": accounts})[0][0]  # fmt: skip
			if now_synced != synced:
				synced, progressed = now_synced, time.perf_counter()
			if queues_empty() and (synced >= mail.placements or time.perf_counter() - progressed > 30):
				break  # done, or nothing left to do and nothing moving: the checks say what is missing
		seconds = time.perf_counter() - t0
	finally:
		workers.stop()
	result = {"workers": workers_count, "seconds": round(seconds, 2), "messages_per_s": round(mail.placements / seconds, 1),
	          "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2), "run": run}  # fmt: skip
	result.update(check(frappe, mail, accounts, since))
	print(json.dumps(result, default=str), flush=True)
	return result


def print_table(results: list[dict]) -> None:
	base = results[0]["messages_per_s"] if results else 0
	print("\nworkers | seconds | messages/s | vs 1 worker | correct")
	for r in results:
		print(f"{r['workers']:>7} | {r['seconds']:>7.1f} | {r['messages_per_s']:>10.1f} | "
		      f"{r['messages_per_s'] / base:>10.2f}x | {'yes' if r['ok'] else 'NO'}")  # fmt: skip
	print(f"cores: {os.cpu_count()}")


def stop_on_sigterm() -> None:
	"""A terminated run still stops its workers and its Dovecot (the `finally` blocks)."""

	def _exit(signum, frame):
		signal.signal(signal.SIGTERM, signal.SIG_IGN)  # the clean-up runs to its end
		raise SystemExit(f"stopped by signal {signum}")

	signal.signal(signal.SIGTERM, _exit)


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--messages", type=int, default=8000, help="messages in all 16 mailboxes, per worker count")
	parser.add_argument("--workers", default="1,2,4", help="worker counts to measure, in order")
	parser.add_argument("--seed", type=int, default=1)
	parser.add_argument("--timeout", type=float, default=1800, help="seconds to wait for one measurement")
	parser.add_argument("--json", help="also write the results to this file")
	args = parser.parse_args()

	import frappe
	from dovecot import Dovecot

	stop_on_sigterm()
	frappe.init(args.site, sites_path=".")
	frappe.connect()
	frappe.set_user("Administrator")
	log_dir = Path(frappe.get_site_path("logs")).resolve()
	server = Dovecot.start()
	results = []
	try:
		prepare_site(frappe)
		for count in [int(w) for w in args.workers.split(",") if w.strip()]:
			results.append(measure(frappe, server, args, count, log_dir))
	finally:
		server.cleanup()
		frappe.destroy()
	print_table(results)
	if args.json:
		Path(args.json).write_text(json.dumps(results, indent=1, default=str))
	if not all(r["ok"] for r in results):
		sys.exit("correctness check FAILED")


if __name__ == "__main__":
	main()
