"""Tier 2, in a browser: the desk screens of Email Sync on the real site, driven by Chromium.

Run from the bench's sites folder with the bench's Python, like tests/site:
    cd ~/frappe-bench/sites && EMAIL_SYNC_SITE=site.localhost ../env/bin/python -m pytest \
        /path/to/email_sync/tests/browser -q -p no:cacheprovider -p no:warnings --rootdir /path/to/email_sync/tests/browser

Each module gets its own stack (web app, Socket.IO server, RQ worker) on free 127.0.0.1 ports; the browser
reaches the site by its own name (mapped to 127.0.0.1 in Chromium). Without Playwright or Chromium the tests
skip with the reason, unless EMAIL_SYNC_REQUIRE_BROWSER=1 (then they fail). Tests commit, so every record
they make is uniquely named. Screenshots land in docs/screenshots/.
"""

import os
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path[:0] = [str(HERE), str(ROOT / "tests" / "site"), str(ROOT / "tests" / "providers")]

import frappe  # noqa: E402
from browserlib import CHROMIUM, TIMEOUT_MS, VIEWPORT, Tracker, browser_unavailable, chromium_args, start_stack  # noqa: E402
from data import make_user  # noqa: E402
from dovecot import Dovecot, DovecotUnavailable  # noqa: E402
from factories import connect_site  # noqa: E402



def _skip_or_fail(reason: str, required_by: str):
	if os.environ.get(required_by):
		pytest.fail(reason, pytrace=False)
	pytest.skip(reason)


@pytest.fixture(scope="session", autouse=True)
def site():
	"""This process on the site (to arrange data), with the settings tests/site uses."""
	name = connect_site()
	yield name
	frappe.db.rollback()
	frappe.destroy()


@pytest.fixture(autouse=True)
def as_administrator():
	frappe.set_user("Administrator")
	yield
	frappe.db.rollback()
	frappe.set_user("Administrator")


@pytest.fixture(scope="session")
def dovecot():
	try:
		server = Dovecot.start()
	except DovecotUnavailable as e:
		_skip_or_fail(str(e), "EMAIL_SYNC_REQUIRE_DOVECOT")
	yield server
	server.stop()
	server.cleanup()


@pytest.fixture(scope="session")
def admin(site):
	"""Administrator, logging in with EMAIL_SYNC_ADMIN_PASSWORD (default: admin, the bench's)."""
	from frappe.utils.password import check_password

	password = os.environ.get("EMAIL_SYNC_ADMIN_PASSWORD", "admin")
	try:
		check_password("Administrator", password)
	except frappe.AuthenticationError:
		pytest.fail("Administrator's password is not EMAIL_SYNC_ADMIN_PASSWORD (default: admin)", pytrace=False)
	return frappe._dict(email="Administrator", password=password)


@pytest.fixture(scope="session")
def sales_user(site):
	"""A salesperson: role Sales User only (reads and edits Customers; no Email Sync administration)."""
	return make_user("sales", ["Sales User"], "Sally", "Sales")


@pytest.fixture(scope="session")
def support_user(site):
	"""A support agent: role Support Team, as ERPNext's Support workspace expects (Issues, their emails)."""
	return make_user("support", ["Support Team"], "Sam", "Support")


@pytest.fixture(scope="session")
def site_timezone(site):
	return frappe.db.get_single_value("System Settings", "time_zone") or "UTC"


@pytest.fixture(scope="session")
def chromium(site):
	"""Debian's Chromium, headless, launched by Playwright (no browser download)."""
	reason = browser_unavailable()
	if reason:
		_skip_or_fail(reason, "EMAIL_SYNC_REQUIRE_BROWSER")
	from playwright.sync_api import sync_playwright

	with sync_playwright() as p:
		browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=chromium_args(site))
		yield browser
		browser.close()


@pytest.fixture(scope="session")
def tracker():
	"""The remote host of the test emails' images (see browserlib.Tracker): `tracker.hits` lists what it served."""
	server = Tracker()
	yield server
	server.stop()


@pytest.fixture(scope="module")
def stack(site, chromium, tmp_path_factory):
	"""The site served for the browser: web app, Socket.IO and an RQ worker, stopped after the module."""
	logs = tmp_path_factory.mktemp("stack")
	try:
		running = start_stack(site, os.getcwd(), logs)
	except RuntimeError as e:
		pytest.fail(f"could not start the site for the browser: {e}", pytrace=False)
	yield running
	running.stop()


@pytest.fixture
def new_page(chromium, stack, site_timezone, request):
	"""new_page() -> a page in a fresh browser context (its own cookies: one user each), closed after the test.

	Console errors of the desk and uncaught page errors are collected on page.errors; a failing test prints
	them together with the ends of the stack's logs.
	"""
	contexts = []

	def make():
		context = chromium.new_context(viewport=VIEWPORT, locale="en-US", timezone_id=site_timezone)
		context.set_default_timeout(TIMEOUT_MS)
		contexts.append(context)
		page = context.new_page()
		page.errors = []
		page.on("pageerror", lambda e: page.errors.append(f"pageerror: {e} {getattr(e, 'stack', '')}"))
		page.on("console", lambda m: m.type == "error" and page.errors.append(f"console: {m.text}"))
		return page

	yield make
	report = getattr(request.node, "rep_call", None)
	if report is not None and report.failed:
		for i, context in enumerate(contexts):
			for j, page in enumerate(context.pages):
				shot = stack.logs / f"{request.node.name}-{i}-{j}.png"
				try:
					page.screenshot(path=str(shot))
				except Exception:
					shot = "(none)"
				print(f"\n[{page.url}] screenshot {shot}; errors:\n" + "\n".join(page.errors[-30:]))
		print(stack.logs_tail())
	for context in contexts:
		context.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
	outcome = yield
	report = outcome.get_result()
	setattr(item, f"rep_{report.when}", report)
