"""The engine's decisions: every rule, in its order, with the reason it gives."""

import pytest

from email_sync.engine import (
	ERROR,
	FILED,
	NEEDS_REVIEW,
	OUTBOUND,
	SKIPPED,
	BlacklistEntry,
	Context,
	Directory,
	Filter,
	RuleError,
	RuleSet,
	parse_message,
	plan_message,
	plan_messages,
)
from email_sync.engine.model import INBOUND

DIRECTORY = Directory.build(
	contact_emails=[
		("Ana Silva", "ana@acme.com"),
		("Ana Silva", "Ana.Personal@Gmail.com"),  # a second address of the same Contact
		("Ana Duplicate", "ana@acme.com"),  # two Contacts share an address: both are linked
		("Ben Ortiz", "ben@globex.com"),
		("Sam Staff", "sam@ourco.com"),  # a contact record that shares an address with a user
	],
	contact_customers=[("Ana Silva", "Acme Corp"), ("Ana Duplicate", "Acme Corp"), ("Ben Ortiz", "Globex")],
	user_emails=["sam@ourco.com"],
	internal_domains=["ourco.com"],
)


def mail(sender="ana@acme.com", to="sales@ourco.com", cc="", subject="Order", extra="", body="hi") -> bytes:
	headers = [f"From: {sender}", f"To: {to}", f"Subject: {subject}", "Message-ID: <m@x>"]
	if cc:
		headers.append(f"Cc: {cc}")
	if extra:
		headers.append(extra)
	return ("\r\n".join(headers) + "\r\n\r\n" + body).encode()


def decide(data: bytes, *, rules=None, from_sent=False, **kw):
	context = Context(DIRECTORY, rules or RuleSet([], []), own_addresses={"sales@ourco.com", "info@ourco.com"}, **kw)
	return plan_message(parse_message(data), context, from_sent)


def test_exact_match_links_every_contact_and_customer():
	plan = decide(mail(sender="ANA@acme.com", cc="ben@globex.com"))
	assert plan.status == FILED and plan.rule == "matched" and plan.confidence == 100
	assert plan.contacts == ["Ana Silva", "Ana Duplicate", "Ben Ortiz"]
	assert plan.customers == ["Acme Corp", "Globex"]
	assert "ana@acme.com is Ana Silva, Ana Duplicate" in plan.reason
	assert plan.direction == INBOUND


def test_secondary_address_matches():
	plan = decide(mail(sender="ana.personal@gmail.com"))
	assert plan.status == FILED and plan.contacts == ["Ana Silva"] and plan.customers == ["Acme Corp"]


def test_outbound_from_own_address_or_alias_or_sent_folder():
	assert decide(mail(sender="info@ourco.com", to="ben@globex.com")).direction == OUTBOUND
	plan = decide(mail(sender="someone@ourco.com", to="ben@globex.com"), from_sent=True)
	assert plan.direction == OUTBOUND and plan.status == FILED and plan.contacts == ["Ben Ortiz"]


def test_own_address_never_matches_even_if_a_contact_has_it():
	directory = Directory.build([("Us", "sales@ourco.com")])
	context = Context(directory, own_addresses={"sales@ourco.com"})
	plan = plan_message(parse_message(mail(sender="stranger@nowhere.test")), context)
	assert plan.status == NEEDS_REVIEW


def test_user_addresses_are_never_matched_as_customers():
	plan = decide(mail(sender="sam@ourco.com", to="sales@ourco.com, partner@outside.test"))
	assert plan.status == NEEDS_REVIEW and plan.contacts == []
	assert "system users" in plan.reason and "sam@ourco.com" in plan.reason


def test_unknown_sender_goes_to_review_or_is_skipped_per_setting():
	plan = decide(mail(sender="who@unknown.test"))
	assert (plan.status, plan.rule) == (NEEDS_REVIEW, "unmatched")
	assert "who@unknown.test" in plan.reason and "sales@ourco.com" not in plan.reason
	assert decide(mail(sender="who@unknown.test"), unmatched_action=SKIPPED).status == SKIPPED


def test_blacklist_by_address_domain_subdomain_and_wildcard():
	cases = [
		("ana@acme.com", "ana@acme.com"),
		("acme.com", "ana@acme.com"),
		("acme.com", "ana@mail.acme.com"),
		("*@acme.com", "ana@acme.com"),
		("news*@*", "newsletter@acme.com"),
	]
	for entry, sender in cases:
		plan = decide(mail(sender=sender), rules=RuleSet([BlacklistEntry(entry, "spammy")], []))
		assert (plan.status, plan.rule) == (SKIPPED, f"blacklist:{entry}"), (entry, sender)
		assert "spammy" in plan.reason
	assert decide(mail(), rules=RuleSet([BlacklistEntry("acme.co")], [])).status == FILED  # exact domains only


def test_blacklisted_recipient_skips_too():
	plan = decide(mail(cc="list@lists.example"), rules=RuleSet([BlacklistEntry("lists.example")], []))
	assert plan.status == SKIPPED and "list@lists.example" in plan.reason


def test_internal_mail_is_skipped_but_one_outside_recipient_is_not():
	assert decide(mail(sender="joe@ourco.com", to="sales@ourco.com")).rule == "internal"
	assert decide(mail(sender="joe@ourco.com", to="ben@globex.com")).status == FILED


def test_auto_submitted_skipped_unless_setting_off():
	data = mail(extra="Auto-Submitted: auto-replied")
	plan = decide(data)
	assert (plan.status, plan.rule) == (SKIPPED, "auto-submitted") and "auto-replied" in plan.reason
	assert decide(data, skip_auto_submitted=False).status == FILED


def test_rule_order_blacklist_before_auto_submitted():
	plan = decide(mail(extra="Precedence: bulk"), rules=RuleSet([BlacklistEntry("acme.com")], []))
	assert plan.rule == "blacklist:acme.com"


@pytest.mark.parametrize(
	"field,operator,value,expect_skip",
	[
		("Subject", "contains", "ORDER", True),
		("Subject", "equals", "order", True),
		("Subject", "equals", "ord", False),
		("From", "starts with", "ana@", True),
		("From", "ends with", "@acme.com", True),
		("Any Recipient", "equals", "sales@ourco.com", True),
		("Body", "regex", r"^h\w$", True),
		("Sender Domain", "equals", "globex.com", False),
	],
)
def test_exclude_filters(field, operator, value, expect_skip):
	f = Filter("f1", "Exclude", field, operator, value)
	plan = decide(mail(), rules=RuleSet([], [f]))
	assert (plan.status == SKIPPED) == expect_skip
	if expect_skip:
		assert plan.rule == "filter:f1" and "f1" in plan.reason


def test_include_filters_only_let_matching_mail_through():
	rules = RuleSet([], [Filter("support only", "Include", "To", "equals", "support@ourco.com")])
	assert decide(mail(), rules=rules).rule == "include-filters"
	plan = decide(mail(to="support@ourco.com"), rules=rules)
	assert plan.status == FILED and "support only" in plan.reason


def test_bad_filters_are_refused_with_a_clear_error():
	with pytest.raises(RuleError, match="regular expression is invalid"):
		Filter("bad", "Exclude", "Subject", "regex", "([unclosed")
	with pytest.raises(RuleError, match="unknown field"):
		Filter("bad", "Exclude", "Colour", "contains", "x")


def test_unreadable_message_is_an_error_with_reason():
	plan = decide(b"")
	assert plan.status == ERROR and "empty" in plan.reason


def test_a_failing_rule_costs_one_message_not_the_batch():
	class Exploding(Filter):
		def matches(self, message):
			if message.subject == "boom":
				raise RuntimeError("rule bug")
			return False

	context = Context(DIRECTORY, RuleSet([], [Exploding("x", "Exclude", "Subject", "contains", "z")]))
	plans = plan_messages([(parse_message(mail(subject="boom")), False), (parse_message(mail()), False)], context)
	assert [p.status for p in plans] == [ERROR, FILED]
	assert "rule bug" in plans[0].reason


def test_matching_scales_without_per_address_work():
	big = Directory.build(
		[(f"C{i}", f"person{i}@customer{i % 3000}.test") for i in range(100_000)],
		[(f"C{i}", f"Customer {i % 3000}") for i in range(100_000)],
	)
	context = Context(big)
	plan = plan_message(parse_message(mail(sender="person99999@customer999.test")), context)
	assert plan.contacts == ["C99999"] and plan.customers == ["Customer 999"]
