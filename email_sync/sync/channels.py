"""Notices by SMS and to chat, sent by a background job (notify.py decides who; tasks.enqueue_notice queues).

- SMS: through Frappe's SMS Settings (`send_sms`, which keeps an SMS Log), to the mobile number on each
  user's profile, one number at a time so that one refused number does not stop the others;
- chat: a POST of {"text": ...} to the URL of a *Slack Webhook URL* record, which Slack and Microsoft Teams
  incoming webhooks both accept.

`deliver` never raises. Each failure leaves an Error Log titled after the channel, saying why in words that
hold no gateway or webhook URL (those carry keys).
"""

from __future__ import annotations

import re

import frappe
import requests
from frappe.core.doctype.sms_settings.sms_settings import send_sms

TIMEOUT = 10  # seconds, for a webhook (Frappe's SMS gateway call takes no timeout: the job's applies)
SMS_SUBJECT_LENGTH = 200
URL = re.compile(r"\w+://\S+")


def deliver(notice: dict) -> None:
	"""Send `notice` (about, subject, message, link, sms_users, webhooks) on its channels."""
	if notice.get("sms_users"):
		_sms(notice)
	for webhook in notice.get("webhooks") or []:
		try:
			post_to_webhook(webhook, chat_text(notice))
		except Exception as e:
			_failed(f"the chat webhook {webhook}", notice, describe(e))


def sms_text(notice: dict) -> str:
	return f"{notice['subject'][:SMS_SUBJECT_LENGTH]} {notice['link']}"


def chat_text(notice: dict) -> str:
	return "\n".join(part for part in (notice["subject"], notice.get("message"), notice["link"]) if part)


def post_to_webhook(webhook: str, text: str) -> None:
	url = frappe.db.get_value("Slack Webhook URL", webhook, "webhook_url")
	if not url:
		raise ValueError(f"the Slack Webhook URL record {webhook} has no URL")
	requests.post(url, json={"text": text}, timeout=TIMEOUT).raise_for_status()


def _sms(notice: dict) -> None:
	if not frappe.db.get_single_value("SMS Settings", "sms_gateway_url"):
		_failed("SMS", notice, "SMS Settings has no SMS Gateway URL: set it up, or choose another channel.")
		return
	numbers = dict(
		frappe.get_all(
			"User",
			filters={"name": ("in", notice["sms_users"]), "enabled": 1},
			fields=["name", "mobile_no"],
			as_list=True,
		)
	)
	without = sorted(user for user in notice["sms_users"] if not numbers.get(user))
	if without:
		_failed("SMS", notice, f"no mobile number on the profile of {', '.join(without)}.")
	for user, number in numbers.items():
		if not number:
			continue
		try:
			send_sms([number], sms_text(notice), success_msg=False)
		except Exception as e:
			frappe.clear_messages()
			_failed("SMS", notice, f"to {user}: {describe(e)}")


def describe(error: Exception) -> str:
	"""Why a delivery failed, without any URL (and so without any key one carries)."""
	if isinstance(error, requests.HTTPError) and error.response is not None:
		return f"the server answered HTTP {error.response.status_code}."
	if isinstance(error, requests.Timeout):
		return f"no answer within {TIMEOUT} seconds."
	if isinstance(error, requests.ConnectionError):
		return "the server could not be reached."
	return URL.sub("<url>", frappe.utils.strip_html(str(error)))[:300] or type(error).__name__


def _failed(channel: str, notice: dict, reason: str) -> None:
	frappe.log_error(
		title=f"Email Sync could not send a notification by {channel}"[:140],
		message=f"Notification: {notice.get('about')}\nReference: {notice.get('link')}\nWhy: {reason}",
	)
