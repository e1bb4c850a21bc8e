"""A Directory backed by a source asks only about the addresses and domains a batch names, once, and decides
exactly as a Directory built from every row would."""

from email_sync.engine import Context, Directory, parse_message, plan_message, plan_messages
from email_sync.engine.addresses import canonical
from email_sync.engine.directory import Rows

CONTACTS = [
	("Ana", "ana.silva@acme.com"), ("Ana", "a.silva@acme.com"), ("Joe", "joe.doe@gmail.com"),
	("Kim", "kimberly@globex.com"), ("Sam", "sam@supplies.com"), ("Una", "una@ourco.com"),
	*[(f"C{i}", f"person{i}@customer{i % 50}.test") for i in range(2000)],
]  # fmt: skip
LINKS = [("Ana", "Acme"), ("Joe", "Joe's Shop"), ("Kim", "Globex"), ("Una", "Acme")]
DOMAINS = [("Acme", "acme.com"), ("Globex", "globex.com"), ("Initech", "globex.com"), ("Free", "gmail.com")]
USERS = ["una@ourco.com"]
SUPPLIERS = ["sam@supplies.com"]
OWN = {"sales@ourco.com"}


class Site:
	"""Answers like the Frappe side: only rows for what is asked, and counts the asking."""

	def __init__(self):
		self.calls = []

	def exact(self, emails, domains):
		self.calls.append(("exact", emails, domains))
		return self._rows([(c, e) for c, e in CONTACTS if e in emails], users=[u for u in USERS if u in emails],
		                  customer_domains=[(c, d) for c, d in DOMAINS if d in domains])  # fmt: skip

	def near(self, canonicals, domains):
		self.calls.append(("near", canonicals, domains))
		return self._rows([(c, e) for c, e in CONTACTS if canonical(e) in canonicals or e.split("@")[1] in domains])

	def _rows(self, contact_emails, users=(), customer_domains=()):
		contacts = {c for c, _ in contact_emails}
		return Rows(
			contact_emails=contact_emails,
			contact_customers=[(c, x) for c, x in LINKS if c in contacts],
			user_emails=users,
			customer_domains=customer_domains,
			supplier_emails=[e for _, e in contact_emails if e in SUPPLIERS],
		)


def whole() -> Directory:
	return Directory.build(CONTACTS, LINKS, USERS, ["ourco.com"], DOMAINS, supplier_emails=SUPPLIERS)


def backed(site: Site) -> Directory:
	return Directory.build(internal_domains=["ourco.com"], source=site)


def mail(sender: str, cc: str = "") -> bytes:
	cc = f"Cc: {cc}\r\n" if cc else ""
	return f"From: {sender}\r\nTo: sales@ourco.com\r\n{cc}Subject: s\r\n\r\nhi".encode()


SENDERS = [
	("ana.silva@acme.com", ""), ("A.Silva@ACME.com", ""), ("bob@acme.com", "kimberly@globex.com"),
	("newperson@globex.com", ""), ("joedoe@gmail.com", ""), ("joe.doe+x@googlemail.com", ""),
	("ana.silvaa@acme.com", ""), ("kimberyl@globex.com", ""), ("joe.doe1@gmail.com", ""),
	("sam@supplies.com", ""), ("una@ourco.com", "stranger@yahoo.com"), ("person1234@customer34.test", ""),
	("persn1234@customer34.test", ""),
	("nobody@nowhere.example", ""),
]  # fmt: skip


def test_a_batch_decides_exactly_as_the_whole_directory_would():
	for settings in ({}, {"accept_variants": True, "exclude_suppliers": True}):
		full = Context(whole(), own_addresses=OWN, **settings)
		lazy = Context(backed(Site()), own_addresses=OWN, **settings)
		messages = [(parse_message(mail(s, cc)), False) for s, cc in SENDERS]
		for expected, got in zip(plan_messages(messages, full), plan_messages(messages, lazy), strict=True):
			assert (got.status, got.rule, got.reason, got.contacts, got.customers, got.confidence) == (
				expected.status, expected.rule, expected.reason, expected.contacts, expected.customers,
				expected.confidence,
			)  # fmt: skip


def test_one_round_of_lookups_per_batch_for_exactly_its_addresses():
	site = Site()
	context = Context(backed(site), own_addresses=OWN)
	plan_messages([(parse_message(mail(s, cc)), False) for s, cc in SENDERS[:5]], context)
	assert [kind for kind, *_ in site.calls] == ["exact", "near"]
	_, emails, domains = site.calls[0]
	assert emails == sorted({"ana.silva@acme.com", "a.silva@acme.com", "bob@acme.com", "kimberly@globex.com",
	                         "newperson@globex.com", "joedoe@gmail.com"})  # fmt: skip
	assert domains == ["acme.com", "globex.com", "gmail.com"]
	# near variants only for the unknown; typos only for 4+ letters at a non-free-mail domain (not bob@acme.com)
	_, canonicals, near_domains = site.calls[1]
	assert canonicals == ["bob@acme.com", "joedoe@gmail.com", "newperson@globex.com"]
	assert near_domains == ["globex.com"]
	# the same people again: nothing more is asked
	plan_messages([(parse_message(mail("ana.silva@acme.com", "bob@acme.com")), False)], context)
	assert len(site.calls) == 2


def test_a_single_message_looks_up_by_itself_and_learn_needs_no_lookup():
	site = Site()
	directory = backed(site)
	plan = plan_message(parse_message(mail("kimberly@globex.com")), Context(directory, own_addresses=OWN))
	assert plan.contacts == ["Kim"] and plan.customers == ["Globex"]
	directory.learn("carl@acme.com", "Carl", ["Acme"])
	calls = len(site.calls)
	plan = plan_message(parse_message(mail("Carl@acme.com")), Context(directory, own_addresses=OWN))
	assert plan.contacts == ["Carl"] and plan.customers == ["Acme"] and len(site.calls) == calls
	assert directory.variant_of("carll@acme.com") == "carl@acme.com"  # learnt addresses count for variants
