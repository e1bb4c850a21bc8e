"""Soak with faults: 4 RQ workers sync 16 IMAP mailboxes while workers are killed and Redis and MariaDB restart.

It restarts the MariaDB and Redis it runs against, so it runs on a stack of its own: a MariaDB (its own
datadir and port), two Redis servers (queue and cache, their own ports) and a sites directory whose
common_site_config points at them, all under one directory (--stack), next to an existing bench whose
Python and apps it uses. `setup` makes that stack and a site on it (a one-off, about a minute of work);
`run` starts what is not running, then soaks:

    <bench>/env/bin/python <repo>/benchmarks/soak.py setup --stack /tmp/es-soak --bench <bench>
    <bench>/env/bin/python <repo>/benchmarks/soak.py run --stack /tmp/es-soak --messages 2000
    <bench>/env/bin/python <repo>/benchmarks/soak.py run --stack /tmp/es-soak             # 50,000 messages

`run`:
1. The mail of benchmarks/throughput.py (16 mailboxes in a throwaway Dovecot, the same mail in several of
   them, new people at Customers' domains), 16 Active *Real-time* accounts with the product's defaults for
   retries (max tries, cool-off), one sync enqueued for each; 4 workers and the scheduler (`frappe worker`,
   `frappe schedule`) run as a supervisor runs them: one that exits is started again.
2. While mail is left to sync, every --fault-every seconds (random in the range) one fault: a worker killed
   with SIGKILL (started again a few seconds later), both Redis servers restarted (nothing persisted: every
   queued job is lost), or MariaDB restarted. The first three faults are one of each, in random order.
3. Then nobody touches anything: every account must become healthy by itself (the scheduler's dispatcher
   and the accounts' retries): Active, no consecutive failures, a successful run after the last fault.
4. Checks: one Synced Email per message per mailbox, one Communication per distinct kept mail, one Contact
   per new address, no Synced Email in Error, no Sync Log left Running. Printed with the duration and the
   faults injected.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from throughput import INTERNAL, MAILBOXES, Workers, check, create_accounts, fill, make_mail, prepare_site

SITE = "soak.localhost"
WORKERS = 4


# -- the stack ---------------------------------------------------------------------------------------------------


class Stack:
	"""The services under --stack: MariaDB (my.cnf, mariadb/), Redis (ports in sites/common_site_config.json)."""

	def __init__(self, root: Path):
		self.root = root.resolve()
		self.sites = self.root / "sites"
		self.cnf = self.root / "my.cnf"
		self.pid_file = self.root / "mysqld.pid"

	@property
	def db_port(self) -> int:
		for line in self.cnf.read_text().splitlines():
			if line.startswith("port="):
				return int(line.split("=", 1)[1])
		raise RuntimeError(f"no port in {self.cnf}")

	def redis_ports(self) -> list[int]:
		conf = json.loads((self.sites / "common_site_config.json").read_text())
		return sorted({int(conf[k].rsplit(":", 1)[1]) for k in ("redis_queue", "redis_cache")})

	# MariaDB

	def start_mariadb(self) -> None:
		if listening(self.db_port):
			return
		subprocess.Popen(["mariadbd", f"--defaults-file={self.cnf}"], stdout=subprocess.DEVNULL,
		                 stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
		wait_until(lambda: listening(self.db_port), 120, "MariaDB did not start")

	def stop_mariadb(self) -> None:
		with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
			pid = int(self.pid_file.read_text().strip())
			os.kill(pid, signal.SIGTERM)
			wait_until(lambda: not alive(pid), 120, "MariaDB did not stop")

	# Redis

	def start_redis(self) -> None:
		for port in self.redis_ports():
			if listening(port):
				continue
			subprocess.Popen(
				["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
				 "--dir", str(self.root), "--logfile", str(self.root / f"redis-{port}.log")],
				stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
			)  # fmt: skip
			wait_until(lambda port=port: listening(port), 30, f"Redis on {port} did not start")

	def stop_redis(self) -> None:
		for port in self.redis_ports():
			subprocess.run(["redis-cli", "-p", str(port), "shutdown", "nosave"], capture_output=True, check=False)
			wait_until(lambda port=port: not listening(port), 30, f"Redis on {port} did not stop")

	def start(self) -> None:
		self.start_mariadb()
		self.start_redis()


def children(pid: int) -> list[int]:
	try:
		return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
	except OSError:
		return []


def listening(port: int) -> bool:
	with socket.socket() as s:
		s.settimeout(0.5)
		return s.connect_ex(("127.0.0.1", port)) == 0


def alive(pid: int) -> bool:
	with contextlib.suppress(ChildProcessError):  # a server this process started: reap it once it exits
		if os.waitpid(pid, os.WNOHANG)[0]:
			return False
	try:
		os.kill(pid, 0)
	except ProcessLookupError:
		return False
	return True


def wait_until(predicate, seconds: float, failure: str) -> None:
	deadline = time.monotonic() + seconds
	while not predicate():
		if time.monotonic() > deadline:
			raise RuntimeError(failure)
		time.sleep(0.2)


# -- setup -------------------------------------------------------------------------------------------------------


MY_CNF = """[mysqld]
datadir={root}/mariadb
port={port}
bind-address=127.0.0.1
socket={root}/mysqld.sock
pid-file={root}/mysqld.pid
log-error={root}/mysqld.err
user={user}
skip-name-resolve
character-set-client-handshake=FALSE
character-set-server=utf8mb4
collation-server=utf8mb4_unicode_ci
innodb_file_per_table=1
innodb_buffer_pool_size=256M
"""


def setup(args) -> None:
	"""A MariaDB and two Redis servers of the soak's own, a sites directory pointing at them, a site on them."""
	stack, bench = Stack(Path(args.stack)), Path(args.bench).resolve()
	stack.root.mkdir(parents=True, exist_ok=True)
	if not (stack.root / "mariadb").exists():
		import getpass

		stack.cnf.write_text(MY_CNF.format(root=stack.root, port=args.db_port, user=getpass.getuser()))
		subprocess.run(["mariadb-install-db", f"--defaults-file={stack.cnf}", "--auth-root-authentication-method=normal"],
		               check=True, capture_output=True)  # fmt: skip
		stack.start_mariadb()
		root_sql = (
			f"ALTER USER 'root'@'localhost' IDENTIFIED BY '{args.db_root_password}'; "
			f"CREATE OR REPLACE USER 'root'@'127.0.0.1' IDENTIFIED BY '{args.db_root_password}'; "
			"GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION; FLUSH PRIVILEGES;"
		)
		subprocess.run(["mariadb", f"--socket={stack.root}/mysqld.sock", "-uroot", "-e", root_sql], check=True)
	stack.sites.mkdir(exist_ok=True)
	(stack.root / "logs").mkdir(exist_ok=True)
	for name in ("apps", "env"):  # the bench's apps and Python, so paths relative to the sites dir resolve
		link = stack.root / name
		if not link.exists():
			link.symlink_to(bench / name)
	shutil.copy(bench / "sites" / "apps.txt", stack.sites / "apps.txt")
	conf = stack.sites / "common_site_config.json"
	if not conf.exists():
		conf.write_text(json.dumps({
			"redis_queue": f"redis://127.0.0.1:{args.queue_port}", "redis_socketio": f"redis://127.0.0.1:{args.queue_port}",
			"redis_cache": f"redis://127.0.0.1:{args.cache_port}", "background_workers": 1,
		}, indent=1))  # fmt: skip
	stack.start()
	if not (stack.sites / args.site / "site_config.json").exists():
		frappe_cli(stack, "new-site", args.site, "--db-host", "127.0.0.1", "--db-port", str(stack.db_port),
		           "--db-root-username", "root", "--db-root-password", args.db_root_password,
		           "--admin-password", "admin", "--install-app", "erpnext", "--install-app", "email_sync")  # fmt: skip
	frappe_cli(stack, "--site", args.site, "enable-scheduler")
	print(f"ready: site {args.site} in {stack.sites}, MariaDB on {stack.db_port}, Redis on {stack.redis_ports()}")


def frappe_cli(stack: Stack, *command: str) -> None:
	subprocess.run([sys.executable, "-m", "frappe.utils.bench_helper", "frappe", *command], cwd=stack.sites, check=True)


# -- the soak ----------------------------------------------------------------------------------------------------


class Supervisor(Workers):
	"""The workers and the scheduler, each started again when it exits (as supervisord does)."""

	def __init__(self, log_dir: Path, workers: int):
		super().__init__(log_dir)
		self.wanted = workers
		self.scheduler: subprocess.Popen | None = None
		self.restarts = 0  # exits nobody caused: a worker or scheduler that fell over by itself

	def start_scheduler(self) -> None:
		log = open(self.log_dir / "scheduler.log", "ab")  # noqa: SIM115 - the process owns it
		self.scheduler = subprocess.Popen([sys.executable, "-m", "frappe.utils.bench_helper", "frappe", "schedule"],
		                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip

	def keep_up(self, killed: set[int]) -> None:
		for proc in list(self.procs):
			if proc.poll() is not None:
				self.procs.remove(proc)
				if proc.pid not in killed:
					self.restarts += 1
		while len(self.procs) < self.wanted:
			self.start_one()
		if self.scheduler is None or self.scheduler.poll() is not None:
			if self.scheduler is not None:
				self.restarts += 1
			self.start_scheduler()

	def stop(self, procs=None) -> None:
		super().stop([*self.procs, *([self.scheduler] if self.scheduler else [])])


class Site:
	"""This process's connection to the site, opened again after a restart of MariaDB."""

	def __init__(self, frappe, site: str):
		self.frappe, self.site = frappe, site

	def connect(self) -> None:
		frappe = self.frappe
		with contextlib.suppress(Exception):
			frappe.db.close()
		frappe.connect()
		frappe.set_user("Administrator")

	def call(self, fn, attempts: int = 60):
		for attempt in range(attempts):
			try:
				self.frappe.db.commit()  # a fresh snapshot
				return fn()
			except Exception:
				if attempt == attempts - 1:
					raise
				time.sleep(2)
				with contextlib.suppress(Exception):
					self.connect()


def inject(kind: str, stack: Stack, supervisor: Supervisor, killed: set[int], rng: random.Random) -> str:
	if kind == "kill-worker":
		victims = supervisor.alive()
		if not victims:
			return "no worker to kill"
		victim = rng.choice(victims)
		killed.add(victim.pid)
		# The job runs in a work horse that RQ forks into a session of its own: kill it too, or the job
		# would finish as if nothing happened.
		for horse in children(victim.pid):
			with contextlib.suppress(ProcessLookupError):
				os.kill(horse, signal.SIGKILL)
		supervisor.kill(victim, signal.SIGKILL)
		time.sleep(rng.uniform(1, 5))  # the supervisor's restart delay
		supervisor.keep_up(killed)
		return f"killed worker {victim.pid}"
	if kind == "restart-redis":
		stack.stop_redis()
		time.sleep(rng.uniform(1, 3))
		stack.start_redis()
		return f"restarted Redis {stack.redis_ports()}"
	stack.stop_mariadb()
	time.sleep(rng.uniform(1, 3))
	stack.start_mariadb()
	return "restarted MariaDB"


def accounts_state(frappe, accounts: list[str]) -> list[dict]:
	return frappe.get_all(
		"Email Sync Account",
		filters={"name": ("in", accounts)},
		fields=["name", "status", "consecutive_failures", "last_success", "next_sync_after", "last_error"],
	)


def healthy(row, since: datetime) -> bool:
	return row.status == "Active" and not row.consecutive_failures and bool(row.last_success) and row.last_success > since


def run(args) -> None:
	stack = Stack(Path(args.stack))
	stack.start()
	os.chdir(stack.sites)
	import frappe
	from dovecot import Dovecot
	from frappe.utils import now_datetime
	from throughput import stop_on_sigterm

	from email_sync.sync.tasks import enqueue_sync

	stop_on_sigterm()
	rng = random.Random(args.seed)
	frappe.init(args.site, sites_path=".")
	site = Site(frappe, args.site)
	site.connect()
	log_dir = Path(frappe.get_site_path("logs")).resolve()
	prepare_site(frappe)
	if not frappe.db.get_single_value("System Settings", "enable_scheduler"):
		from frappe.utils.scheduler import enable_scheduler

		enable_scheduler()  # the soak's own site: recovery is the scheduler's work
		print("enabled the scheduler on the site", flush=True)
	# Accounts of earlier runs point at Dovecots that are gone: the scheduler must not spend this run on them.
	frappe.db.sql("update `tabEmail Sync Account` set status = 'Paused' where email_address like %s",
	              (f"%@{INTERNAL}",))  # fmt: skip
	# A site nobody used for days is "dormant" and its scheduler runs only daily jobs: this one is in use.
	frappe.get_doc({"doctype": "Activity Log", "subject": "soak", "operation": "Login", "status": "Success",
	                "user": "Administrator"}).insert(ignore_permissions=True)  # fmt: skip
	frappe.db.commit()

	server = Dovecot.start()
	supervisor = Supervisor(log_dir, args.workers)
	faults: list[dict] = []
	killed: set[int] = set()
	try:
		run_id = f"{datetime.now():%H%M%S}{os.urandom(2).hex()}"
		t0 = time.perf_counter()
		mail = make_mail(run_id, args.messages, args.seed)
		users = fill(server, mail)
		print(f"run {run_id}: {mail.placements:,} messages in {MAILBOXES} mailboxes ({mail.distinct:,} distinct; "
		      f"{mail.kinds}), mailboxes filled in {time.perf_counter() - t0:.0f} s", flush=True)  # fmt: skip
		accounts = create_accounts(frappe, server, mail, users, frequency="Real-time")
		since = now_datetime()
		supervisor.keep_up(killed)
		supervisor.wait_registered()
		t0 = time.perf_counter()
		for account in accounts:
			enqueue_sync(account, "Manual")
		frappe.db.commit()

		def synced() -> int:
			return frappe.db.sql("select count(*) from `tabSynced Email` where account in %(a)s", {"a": accounts})[0][0]

		kinds = ["kill-worker", "restart-redis", "restart-mariadb"]
		rng.shuffle(kinds)  # the first three faults: one of each
		low, high = (float(x) for x in args.fault_every.split(","))
		next_fault = time.perf_counter() + rng.uniform(low, high)
		count, last_report = 0, 0.0
		while True:
			supervisor.keep_up(killed)
			count = site.call(synced)
			now = time.perf_counter()
			if count >= mail.placements:
				break
			if now - t0 > args.timeout:
				print("timed out waiting for the sync", flush=True)
				break
			if now >= next_fault:
				kind = kinds.pop(0) if kinds else rng.choices(
					["kill-worker", "restart-redis", "restart-mariadb"], [2, 1, 1])[0]  # fmt: skip
				what = inject(kind, stack, supervisor, killed, rng)
				faults.append({"at_s": round(now - t0, 1), "kind": kind, "what": what, "synced_before": count})
				print(f"[{now - t0:7.1f} s] {count:,}/{mail.placements:,} synced: {what}", flush=True)
				next_fault = time.perf_counter() + rng.uniform(low, high)
			elif now - last_report > 30:
				print(f"[{now - t0:7.1f} s] {count:,}/{mail.placements:,} synced", flush=True)
				last_report = now
			time.sleep(1)
		sync_seconds = time.perf_counter() - t0
		last_fault = now_datetime()
		print(f"all {count:,} synced after {sync_seconds:.0f} s and {len(faults)} faults; waiting for every "
		      "account to be healthy by itself", flush=True)  # fmt: skip

		t1 = time.perf_counter()
		states = []
		while time.perf_counter() - t1 < args.recover_timeout:
			supervisor.keep_up(killed)
			states = site.call(lambda: accounts_state(frappe, accounts))
			sick = [s for s in states if not healthy(s, last_fault)]
			if not sick:
				break
			time.sleep(5)
		recover_seconds = time.perf_counter() - t1
		result = site.call(lambda: check(frappe, mail, accounts, since))
		logs = site.call(lambda: dict(frappe.db.sql(
			"select status, count(*) from `tabEmail Sync Log` where account in %(a)s group by status", {"a": accounts})))  # fmt: skip
		sick = [{k: str(v) for k, v in s.items()} for s in states if not healthy(s, last_fault)]
	finally:
		supervisor.stop()
		server.cleanup()
	result.update({
		"messages": mail.placements, "workers": args.workers, "sync_seconds": round(sync_seconds, 1),
		"messages_per_s": round(mail.placements / sync_seconds, 1),
		"faults": {k: sum(1 for f in faults if f["kind"] == k) for k in ("kill-worker", "restart-redis", "restart-mariadb")},
		"processes_that_exited_by_themselves": supervisor.restarts,
		"recovered_in_s": round(recover_seconds, 1), "accounts_not_healthy": sick, "sync_logs": logs,
	})  # fmt: skip
	result["passed"] = (
		result["synced_emails"] == mail.placements
		and not result["statuses"].get("Error")
		and not result["mails_filed_twice"]
		and not result["kept_mails_missing"]
		and not result["addresses_with_two_contacts"]
		and not result["addresses_without_contact"]
		and not sick
		and not logs.get("Running")  # a run that died says so once the account runs again
	)
	print(json.dumps({"fault_log": faults}, default=str))
	print(json.dumps(result, indent=1, default=str))
	print(f"\nsoak {'PASSED' if result['passed'] else 'FAILED'}: {mail.placements:,} messages, {args.workers} workers, "
	      f"{sync_seconds:.0f} s to sync, {len(faults)} faults {result['faults']}, healthy again "
	      f"{recover_seconds:.0f} s after the last")  # fmt: skip
	if args.json:
		Path(args.json).write_text(json.dumps({"result": result, "faults": faults}, indent=1, default=str))
	frappe.destroy()
	if not result["passed"]:
		sys.exit(1)


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	sub = parser.add_subparsers(dest="command", required=True)
	p = sub.add_parser("setup", help="make the soak's own MariaDB, Redis, sites directory and site")
	p.add_argument("--stack", required=True, help="a directory of its own for the services and the sites")
	p.add_argument("--bench", required=True, help="the bench whose Python and apps the stack uses")
	p.add_argument("--site", default=SITE)
	p.add_argument("--db-port", type=int, default=3307)
	p.add_argument("--queue-port", type=int, default=11100)
	p.add_argument("--cache-port", type=int, default=13100)
	p.add_argument("--db-root-password", default="root")
	p = sub.add_parser("run", help="the soak")
	p.add_argument("--stack", required=True)
	p.add_argument("--site", default=SITE)
	p.add_argument("--messages", type=int, default=50_000, help="messages in all 16 mailboxes")
	p.add_argument("--workers", type=int, default=WORKERS)
	p.add_argument("--fault-every", default="20,60", help="seconds between faults: a random value in this range")
	p.add_argument("--timeout", type=float, default=4 * 3600, help="seconds to wait for the sync")
	p.add_argument("--recover-timeout", type=float, default=1800, help="seconds to wait for healthy accounts")
	p.add_argument("--seed", type=int, default=1)
	p.add_argument("--json", help="also write the result to this file")
	args = parser.parse_args()
	setup(args) if args.command == "setup" else run(args)


if __name__ == "__main__":
	main()
