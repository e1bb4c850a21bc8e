"""Tier 2: the Frappe suite, run with pytest inside the bench's Python from the bench's sites folder.

It talks to the real site (EMAIL_SYNC_SITE) and a real Dovecot on 127.0.0.1. Sync runs commit, so tests
create their own uniquely named records instead of relying on a rollback.
"""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "providers"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import frappe  # noqa: E402
from dovecot import Dovecot, DovecotUnavailable  # noqa: E402
from factories import connect_site  # noqa: E402

@pytest.fixture(scope="session", autouse=True)
def site():
	name = connect_site()
	pause_test_accounts()
	yield name
	frappe.db.rollback()
	pause_test_accounts()
	frappe.destroy()


def pause_test_accounts():
	"""Accounts made by tests point at Dovecot instances that are gone: keep the scheduler off them.
	(.example is a reserved domain: no real mailbox has it.)"""
	frappe.db.sql(
		"update `tabEmail Sync Account` set status = 'Paused' where email_address like %s and status = 'Active'",
		("%.example",),
	)
	frappe.db.commit()


@pytest.fixture(scope="session")
def dovecot():
	try:
		server = Dovecot.start()
	except DovecotUnavailable as e:
		if os.environ.get("EMAIL_SYNC_REQUIRE_DOVECOT"):
			pytest.fail(str(e))
		pytest.skip(str(e))
	yield server
	server.stop()
	server.cleanup()


@pytest.fixture(autouse=True)
def as_administrator():
	frappe.set_user("Administrator")
	yield
	frappe.db.rollback()
	frappe.set_user("Administrator")


# The site served over real HTTP on 127.0.0.1 by a subprocess, for tests that go through REST and guest endpoints.
SERVE = """
import sys
import frappe.app
from werkzeug.serving import run_simple
frappe.app._site = sys.argv[2]  # every request is for this site, whatever its Host header
run_simple("127.0.0.1", int(sys.argv[1]), frappe.app.application, threaded=True, use_reloader=False)
"""


def free_port() -> int:
	import socket

	with socket.socket() as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


def set_site_config(key, value):
	from frappe.installer import update_site_config

	update_site_config(key, value if value is not None else "None")
	if value is None:
		frappe.local.conf.pop(key, None)
	else:
		frappe.local.conf[key] = value


@pytest.fixture(scope="session")
def web(site):
	import subprocess
	import time

	import requests

	port = free_port()
	url = f"http://127.0.0.1:{port}"
	previous = frappe.local.conf.get("host_name")
	set_site_config("host_name", url)  # so links built outside a request (push URLs) point here
	server = subprocess.Popen([sys.executable, "-c", SERVE, str(port), site], cwd=os.getcwd(), stderr=subprocess.DEVNULL)
	for _ in range(100):
		try:
			if requests.get(f"{url}/api/method/ping", timeout=1).ok:
				break
		except requests.ConnectionError:
			time.sleep(0.1)
	yield url
	server.terminate()
	server.wait()
	set_site_config("host_name", previous)
	set_site_config("email_sync_endpoints", None)
