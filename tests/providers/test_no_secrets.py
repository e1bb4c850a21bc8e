"""No token, password or client secret in any error a provider raises, nor in its traceback's local variables.

Frappe's Error Log prints tracebacks with the local variables of every frame; a dropped connection that escaped
a provider's error mapping used to put `Authorization: Bearer ...` there. Each test breaks the connection the
way networks do (cut mid-body, reset, stalled past the timeout) on each kind of request (API calls, downloads,
token refreshes, IMAP logins), then renders the error as such a log would: str, repr, args, and the traceback
with `capture_locals=True` (chained exceptions included, as Python prints them).
"""

from __future__ import annotations

import socket
import threading

import pytest
from leaks import assert_clean, failure
from transport_faults import CUT, RESET, STALL

from email_sync.providers.base import AccountConfig, OAuthTokens
from email_sync.providers.gmail import GmailProvider
from email_sync.providers.imap import IMAPProvider

pytest_plugins = ["conftest_graph", "conftest_gmail"]


# -- Microsoft Graph and Entra ID ----------------------------------------------------------------------------


def graph_secrets(graph) -> set[str]:
	return {graph.client_secret, *graph.access_tokens, *graph.grants}


@pytest.mark.parametrize("mode", [CUT, RESET, STALL])
@pytest.mark.parametrize(
	"match", ["/$value", "/messages/delta", "/mailFolders", "/oauth2/v2.0/token"], ids=["download", "delta", "folders", "token"]
)
def test_graph_broken_connections_leak_no_secret(graph, make_provider, make_config, mode, match):
	graph.add_message("inbox", "2026-11-20T09:00:00Z")
	graph.transport.stall_seconds = 1.0
	graph.transport.add(mode, match=match, count=100)
	provider = make_provider(make_config(timeout=0.4), max_attempts=2)
	error = failure(lambda: list(provider.fetch(None)))
	assert graph.transport.used, "the fault never fired"
	assert_clean(error, graph_secrets(graph))
	assert error.transient


# -- Gmail and Google OAuth ----------------------------------------------------------------------------------


def gmail_secrets(gmail) -> set[str]:
	return {gmail.client_secret, *gmail.access_tokens, *gmail.refresh_tokens}


@pytest.mark.parametrize("mode", [CUT, RESET, STALL])
@pytest.mark.parametrize("match", ["/batch", "/labels", "/messages", "/token"])
def test_gmail_broken_connections_leak_no_secret(gmail, gmail_config, mode, match):
	gmail.add_message()
	gmail.transport.stall_seconds = 1.0
	gmail.transport.add(mode, match=match, count=100)
	config = gmail_config(timeout=0.4)
	if match == "/token":
		config.oauth.access_token = ""  # the first call refreshes
	provider = GmailProvider(config, sleep=lambda s: None, backoff=0.001)
	error = failure(lambda: list(provider.fetch(None)))
	assert gmail.transport.used, "the fault never fired"
	assert_clean(error, gmail_secrets(gmail))
	assert error.transient


@pytest.mark.parametrize("mode", [CUT, RESET, STALL])
def test_google_sign_in_and_imap_refresh_leak_no_secret(gmail, gmail_config, mode):
	"""The code exchange of Connect (google-auth-oauthlib's Flow) posts the client secret, the code and the PKCE
	verifier; the XOAUTH2 refresh posts the refresh token."""
	from email_sync.providers import google_oauth, xoauth2

	gmail.transport.stall_seconds = 1.0
	gmail.transport.add(mode, match="/token", count=100)
	code, verifier = "4/code-" + "c" * 30, "v" * 64
	error = failure(
		lambda: google_oauth.finish_sign_in(
			gmail.client_id, gmail.client_secret, code, "https://erp.example.com/cb", verifier,
			auth_base=gmail.base, timeout=0.4,
		)
	)  # fmt: skip
	assert gmail.transport.used, "the fault never fired"
	assert_clean(error, {*gmail_secrets(gmail), code, verifier})
	config = gmail_config(timeout=0.4)
	config.oauth.access_token = ""
	error = failure(lambda: xoauth2.access_token_for(config, issuer="Google"))
	assert_clean(error, gmail_secrets(gmail))


def test_google_sign_in_refused_leaks_no_secret(gmail):
	"""Google refusing the code (invalid_grant) or the client (invalid_client): oauthlib's errors are mapped."""
	from email_sync.providers import google_oauth

	code, verifier = "4/code-" + "d" * 30, "w" * 64
	for secret in (gmail.client_secret, "wrong-" + gmail.client_secret):
		error = failure(
			lambda secret=secret: google_oauth.finish_sign_in(
				gmail.client_id, secret, code, "https://erp.example.com/cb", verifier, auth_base=gmail.base
			)
		)
		assert_clean(error, {*gmail_secrets(gmail), secret, code, verifier})


@pytest.mark.parametrize("mode", [CUT, RESET])
def test_microsoft_sign_in_leaks_no_secret(graph, mode):
	from email_sync.providers.microsoft_oauth import begin_sign_in, finish_sign_in

	options = {"verify": graph.certs.ca_file, "timeout": 0.4}
	flow = begin_sign_in(
		graph.client_id, graph.client_secret, graph.redirect_uri, "state-1", "organizations", graph.auth_base,
		**options,
	)  # fmt: skip
	graph.transport.add(mode, match="/oauth2/v2.0/token", count=100)
	code = graph.issue_code()
	error = failure(
		lambda: finish_sign_in(
			flow, code, graph.client_id, graph.client_secret, "organizations", graph.auth_base, **options
		)
	)
	assert graph.transport.used, "the fault never fired"
	assert_clean(error, {*graph_secrets(graph), code, flow["code_verifier"]})


def test_gmail_unreadable_answer_leaks_no_secret(gmail, gmail_config):
	"""A 200 whose body is not JSON (a captive portal, a broken proxy) makes the client raise ValueError."""
	gmail.add_message()
	original = gmail.handle

	def garbled(method, target, headers, body, in_batch=False):
		status, out_headers, out_body = original(method, target, headers, body, in_batch)
		if "/labels" in target:
			return 200, {"Content-Type": "application/json"}, b"<html>Sign in to the hotel Wi-Fi</html>"
		return status, out_headers, out_body

	gmail.handle = garbled
	provider = GmailProvider(gmail_config(), sleep=lambda s: None, backoff=0.001)
	assert_clean(failure(lambda: list(provider.fetch(None))), gmail_secrets(gmail))


# -- IMAP ----------------------------------------------------------------------------------------------------


class BrokenImapServer:
	"""Greets, answers CAPABILITY, then resets the connection at the login (LOGIN or AUTHENTICATE)."""

	def __init__(self, capabilities: str):
		self.capabilities = capabilities
		self.listener = socket.create_server(("127.0.0.1", 0))
		self.logins: list[bytes] = []
		threading.Thread(target=self._serve, daemon=True).start()

	@property
	def port(self) -> int:
		return self.listener.getsockname()[1]

	def _serve(self):
		while True:
			try:
				conn, _ = self.listener.accept()
			except OSError:
				return
			threading.Thread(target=self._session, args=(conn,), daemon=True).start()

	def _session(self, conn: socket.socket):
		with conn, conn.makefile("rb") as lines:
			conn.sendall(b"* OK IMAP4rev1 ready\r\n")
			for line in lines:
				tag, _, command = line.decode().strip().partition(" ")
				if command.upper().startswith("CAPABILITY"):
					conn.sendall(f"* CAPABILITY {self.capabilities}\r\n{tag} OK done\r\n".encode())
					continue
				self.logins.append(line)
				if command.upper().startswith("AUTHENTICATE"):
					conn.sendall(b"+ \r\n")
					self.logins.append(lines.readline())  # the SASL response carrying the token
				conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
				return

	def stop(self):
		self.listener.close()


@pytest.mark.parametrize("password", ["correct horse battery staple", "pässwörd-ünïcode"])
def test_imap_password_login_cut_leaks_no_password(password):
	server = BrokenImapServer("IMAP4rev1 AUTH=PLAIN")
	try:
		config = AccountConfig(
			provider="IMAP", address="ana@example.com", host="127.0.0.1", port=server.port, security="None",
			password=password, timeout=5,
		)  # fmt: skip
		error = failure(lambda: IMAPProvider(config).connect())
		assert server.logins, "the login never reached the server"
		assert_clean(error, {password})
	finally:
		server.stop()


def test_imap_xoauth2_login_cut_leaks_no_token():
	server = BrokenImapServer("IMAP4rev1 AUTH=XOAUTH2 SASL-IR")
	token, refresh, secret = "ya29.access-" + "x" * 40, "1//refresh-" + "y" * 40, "client-secret-zzz"
	try:
		config = AccountConfig(
			provider="IMAP", address="ana@example.com", host="127.0.0.1", port=server.port, security="None",
			timeout=5,
			oauth=OAuthTokens(client_id="c.apps.googleusercontent.com", client_secret=secret, refresh_token=refresh,
				access_token=token, expires_at=4102444800.0),
		)  # fmt: skip
		error = failure(lambda: IMAPProvider(config, oauth_issuer="Google").connect())
		assert server.logins, "the login never reached the server"
		assert_clean(error, {token, refresh, secret})
	finally:
		server.stop()
