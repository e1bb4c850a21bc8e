"""Matching beyond exact addresses: Contacts from customer domains, domain conflicts, near variants."""

from email_sync.engine import FILED, NEEDS_REVIEW, Context, Directory, parse_message, plan_message
from email_sync.engine.addresses import canonical, within_one_edit

DIRECTORY = Directory.build(
	contact_emails=[("Ana", "ana.silva@acme.com"), ("Joe", "joe.doe@gmail.com"), ("Kim", "kimberly@globex.com")],
	contact_customers=[("Ana", "Acme"), ("Joe", "Joe's Shop"), ("Kim", "Globex")],
	internal_domains=["ourco.com"],
	customer_domains=[("Acme", "acme.com"), ("Acme", "ACME.com "), ("Globex", "globex.com"), ("Initech", "globex.com"),
		("Freeloader", "gmail.com")],
)


def decide(sender, to="sales@ourco.com", cc="", **kw):
	headers = f"From: {sender}\r\nTo: {to}\r\n" + (f"Cc: {cc}\r\n" if cc else "") + "Subject: s\r\n\r\nhi"
	return plan_message(parse_message(headers.encode()), Context(DIRECTORY, own_addresses={"sales@ourco.com"}, **kw))


def test_unknown_address_at_a_customer_domain_becomes_a_contact():
	plan = decide('"Bob Builder" <Bob@ACME.com>')
	assert plan.status == FILED and plan.rule == "domain" and plan.customers == ["Acme"]
	[new] = plan.new_contacts
	assert (new.email, new.name, new.customer) == ("bob@acme.com", "Bob Builder", "Acme")
	assert "domain belongs to Customer Acme" in plan.reason


def test_known_sender_and_unknown_colleague_in_cc():
	plan = decide("ana.silva@acme.com", cc="carl@acme.com")
	assert plan.contacts == ["Ana"] and [c.email for c in plan.new_contacts] == ["carl@acme.com"]


def test_exact_domains_only_and_free_mail_never_maps():
	assert decide("bob@acme.ca").status == NEEDS_REVIEW
	assert decide("bob@sub.acme.com").status == NEEDS_REVIEW
	assert decide("stranger@gmail.com").new_contacts == []
	assert "gmail.com" not in DIRECTORY.customers_by_domain


def test_domain_claimed_by_two_customers_waits_for_review():
	plan = decide("newperson@globex.com")
	assert (plan.status, plan.rule) == (NEEDS_REVIEW, "domain-conflict")
	assert "Globex" in plan.reason and "Initech" in plan.reason


def test_contact_creation_can_be_switched_off():
	assert decide("bob@acme.com", create_contacts=False).status == NEEDS_REVIEW


def test_near_variants_wait_for_review_at_80_percent():
	for variant, known in [
		("joedoe@gmail.com", "joe.doe@gmail.com"),  # Gmail ignores dots
		("joe.doe+orders@googlemail.com", "joe.doe@gmail.com"),
		("ana.silvaa@acme.com", "ana.silva@acme.com"),  # a typo at a known domain (and acme.com is a customer domain)
		("kimberyl@globex.com", "kimberly@globex.com"),  # transposition
	]:
		plan = decide(variant)
		assert (plan.status, plan.rule, plan.confidence) == (NEEDS_REVIEW, "variant", 80), variant
		assert known in plan.reason


def test_accepted_variants_are_filed_at_80_percent():
	plan = decide("joedoe@gmail.com", accept_variants=True)
	assert (plan.status, plan.confidence, plan.contacts, plan.customers) == (FILED, 80, ["Joe"], ["Joe's Shop"])


def test_typos_are_not_guessed_at_free_mail_domains_or_for_short_names():
	assert DIRECTORY.variant_of("joe.doe1@gmail.com") == ""
	short = Directory.build([("Al", "al@acme.com")])
	assert short.variant_of("ai@acme.com") == ""


def test_canonical_and_edit_distance():
	assert canonical("J.Doe+x@GoogleMail.com") == "jdoe@gmail.com"
	assert canonical("j.doe+x@acme.com") == "j.doe@acme.com"
	assert within_one_edit("kimberly", "kimberyl") and within_one_edit("ana", "anna") and within_one_edit("ab", "b")
	assert not within_one_edit("kimberly", "kimberly") and not within_one_edit("abcd", "badc")


def test_vendor_mail_and_only_customers():
	directory = Directory.build(
		[("Sam", "sam@supplies.com"), ("Noor", "noor@partner.org"), ("Ana", "ana@acme.com")],
		[("Ana", "Acme")],
		supplier_emails=["sam@supplies.com"],
	)

	def plan(sender, **kw):
		data = f"From: {sender}\r\nTo: sales@ourco.com\r\nSubject: s\r\n\r\nhi".encode()
		return plan_message(parse_message(data), Context(directory, own_addresses={"sales@ourco.com"}, **kw))

	assert plan("sam@supplies.com").status == FILED  # vendors are filed unless the admin excludes them
	skipped = plan("sam@supplies.com", exclude_suppliers=True)
	assert (skipped.status, skipped.rule) == ("Skipped", "vendor") and "Supplier" in skipped.reason
	assert plan("noor@partner.org").status == FILED
	assert plan("noor@partner.org", only_customers=True).rule == "only-customers"
	assert plan("ana@acme.com", only_customers=True).status == FILED
