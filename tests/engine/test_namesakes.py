"""A second address of a known person: the new address at a Customer's domain, named like a Contact of that
Customer, goes onto that Contact, waits in Needs Review, or becomes a Contact all the same, per setting;
names compared in normalised form, and never across Customers."""

import time

import pytest

from email_sync.engine import FILED, NEEDS_REVIEW, Context, Directory, parse_message, plan_message, plan_messages
from email_sync.engine.directory import Rows
from email_sync.engine.namesakes import ADD, ASK, CREATE, MAX_NAME, address_of, normalise_name, person_name

CONTACTS = [("LEE-1", "lee.smith@acme.com"), ("ANA-1", "ana@initech.com"), ("DUP-1", "pat.doe@globex.com"),
	("DUP-2", "p.doe@globex.com")]  # fmt: skip
LINKS = [("LEE-1", "Acme"), ("ANA-1", "Initech"), ("DUP-1", "Globex"), ("DUP-2", "Globex"), ("NOMAIL-1", "Acme")]
NAMES = [("LEE-1", "Lee Smith"), ("ANA-1", "José García"), ("DUP-1", "Pat Doe"), ("DUP-2", "Pat Doe"),
	("NOMAIL-1", "Robin")]  # fmt: skip
DOMAINS = [("Acme", "acme.com"), ("Initech", "initech.com"), ("Globex", "globex.com")]


def directory() -> Directory:
	return Directory.build(CONTACTS, LINKS, internal_domains=["ourco.com"], customer_domains=DOMAINS, contact_names=NAMES)


def decide(sender: str, action: str, cc: str = "", where: Directory | None = None):
	headers = f"From: {sender}\r\nTo: sales@ourco.com\r\n" + (f"Cc: {cc}\r\n" if cc else "") + "Subject: s\r\n\r\nhi"
	context = Context(where or directory(), own_addresses={"sales@ourco.com"}, namesake_action=action)
	return plan_message(parse_message(headers.encode()), context)


@pytest.mark.parametrize(
	"name, normal",
	[
		("Lee Smith", "lee smith"),
		("  LEE   SMITH ", "lee smith"),
		("Smith, Lee", "lee smith"),
		("José García", "jose garcia"),
		("JOSE  GARCIA", "jose garcia"),
		("Zoë O'Brien-Nagy", "zoe o brien nagy"),
		("Straße Müller", "strasse muller"),
	],
)
def test_names_compare_without_case_accents_punctuation_or_spacing(name, normal):
	assert normalise_name(name) == normal


def test_one_word_and_addresses_are_no_persons_name():
	assert person_name("Lee") == "" and person_name("Support") == ""
	assert person_name("lee.smith@acme.com") == "" and person_name("Lee Smith <x@y>") == ""
	assert person_name("Lee Smith") == "lee smith"


def test_a_hostile_name_is_looked_at_in_bounded_time():
	name = ("Á" + "\u0301" * 50 + " ,") * 200_000  # megabytes of combining marks and commas
	started = time.perf_counter()
	assert len(normalise_name(name)) <= MAX_NAME
	assert time.perf_counter() - started < 0.1


def test_add_puts_the_address_on_the_contact_of_that_name():
	plan = decide('"Lee  SMITH" <lee@acme.com>', ADD)
	assert (plan.status, plan.rule, plan.contacts, plan.customers) == (FILED, "domain", ["LEE-1"], ["Acme"])
	assert plan.new_contacts == []
	[added] = plan.added_addresses
	assert (added.email, added.contact, added.customer) == ("lee@acme.com", "LEE-1", "Acme")
	assert "lee@acme.com (Lee SMITH) is a second address of Contact LEE-1 of Customer Acme" in plan.reason


def test_ask_holds_the_email_in_review_with_the_contact_to_add_it_to():
	plan = decide('"Smith, Lee" <lee@acme.com>', ASK)
	assert (plan.status, plan.confidence, plan.contacts, plan.customers) == (NEEDS_REVIEW, 90, ["LEE-1"], ["Acme"])
	assert address_of(plan.rule) == "lee@acme.com"
	assert plan.new_contacts == [] and plan.added_addresses == []
	assert "Customer Acme has a Contact of that name (LEE-1)" in plan.reason


def test_create_makes_the_new_contact_as_before():
	plan = decide('"Lee Smith" <lee@acme.com>', CREATE)
	assert plan.status == FILED and [c.email for c in plan.new_contacts] == ["lee@acme.com"]
	assert plan.added_addresses == [] and plan.contacts == []


def test_accents_and_case_do_not_hide_a_namesake():
	plan = decide('"JOSE GARCIA" <jgarcia@initech.com>', ADD)
	assert [a.contact for a in plan.added_addresses] == ["ANA-1"]


def test_never_across_customers():
	# Lee Smith is a Contact of Acme: at Initech's domain the same name is somebody else.
	plan = decide('"Lee Smith" <lee@initech.com>', ADD)
	assert plan.added_addresses == [] and [(c.email, c.customer) for c in plan.new_contacts] == [("lee@initech.com", "Initech")]


def test_a_different_name_or_one_word_makes_a_new_contact():
	assert [c.email for c in decide('"Lee Smyth" <lee@acme.com>', ADD).new_contacts] == ["lee@acme.com"]
	assert [c.email for c in decide('"Robin" <robin@acme.com>', ADD).new_contacts] == ["robin@acme.com"]


def test_two_contacts_of_that_name_make_it_a_persons_choice_even_with_add():
	plan = decide('"Pat Doe" <pat.home@globex.com>', ADD)
	assert (plan.status, plan.contacts, address_of(plan.rule)) == (NEEDS_REVIEW, ["DUP-1", "DUP-2"], "pat.home@globex.com")


def test_a_known_colleague_in_the_same_email_still_files_it_with_add():
	plan = decide("lee.smith@acme.com", ADD, cc='"Lee Smith" <lee.home@acme.com>')
	assert plan.status == FILED and plan.contacts == ["LEE-1"]
	assert [a.email for a in plan.added_addresses] == ["lee.home@acme.com"]


class NamedSite:
	"""Answers like the Frappe side, counting the asking: names only for the Customers asked about."""

	def __init__(self):
		self.namesake_calls = []

	def exact(self, emails, domains):
		contact_emails = [(c, e) for c, e in CONTACTS if e in emails]
		contacts = {c for c, _ in contact_emails}
		return Rows(contact_emails=contact_emails, contact_customers=[(c, x) for c, x in LINKS if c in contacts],
			customer_domains=[(c, d) for c, d in DOMAINS if d in domains])  # fmt: skip

	def near(self, canonicals, domains):
		return Rows()

	def namesakes(self, customers):
		self.namesake_calls.append(list(customers))
		contacts = {c for c, x in LINKS if x in customers}
		return Rows(contact_customers=[(c, x) for c, x in LINKS if c in contacts],
			contact_names=[(c, n) for c, n in NAMES if c in contacts])  # fmt: skip


def test_a_batch_asks_for_names_once_and_only_when_a_person_would_be_created():
	site = NamedSite()
	lazy = Context(Directory.build(internal_domains=["ourco.com"], source=site), own_addresses={"sales@ourco.com"},
		namesake_action=ADD)  # fmt: skip
	senders = ['"Lee Smith" <lee@acme.com>', '"Lee Smith" <lee2@acme.com>', "lee.smith@acme.com", '"Ann Other" <ann@acme.com>',
		'"Support" <help@globex.com>']  # fmt: skip
	messages = [(parse_message(f"From: {s}\r\nTo: sales@ourco.com\r\nSubject: s\r\n\r\nhi".encode()), False) for s in senders]
	plans = plan_messages(messages, lazy)
	assert site.namesake_calls == [["Acme"]]  # Globex's only newcomer has no person's name
	assert [a.contact for a in plans[0].added_addresses] == ["LEE-1"]
	assert [a.contact for a in plans[1].added_addresses] == ["LEE-1"]
	assert [c.email for c in plans[3].new_contacts] == ["ann@acme.com"]


def test_a_source_without_names_leaves_contact_creation_as_it_was():
	class Nameless(NamedSite):
		namesakes = None

	lazy = Directory.build(internal_domains=["ourco.com"], source=Nameless())
	plan = decide('"Lee Smith" <lee@acme.com>', ADD, where=lazy)
	assert [c.email for c in plan.new_contacts] == ["lee@acme.com"]
