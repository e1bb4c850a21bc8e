"""Was this message sent by a machine? RFC 3834 and the folk headers that mailers use instead.

The verdict names the header or pattern that decided, so a skipped auto-reply is never a mystery.
"""

from __future__ import annotations

import re

from email_sync.engine.model import AutoSubmitted, Message

NOREPLY_LOCALPART = re.compile(
	r"^(no[-_.]?reply|do[-_.]?not[-_.]?reply|donotreply|mailer[-_.]daemon|postmaster|bounces?)([-+_.].*)?$"
)
AUTO_REPLY_SUBJECT = re.compile(
	r"^\s*(auto(matic)?[- ]?(reply|response|antwort)|auto:|out of (the )?office|abwesenheit|"
	r"r[ée]ponse automatique|respuesta autom[áa]tica|risposta automatica|automatisch antwoord|"
	r"undeliverable|undelivered mail|delivery status notification|mail delivery (failed|failure))",
	re.IGNORECASE,
)


def detect_auto_submitted(message: Message) -> AutoSubmitted:
	h = message.headers
	auto_submitted = h.get("auto-submitted", "").strip().lower()
	if auto_submitted and not auto_submitted.startswith("no"):
		kind = "auto-reply" if auto_submitted.startswith("auto-replied") else "auto-generated"
		return AutoSubmitted(True, kind, f"Auto-Submitted: {auto_submitted}")

	content_type = h.get("content-type", "").lower()
	if "multipart/report" in content_type and ("delivery-status" in content_type or "report-type" not in content_type):
		return AutoSubmitted(True, "bounce", "delivery status report (multipart/report)")
	if "disposition-notification" in content_type:
		return AutoSubmitted(True, "receipt", "read receipt (disposition-notification)")
	if h.get("x-failed-recipients"):
		return AutoSubmitted(True, "bounce", "X-Failed-Recipients header")

	for name in ("x-autoreply", "x-autorespond"):
		if h.get(name):
			return AutoSubmitted(True, "auto-reply", f"{name.title()}: {h[name][:40]}")
	suppress = h.get("x-auto-response-suppress", "").lower()
	if any(token in suppress for token in ("oof", "autoreply")):
		return AutoSubmitted(True, "auto-reply", f"X-Auto-Response-Suppress: {suppress[:40]}")

	precedence = h.get("precedence", "").strip().lower()
	if precedence in ("bulk", "list", "junk", "auto_reply", "auto-reply"):
		kind = "auto-reply" if precedence.startswith("auto") else "bulk"
		return AutoSubmitted(True, kind, f"Precedence: {precedence}")
	if h.get("list-id"):
		return AutoSubmitted(True, "list", f"List-Id: {h['list-id'][:60]}")
	if h.get("list-unsubscribe"):
		return AutoSubmitted(True, "bulk", "List-Unsubscribe header (newsletter or campaign)")

	if message.sender and NOREPLY_LOCALPART.match(message.sender.email.split("@")[0]):
		return AutoSubmitted(True, "noreply", f"sent from a no-reply address ({message.sender.email})")
	if h.get("return-path", "").strip() == "<>":
		return AutoSubmitted(True, "bounce", "empty Return-Path (a bounce or notification)")
	if AUTO_REPLY_SUBJECT.match(message.subject or ""):
		return AutoSubmitted(True, "auto-reply", f"subject looks automatic: {message.subject[:60]}")
	return AutoSubmitted()
