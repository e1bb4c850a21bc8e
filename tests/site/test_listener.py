"""Real-time for IMAP on the site: the listener (sync/listener.py) against a real Dovecot and a real RQ worker.

The listener is limited to this test's accounts (`only`), so other suites' accounts on the site are left
alone; the worker is a real `bench worker` on the long queue, as in production.
"""

import os
import subprocess
import sys
import threading
import time

import frappe
import pytest
from factories import deliver, mail, make_account, make_party, unique

from email_sync.sync.doctor import listener_check
from email_sync.sync.listener import Listener, heartbeat

LATENCY_LIMIT = 10.0  # seconds from the mail's arrival to the Customer's timeline


@pytest.fixture
def realtime_account(dovecot):
	"""make(frequency=...) -> a new Active account on its own Dovecot user; all of them Paused afterwards.

	Their addresses end in .test, not .example: a test session starting elsewhere pauses every Active
	.example account (conftest), which would pull them from under a running listener."""
	made = []

	def make(frequency="Real-time"):
		box = dovecot.add_user(name=f"{unique('live')}@mail.listener.test")
		made.append(make_account(dovecot, box, frequency=frequency))
		return made[-1], box

	yield make
	frappe.db.rollback()
	for account in made:
		frappe.db.set_value("Email Sync Account", account, "status", "Paused")
	frappe.db.commit()


@pytest.fixture
def worker():
	"""A long-queue worker for the site, as `bench start` runs one; stopped (SIGTERM, then kill) afterwards."""
	from frappe.utils.background_jobs import get_workers

	before = {w.name for w in get_workers()}
	proc = subprocess.Popen(
		[sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "worker", "--queue", "long"],
		cwd=os.getcwd(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
	)  # fmt: skip
	deadline = time.monotonic() + 60
	while not ({w.name for w in get_workers()} - before) and time.monotonic() < deadline:
		time.sleep(0.2)
	yield proc
	proc.terminate()
	try:
		proc.wait(20)
	except subprocess.TimeoutExpired:
		proc.kill()
		proc.wait(5)


class Running:
	"""A Listener on a thread of this process, with its own database connection (as the command has)."""

	def __init__(self, site: str, **options):
		self.lines: list[str] = []
		self.stop = threading.Event()
		self.options = options
		self.site = site
		self.listener = None
		self.thread = threading.Thread(target=self._run, daemon=True)

	def _run(self):
		frappe.init(site=self.site, sites_path=os.getcwd())
		frappe.connect()
		frappe.set_user("Administrator")
		try:
			self.listener = Listener(log=self.lines.append, **self.options)
			self.listener.run(self.stop)
		finally:
			frappe.destroy()

	def __enter__(self):
		self.thread.start()
		return self

	def __exit__(self, *exc):
		self.stop.set()
		self.thread.join(30)

	def watching(self, account: str, seconds: float = 15) -> bool:
		deadline = time.monotonic() + seconds
		while time.monotonic() < deadline:
			listener = self.listener
			entry = listener and listener.watchers.get(account)
			if entry and entry[1].state == "watching":
				return True
			time.sleep(0.05)
		return False


def on_timeline(subject: str, customer: str):
	"""The Communication with this subject linked to the Customer (its timeline), or None."""
	frappe.db.rollback()  # a fresh snapshot: see what the worker committed
	rows = frappe.db.sql(
		"""select c.name from `tabCommunication` c join `tabCommunication Link` l on l.parent = c.name
		where c.subject = %s and l.link_doctype = 'Customer' and l.link_name = %s""",
		(subject, customer),
	)
	return rows[0][0] if rows else None


def test_new_mail_reaches_the_customers_timeline_within_ten_seconds(site, dovecot, worker, realtime_account):
	party = make_party("Live", "Ines")
	account, box = realtime_account()
	with Running(site, only=[account], refresh_every=1) as running:
		assert running.watching(account), running.lines
		time.sleep(2.5)  # past the first look at connect (its sync, if any, is done by then)
		latencies = []
		for n in range(3):
			subject = f"Order question {unique()}"
			deliver(dovecot, box, [mail(f"ines@{party.domain}", box.name, subject=subject)])
			arrived = time.monotonic()
			while not on_timeline(subject, party.customer) and time.monotonic() - arrived < LATENCY_LIMIT + 5:
				time.sleep(0.1)
			latencies.append(time.monotonic() - arrived)
			assert on_timeline(subject, party.customer), (latencies, running.lines)
		assert max(latencies) < LATENCY_LIMIT, latencies
		assert any("new mail: sync queued" in line for line in running.lines)


def test_the_listener_follows_accounts_and_says_so_in_its_heartbeat(site, realtime_account):
	first, _ = realtime_account()
	second, _ = realtime_account(frequency="Every 5 minutes")
	with Running(site, only=[first, second], refresh_every=0.5, heartbeat_every=0.5) as running:
		assert running.watching(first), running.lines
		assert second not in running.listener.watchers  # not on Real-time

		frappe.db.set_value("Email Sync Account", second, "frequency", "Real-time")
		frappe.db.commit()
		assert running.watching(second), running.lines  # picked up without a restart

		time.sleep(1)
		beat = heartbeat()
		assert os.getpid() in [b["pid"] for b in beat["listeners"]] and beat["accounts"][first]["state"] == "watching"
		check = listener_check()
		assert check.ok and "Running (pid" in check.detail, check.detail

		doc = frappe.get_doc("Email Sync Account", second)
		doc.password = "wrong-now"  # the login changed, as on the form
		doc.save()
		frappe.db.commit()
		deadline = time.monotonic() + 15
		while time.monotonic() < deadline and not any("connection settings changed" in line for line in running.lines):
			time.sleep(0.1)
		assert any(f"{second}: stopped watching: its connection settings changed" in line for line in running.lines), (
			running.lines
		)
		deadline = time.monotonic() + 15
		while time.monotonic() < deadline and "rejected the login" not in (heartbeat() or {}).get(
			"accounts", {}
		).get(second, {}).get("detail", ""):
			time.sleep(0.2)
		check = listener_check()
		assert not check.ok and second in check.detail and "rejected the login" in check.detail, (heartbeat(), running.lines)

		frappe.db.set_value("Email Sync Account", first, "status", "Paused")
		frappe.db.set_value("Email Sync Account", second, "status", "Paused")
		frappe.db.commit()
		deadline = time.monotonic() + 15
		while time.monotonic() < deadline and running.listener.watchers:
			time.sleep(0.1)
		assert not running.listener.watchers
	assert not heartbeat()  # a stopped listener leaves no heartbeat behind


def test_two_listeners_can_share_the_accounts_and_doctor_sees_both(site, realtime_account):
	first, _ = realtime_account()
	second, _ = realtime_account()
	with Running(site, only=[first], heartbeat_every=0.5) as one, Running(site, only=[second], heartbeat_every=0.5) as two:
		assert one.watching(first) and two.watching(second), (one.lines, two.lines)
		assert second not in one.listener.watchers and first not in two.listener.watchers
		time.sleep(1)
		beat = heartbeat()
		assert len(beat["listeners"]) == 2 and {first, second} <= set(beat["accounts"])
		check = listener_check()
		assert check.ok and check.detail.count("pid ") == 2, check.detail
	assert not heartbeat()
