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
