"""Notifications by SMS (through Frappe's SMS Settings) and to a Slack or Teams webhook, received by local
HTTP servers playing the SMS gateway and the chat; a failure to notify is logged without secrets and never
fails the sync."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import frappe
import pytest
from factories import (
	deliver, mail, make_account, make_contact, make_customer, new_mailbox, site_user, synced, unique,
	wait_for,
)  # fmt: skip

from email_sync.sync.runner import sync_account

KEY = "gateway-key-" + unique()  # what the gateway URL and the webhook URL carry, and no log may show
MOBILE = "+1 555 0100"
SENT_TO = MOBILE.replace(" ", "")  # as Frappe sends it
FIELDS = ("sms_gateway_url", "message_parameter", "receiver_parameter", "use_post")


class Receiver:
	"""A tiny HTTP server on 127.0.0.1 that records what it is sent and answers with `status`."""

	def __init__(self):
		self.received, self.status = [], 200
		receiver = self

		class Handler(BaseHTTPRequestHandler):
			def do_GET(self):
				self.record()

			def do_POST(self):
				self.record()

			def record(self):
				body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
				url = urlsplit(self.path)
				receiver.received.append(frappe._dict(path=url.path, query=parse_qs(url.query), body=body))
				self.send_response(receiver.status)
				self.end_headers()
				self.wfile.write(b"ok")

			def log_message(self, *args):
				pass

		self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
		self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
		threading.Thread(target=self.server.serve_forever, daemon=True).start()

	def stop(self):
		self.server.shutdown()
		self.server.server_close()


@pytest.fixture
def gateway():
	"""SMS Settings pointing at a local gateway that takes GET ?to=…&text=…&api_key=…"""
	receiver = Receiver()
	settings = frappe.get_single("SMS Settings")
	before = settings.as_dict()
	settings.update({"sms_gateway_url": f"{receiver.url}/send", "message_parameter": "text",
		"receiver_parameter": "to", "use_post": 0})  # fmt: skip
	settings.set("parameters", [{"parameter": "api_key", "value": KEY, "header": 0}])
	settings.save()
	frappe.db.commit()
	yield receiver
	settings.reload()
	settings.update({k: before.get(k) for k in FIELDS})
	kept = [{k: p[k] for k in ("parameter", "value", "header")} for p in before.parameters]
	settings.set("parameters", kept)
	settings.flags.ignore_mandatory = True  # a site without SMS had it empty
	settings.save()
	frappe.db.commit()
	receiver.stop()


@pytest.fixture
def chat():
	receiver = Receiver()
	webhook = frappe.get_doc({"doctype": "Slack Webhook URL", "webhook_name": unique("support-chat-"),
		"webhook_url": f"{receiver.url}/hooks/{KEY}"}).insert(ignore_permissions=True)  # fmt: skip
	frappe.db.commit()
	receiver.webhook = webhook.name
	yield receiver
	frappe.delete_doc("Slack Webhook URL", webhook.name, ignore_permissions=True, force=True)
	frappe.db.commit()
	receiver.stop()


@pytest.fixture
def rows(gateway, chat):
	"""High-priority email: SMS to the on-call user (and to one without a mobile number), and the chat."""
	on_call = site_user("oncall", "Support Team")
	frappe.db.set_value("User", on_call, "mobile_no", MOBILE)
	no_mobile = site_user("nomobile", "Support Team")
	frappe.db.set_value("User", no_mobile, "mobile_no", "")
	settings = frappe.get_single("Email Sync Settings")
	added = [
		{"event": "High-Priority Email", "user": on_call, "channel": "SMS"},
		{"event": "High-Priority Email", "user": no_mobile, "channel": "SMS"},
		{"event": "High-Priority Email", "channel": "Slack or Teams webhook", "webhook": chat.webhook},
	]
	for row in added:
		settings.append("notifications", row)
	settings.save()
	frappe.db.commit()
	yield frappe._dict(on_call=on_call, no_mobile=no_mobile)
	settings.reload()
	settings.set("notifications", [r for r in settings.notifications if r.webhook != chat.webhook
		and r.user not in (on_call, no_mobile)])  # fmt: skip
	settings.save()
	frappe.db.commit()


def an_urgent_email(dovecot):
	"""A filed high-priority email: (subject, its Communication)."""
	domain = f"{unique('urgent')}.test"
	make_contact("Uma", [f"uma@{domain}"], make_customer(f"Urgent {domain}"))
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	subject = f"Emergency: line {unique()} stopped"
	deliver(dovecot, box, [mail(f"uma@{domain}", box.name, subject=subject)])
	assert sync_account(account)["Filed"] == 1
	assert frappe.db.get_value("Email Sync Account", account, "status") == "Active"  # nothing failed it
	return subject, synced(account)[0].communication


# The site may be shared with other test runs: only what concerns this test's email counts.
def sent_about(receiver, subject: str) -> list:
	return [r for r in receiver.received if subject in (r.query.get("text", [""])[0] + r.body.decode())]


def errors_about(communication: str, expected: int):
	def errors():
		found = frappe.get_all(
			"Error Log",
			filters={
				"method": ("like", "Email Sync could not send a notification%"),
				"error": ("like", f"%{communication}%"),
			},
			fields=["method", "error"],
		)
		return found if len(found) >= expected else None

	return wait_for(errors, queue="default") or []


def test_high_priority_email_goes_by_sms_and_to_the_chat(dovecot, gateway, chat, rows):
	started = frappe.utils.now_datetime().replace(microsecond=0)
	subject, communication = an_urgent_email(dovecot)
	assert wait_for(lambda: sent_about(gateway, subject) and sent_about(chat, subject), queue="default")

	[sms] = sent_about(gateway, subject)
	assert sms.path == "/send" and sms.query["to"] == [SENT_TO] and sms.query["api_key"] == [KEY]
	[text] = sms.query["text"]
	assert text.startswith("High-priority email from uma@") and f"/app/communication/{communication}" in text
	[post] = sent_about(chat, subject)
	text = json.loads(post.body)["text"]
	assert post.path == f"/hooks/{KEY}" and "Priority High because" in text and communication in text
	assert frappe.db.exists("SMS Log", {"sent_to": SENT_TO, "creation": (">=", started)})

	[missing] = errors_about(communication, 1)  # the user without a mobile number is named; the others got it
	assert "SMS" in missing.method and rows.no_mobile in missing.error and "no mobile number" in missing.error


@pytest.mark.usefixtures("rows")
def test_a_failing_gateway_or_chat_is_logged_without_secrets_and_the_sync_goes_on(dovecot, gateway, chat):
	gateway.status, chat.status = 500, 503
	subject, communication = an_urgent_email(dovecot)
	errors = errors_about(communication, 3)
	assert sent_about(gateway, subject) and sent_about(chat, subject)  # both were tried
	text = json.dumps(errors)
	assert "HTTP 500" in text and "HTTP 503" in text and f"webhook {chat.webhook}" in text
	for secret in (KEY, gateway.url, chat.url):  # no gateway or webhook URL, no key
		assert secret not in text
