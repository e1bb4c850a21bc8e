"""Real-time IMAP latency: from a message's arrival in the mailbox to the email on the Customer's timeline.

Run from the bench's `sites` directory with the bench's Python:

    cd <bench>/sites
    ../env/bin/python <repo>/benchmarks/imap_latency.py --site email-sync.localhost --messages 20
    ../env/bin/python <repo>/benchmarks/imap_latency.py --site email-sync.localhost --messages 20 --burst 5

What happens:
1. A throwaway Dovecot on 127.0.0.1 (tests/providers/dovecot.py) gets one user; the site gets a Customer at a
   domain of its own with one Contact, and an Email Sync Account (IMAP, Inbound only, Real-time) for the user.
2. Production's processes are started as subprocesses: `bench --site SITE email-sync listen --account ACCOUNT`
   (one IDLE connection) and `bench worker --queue long` (one RQ worker). Timing starts once the listener's
   heartbeat says it is watching and its first catch-up sync has run.
3. Each round APPENDs `--burst` messages from the Contact (one APPEND command) and polls the database every
   20 ms until each is a Communication linked to the Customer; the next round starts when all have landed.
   Per message: *seen* = polled arrival-to-timeline time; *written* = the Communication's creation time minus
   the APPEND's end (the same clock: the site's).
4. The account, its Synced Emails, Communications, logs, the Contact and the Customer are deleted afterwards
   (`--keep` leaves them).

Also printed: *run started* = the creation of the first Email Sync Log (a sync run) after the APPEND, i.e.
the listener's and the queue's share of the time. Other workers on the site's long queue may take the jobs
too (then their speed counts): run it on a quiet site.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests" / "providers"))

POLL = 0.02  # seconds between database checks
GIVE_UP = 60.0  # seconds a message may take before the run fails


def message(sender: str, to: str, subject: str) -> bytes:
	msg = EmailMessage()
	msg["From"], msg["To"], msg["Subject"] = sender, to, subject
	msg["Date"] = format_datetime(datetime.now(timezone.utc))
	msg["Message-ID"] = make_msgid(domain="latency.test")
	msg.set_content("When will my order ship?\n")
	return msg.as_bytes()


def bench_command(site: str, *args: str) -> list[str]:
	return [sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "--site", site, *args]


def setup(server, run: str) -> dict:
	import frappe

	user = server.add_user(name=f"latency-{run}@mail.latency.test")
	domain = f"latency-{run}.test"
	customer = frappe.get_doc({"doctype": "Customer", "customer_name": f"Latency {domain}",
		"customer_group": frappe.db.get_value("Customer Group", {"is_group": 0}) or "All Customer Groups",
		"territory": frappe.db.get_value("Territory", {"is_group": 0}) or "All Territories"}).insert()  # fmt: skip
	contact = frappe.get_doc({"doctype": "Contact", "first_name": "Ada", "email_ids": [{"email_id": f"ada@{domain}",
		"is_primary": 1}], "links": [{"link_doctype": "Customer", "link_name": customer.name}]}).insert()  # fmt: skip
	account = frappe.get_doc({"doctype": "Email Sync Account", "provider": "IMAP", "email_address": user.name,
		"imap_host": server.host, "imap_port": server.port, "imap_security": "None", "username": user.name,
		"password": user.password, "status": "Active", "frequency": "Real-time", "sync_start_date": "2000-01-01",
		"activated_on": "2000-01-01 00:00:00"}).insert()  # fmt: skip
	frappe.db.commit()
	return {"user": user, "sender": f"ada@{domain}", "customer": customer.name, "contact": contact.name,
		"account": account.name}  # fmt: skip


def wait_watching(account: str, seconds: float = 60) -> None:
	from email_sync.sync.listener import heartbeat

	deadline = time.monotonic() + seconds
	while time.monotonic() < deadline:
		if ((heartbeat() or {}).get("accounts") or {}).get(account, {}).get("state") == "watching":
			return
		time.sleep(0.1)
	raise SystemExit("The listener did not start watching within a minute.")


def landed(subjects: list[str], customer: str) -> dict[str, datetime]:
	"""subject -> creation of its Communication, for those already on the Customer's timeline."""
	import frappe

	frappe.db.rollback()  # a fresh snapshot
	rows = frappe.db.sql(
		"""select c.subject, c.creation from `tabCommunication` c join `tabCommunication Link` l
		on l.parent = c.name and l.link_doctype = 'Customer' and l.link_name = %s where c.subject in %s""",
		(customer, subjects),
	)
	return dict(rows)


def run_started(account: str, after: datetime) -> datetime | None:
	import frappe

	return frappe.db.sql(
		"select min(creation) from `tabEmail Sync Log` where account = %s and creation >= %s", (account, after)
	)[0][0]


def measure(site: str, messages: int, burst: int, made: dict, server) -> list[dict]:
	from dovecot import fill_mailbox
	from frappe.utils import now_datetime

	results = []
	for round_start in range(0, messages, burst):
		count = min(burst, messages - round_start)
		subjects = [f"Latency {uuid.uuid4().hex[:10]}" for _ in range(count)]
		user = made["user"]
		raws = [message(made["sender"], user.name, subject) for subject in subjects]
		fill_mailbox(server.host, server.port, user.name, user.password, "INBOX", raws)
		appended, appended_at = time.monotonic(), now_datetime()
		seen: dict[str, float] = {}
		while len(seen) < count:
			if time.monotonic() - appended > GIVE_UP:
				raise SystemExit(f"Messages not on the timeline after {GIVE_UP:.0f} s: {sorted(set(subjects) - set(seen))}")
			now = time.monotonic()
			for subject, created in landed(subjects, made["customer"]).items():
				if subject not in seen:
					seen[subject] = now - appended
					results.append({"seen": seen[subject], "written": (created - appended_at).total_seconds()})
			time.sleep(POLL)
		started = run_started(made["account"], appended_at)
		for result in results[-count:]:
			result["run_started"] = (started - appended_at).total_seconds() if started else float("nan")
		time.sleep(0.5)  # let the run that filed them end, as separate arrivals would
	return results


def cleanup(made: dict) -> None:
	import frappe

	account = made["account"]
	frappe.db.rollback()
	comms = frappe.get_all("Synced Email", filters={"account": account}, pluck="communication")
	comms = [c for c in comms if c]
	if comms:
		frappe.db.delete("Communication Link", {"parent": ("in", comms)})
		frappe.db.delete("Communication", {"name": ("in", comms)})
	frappe.db.delete("Synced Email", {"account": account})
	frappe.db.delete("Email Sync Log", {"account": account})
	frappe.delete_doc("Email Sync Account", account, force=True, ignore_permissions=True)
	frappe.delete_doc("Contact", made["contact"], force=True, ignore_permissions=True)
	frappe.delete_doc("Customer", made["customer"], force=True, ignore_permissions=True)
	frappe.db.commit()


def summary(results: list[dict]) -> dict:
	def stats(key: str) -> dict:
		values = sorted(r[key] for r in results)
		p90 = values[min(len(values) - 1, round(0.9 * (len(values) - 1)))]
		return {"median": statistics.median(values), "p90": p90, "max": values[-1], "min": values[0]}

	return {"messages": len(results), "seen": stats("seen"), "written": stats("written"),
		"run_started": stats("run_started")}  # fmt: skip


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--messages", type=int, default=20, help="Messages in all (default 20).")
	parser.add_argument("--burst", type=int, default=1, help="Messages APPENDed at once per round (default 1).")
	parser.add_argument("--json", help="Also write the figures to this file.")
	parser.add_argument("--keep", action="store_true", help="Leave the account, mail and records on the site.")
	args = parser.parse_args()

	import frappe
	from dovecot import Dovecot

	frappe.init(args.site, sites_path=".")
	frappe.connect()
	frappe.set_user("Administrator")
	server = Dovecot.start()
	run = uuid.uuid4().hex[:8]
	made = setup(server, run)
	devnull = subprocess.DEVNULL
	worker = subprocess.Popen(bench_command(args.site, "worker", "--queue", "long"), stdout=devnull, stderr=devnull)
	listener = subprocess.Popen(bench_command(args.site, "email-sync", "listen", "--account", made["account"]),
		stdout=devnull, stderr=devnull)  # fmt: skip
	try:
		wait_watching(made["account"])
		time.sleep(3)  # the catch-up sync of the first connect, out of the way
		results = measure(args.site, max(1, args.messages), max(1, args.burst), made, server)
	finally:
		for proc in (listener, worker):
			proc.terminate()
		for proc in (listener, worker):
			try:
				proc.wait(30)
			except subprocess.TimeoutExpired:
				proc.kill()
		if not args.keep:
			cleanup(made)
		server.cleanup()
		frappe.destroy()

	figures = summary(results)
	print(f"IMAP real-time latency, {figures['messages']} messages in rounds of {args.burst} (Dovecot IDLE -> "
		"listener -> RQ long queue -> sync -> Customer timeline)")  # fmt: skip
	print(f"{'':28}{'median':>8}{'p90':>8}{'max':>8}{'min':>8}")
	rows = (("run_started", "arrival -> sync run started"), ("written", "arrival -> Communication"),
		("seen", "arrival -> seen on timeline"))  # fmt: skip
	for key, label in rows:
		s = figures[key]
		print(f"{label:28}{s['median']:>7.2f}s{s['p90']:>7.2f}s{s['max']:>7.2f}s{s['min']:>7.2f}s")
	print(f"target: max <= 10 s: {'PASS' if figures['seen']['max'] <= 10 else 'FAIL'}")
	if args.json:
		Path(args.json).write_text(json.dumps({**figures, "burst": args.burst, "host": os.uname().nodename}, indent=1))


if __name__ == "__main__":
	main()
