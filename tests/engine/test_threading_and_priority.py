"""Conversation keys and priority keywords."""

import pytest

from email_sync.engine import parse_message
from email_sync.engine.priority import DEFAULT_TABLE, priority_for
from email_sync.engine.threading import base_subject, thread_message_ids, ticket_references


def test_thread_ids_nearest_first_without_duplicates():
	m = parse_message(
		b"From: a@b.com\r\nIn-Reply-To: <c@x>\r\nReferences: <a@x> <b@x>\r\n <c@x>\r\nSubject: Re: s\r\n\r\nbody"
	)
	assert thread_message_ids(m) == ["c@x", "b@x", "a@x"]


@pytest.mark.parametrize(
	"subject,refs",
	[
		("Re: [ISS-2026-00012] Printer broken", ["ISS-2026-00012"]),
		("AW: iss-2026-00012 follow-up", ["ISS-2026-00012"]),
		("Re: Ticket #123", ["123"]),
		("Issue: 77 still open", ["77"]),
		("[#42] status?", ["42"]),
		("Order 123 shipped", []),
		("We have 2 tickets", []),
	],
)
def test_ticket_references(subject, refs):
	assert ticket_references(subject) == refs


def test_base_subject():
	assert base_subject("Re: AW: Fwd: Printer broken") == "Printer broken"
	assert base_subject("RE[2]: Printer") == "Printer"
	assert base_subject("Recipe for success") == "Recipe for success"


@pytest.mark.parametrize(
	"subject,body,priority,keyword",
	[
		("URGENT: server down", "", "High", "urgent"),
		("Invoice", "please fix asap", "High", "asap"),
		("Printer not working", "", "Medium", "not working"),
		("Question about pricing", "", "Low", "question"),
		("Errors", "all fine", "", ""),  # whole words only: 'errors' is not 'error'
		("Hello", "how are you, this is urgent", "High", "urgent"),  # High before Low, body after subject
		("Hello", "", "", ""),
	],
)
def test_priority_keywords(subject, body, priority, keyword):
	verdict = priority_for(subject, body, DEFAULT_TABLE)
	assert (verdict.priority, verdict.keyword) == (priority, keyword)


def test_table_order_is_precedence_and_default_applies():
	assert priority_for("how do I", "it is an emergency", DEFAULT_TABLE).priority == "High"
	assert priority_for("how do I", "", [("how", "Low"), ("emergency", "High")]).priority == "Low"
	assert priority_for("thanks", "", DEFAULT_TABLE, default="Medium").priority == "Medium"
