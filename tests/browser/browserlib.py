"""The desk in a real browser: the site served on 127.0.0.1 with its Socket.IO server and an RQ worker, and
Debian's Chromium driven by Playwright. Shared by conftest.py and the test modules.

Nothing is downloaded: Playwright (PyPI) drives the Chromium installed by the system (`apt-get install
chromium`); `playwright install` is never needed.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests

try:
	from playwright.sync_api import expect, sync_playwright
	expect.set_options(timeout=20_000)
except ImportError:  # reported by browser_unavailable(); the tests then skip (or fail when required)
	sync_playwright = expect = None

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
SCREENSHOTS = ROOT / "docs" / "screenshots"
CHROMIUM = os.environ.get("EMAIL_SYNC_CHROMIUM", "/usr/bin/chromium")
VIEWPORT = {"width": 1400, "height": 900}
TIMEOUT_MS = 20_000
WORKERS = int(os.environ.get("EMAIL_SYNC_BROWSER_WORKERS", "2"))

# The site's web app as `bench serve` runs it (assets and files served too), for one site whatever the Host
# header, telling the desk (boot.socketio_port, window.dev_server) to connect Socket.IO to our port.
SERVE = """
import sys
import frappe
import frappe.app
from werkzeug.serving import run_simple

port, site, socketio_port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])
site_config = frappe.get_site_config

def get_site_config(*args, **kwargs):
	conf = site_config(*args, **kwargs)
	conf["socketio_port"] = socketio_port
	return conf

frappe.get_site_config = get_site_config
frappe.app._site = site
frappe.app._sites_path = "."
application = frappe.app.application_with_statics()
run_simple("127.0.0.1", port, application, threaded=True, use_reloader=False, use_debugger=False)
"""


def browser_unavailable() -> str | None:
	"""Why the browser tests cannot run here, or None."""
	if sync_playwright is None:
		return (
			"Python Playwright is not installed in the bench env "
			"(env/bin/python -m pip install playwright; no `playwright install` needed)"
		)
	if not os.access(CHROMIUM, os.X_OK):
		return f"no Chromium at {CHROMIUM} (apt-get install chromium, or set EMAIL_SYNC_CHROMIUM)"
	return None


TRACKER = "tracker.invalid"  # the remote image host of the test emails: a counting server, see Tracker


class Tracker:
	"""A stand-in for a mail tracking server: Chromium resolves TRACKER to it (and only it); every request
	it receives is recorded, so a test sees exactly what an email's remote images made the browser fetch."""

	GIF = bytes.fromhex("47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b")

	def __init__(self):
		from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
		from threading import Thread

		hits = self.hits = []

		class Handler(BaseHTTPRequestHandler):
			def do_GET(self):
				hits.append(self.path)
				self.send_response(200)
				self.send_header("Content-Type", "image/gif")
				self.send_header("Content-Length", str(len(Tracker.GIF)))
				self.end_headers()
				self.wfile.write(Tracker.GIF)

			do_POST = do_GET

			def log_message(self, *args):
				pass

		self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
		self.url = f"http://{TRACKER}:{self.server.server_address[1]}"
		Thread(target=self.server.serve_forever, daemon=True).start()

	def stop(self):
		self.server.shutdown()
		self.server.server_close()


def chromium_args(site: str) -> list[str]:
	return [
		"--no-sandbox",
		"--disable-gpu",
		"--disable-quic",
		"--no-first-run",
		"--disable-background-networking",
		"--disable-component-update",
		"--disable-sync",
		"--disable-dev-shm-usage",
		f"--host-resolver-rules=MAP {site} 127.0.0.1, MAP {TRACKER} 127.0.0.1",
	]


def free_port() -> int:
	with socket.socket() as s:
		s.bind(("127.0.0.1", 0))
		return s.getsockname()[1]


def _wait_until(check, what: str, timeout: float, procs: dict) -> None:
	deadline = time.monotonic() + timeout
	while time.monotonic() < deadline:
		for name, (proc, log) in procs.items():
			if proc.poll() is not None:
				raise RuntimeError(f"{name} exited with {proc.returncode} while waiting for {what}:\n{_tail(log)}")
		try:
			if check():
				return
		except (OSError, requests.RequestException):
			pass
		time.sleep(0.2)
	raise RuntimeError(f"timed out waiting for {what}")


def _tail(path: Path, chars: int = 4000) -> str:
	try:
		return path.read_text(errors="replace")[-chars:]
	except OSError:
		return ""


@dataclass
class Stack:
	"""The running site: `url` is what the browser opens (the site's own host name, on our port)."""

	site: str
	url: str
	port: int
	socketio_port: int
	logs: Path
	procs: dict = field(default_factory=dict)

	def log(self, name: str, chars: int = 4000) -> str:
		return _tail(self.procs[name][1], chars)

	def logs_tail(self) -> str:
		return "\n".join(f"--- {name} ---\n{self.log(name, 2500)}" for name in self.procs)

	def stop(self) -> None:
		for proc, _log in self.procs.values():
			if proc.poll() is None:
				try:
					os.killpg(proc.pid, signal.SIGTERM)  # the process group we started (worker's work-horses too)
				except ProcessLookupError:
					pass
		for proc, _log in self.procs.values():
			try:
				proc.wait(timeout=15)
			except subprocess.TimeoutExpired:
				os.killpg(proc.pid, signal.SIGKILL)
				proc.wait()


def start_stack(site: str, sites_path: str, logs: Path) -> Stack:
	"""Web app, Socket.IO and an RQ worker (queues long and default) for `site`, each on 127.0.0.1."""
	bench = Path(sites_path).resolve().parent
	python = sys.executable
	port, socketio_port = free_port(), free_port()
	stack = Stack(site=site, url=f"http://{site}:{port}", port=port, socketio_port=socketio_port, logs=logs)

	def spawn(name, args, cwd, env=None):
		log = logs / f"{name}.log"
		handle = open(log, "w")
		proc = subprocess.Popen(
			args, cwd=cwd, env={**os.environ, **(env or {})}, stdout=handle, stderr=subprocess.STDOUT,
			start_new_session=True,
		)
		handle.close()
		stack.procs[name] = (proc, log)

	try:
		# DEV_SERVER=1 is what `bench start` exports: the desk then connects Socket.IO to boot.socketio_port
		spawn("web", [python, "-c", SERVE, str(port), site, str(socketio_port)], sites_path, {"DEV_SERVER": "1"})
		spawn(
			"socketio",
			["node", str(bench / "apps" / "frappe" / "socketio.js")],
			str(bench),
			{
				"FRAPPE_SOCKETIO_PORT": str(socketio_port),
				"EMAIL_SYNC_RESOLVE": site,
				"NODE_OPTIONS": f"--require {HERE / 'resolve_site.js'}",
			},
		)
		# Sync Now enqueues on the shared `long` queue: two workers, so a backlog of scheduled syncs on a busy
		# bench does not hold the test's job up for long.
		for n in range(WORKERS):
			spawn(f"worker{n}", [python, "-m", "frappe.utils.bench_helper", "frappe", "worker", "--queue", "long,default"],
				sites_path)
		_wait_until(
			lambda: requests.get(f"http://127.0.0.1:{port}/api/method/ping", timeout=2).ok,
			"the web app", 60, stack.procs,
		)
		_wait_until(
			lambda: socket.create_connection(("127.0.0.1", socketio_port), timeout=1).close() or True,
			"the Socket.IO server", 30, stack.procs,
		)
		for n in range(WORKERS):
			_wait_until(lambda: "Listening on" in stack.log(f"worker{n}"), f"RQ worker {n}", 60, stack.procs)
	except Exception:
		stack.stop()
		raise
	return stack


# ---- the desk, as a user drives it -------------------------------------------------------------------


def login(page, stack: Stack, user: str, password: str) -> None:
	"""Through the real login page, then wait for the desk to boot."""
	page.goto(f"{stack.url}/login")
	page.fill("#login_email", user)
	page.fill("#login_password", password)
	page.click(".btn-login")
	page.wait_for_url(re.compile(r".*/app(/.*)?$"), timeout=30_000)
	wait_for_desk(page)
	# Let the home workspace finish loading: leaving it half-drawn makes the desk's Workspace.show_page throw
	page.wait_for_load_state("networkidle")


def wait_for_desk(page) -> None:
	page.wait_for_function("() => window.frappe && frappe.boot && frappe.router && frappe.container", timeout=30_000)


def go(page, stack: Stack, route: str) -> None:
	"""Open a desk route the way a user does once the desk is loaded (no full reload), e.g. 'customer/X'."""
	page.evaluate("(route) => frappe.set_route(route)", route)


def wait_for_form(page, doctype: str, name: str) -> None:
	page.wait_for_function(
		"([doctype, name]) => window.cur_frm && cur_frm.doctype === doctype && cur_frm.docname === name"
		" && !cur_frm.is_dirty() && cur_frm.doc && cur_frm.doc.__last_sync_on",
		arg=[doctype, name],
		timeout=TIMEOUT_MS,
	)


def wait_for_realtime(page) -> None:
	"""The desk's Socket.IO connection is up (authenticated by the Socket.IO server against the site)."""
	page.wait_for_function(
		"() => frappe.realtime && frappe.realtime.socket && frappe.realtime.socket.connected", timeout=TIMEOUT_MS
	)


def settle(page, ms: int = 400) -> None:
	"""Let animations (dialogs sliding in, tab switches) finish before a screenshot."""
	page.wait_for_timeout(ms)


def shoot(page, name: str) -> Path:
	SCREENSHOTS.mkdir(parents=True, exist_ok=True)
	path = SCREENSHOTS / f"{name}.png"
	page.screenshot(path=str(path))
	return path


def call(page, method: str, args: dict | None = None, http: str = "POST") -> dict:
	"""Call a whitelisted method with the page's session and CSRF token, as desk code would: {status, body}."""
	return page.evaluate(
		"""async ([method, args, http]) => {
			const url = `/api/method/${method}` + (http === "GET" ? "?" + new URLSearchParams(args) : "");
			const r = await fetch(url, {
				method: http,
				headers: {"X-Frappe-CSRF-Token": frappe.csrf_token, "Accept": "application/json",
					"Content-Type": "application/x-www-form-urlencoded"},
				body: http === "GET" ? undefined : new URLSearchParams(args),
			});
			return {status: r.status, body: await r.text()};
		}""",
		[method, args or {}, http],
	)
