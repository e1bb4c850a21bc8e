"""An address that Contacts of two or more Customers share: filed on all of them, or held for a person to
choose, unless the email's other addresses say which Customer it is about."""

from email_sync.engine import FILED, NEEDS_REVIEW, Context, Directory, parse_message, plan_message
from email_sync.engine.shared import FILE_ON_ALL, REVIEW, and_list

# The Smiths share one address across two family accounts (a Contact each); Casey consults for Acme and
# Initech (one Contact linked to both); Bob buys for Acme, Dana for Initech.
DIRECTORY = Directory.build(
	contact_emails=[
		("Pat Smith (Senior)", "smiths@home.example"),
		("Pat Smith (Junior)", "smiths@home.example"),
		("Casey", "casey@consult.example"),
		("Bob", "bob@acme.example"),
		("Dana", "dana@initech.example"),
		("Loner", "loner@nowhere.example"),
	],
	contact_customers=[
		("Pat Smith (Senior)", "Smith Senior"),
		("Pat Smith (Junior)", "Smith Junior"),
		("Casey", "Acme"),
		("Casey", "Initech"),
		("Bob", "Acme"),
		("Dana", "Initech"),
	],
	customer_domains=[("Acme", "acme.example")],
	internal_domains=["ourco.example"],
)


def decide(sender, to="sales@ourco.example", cc="", action=REVIEW):
	raw = f"From: {sender}\r\nTo: {to}\r\n" + (f"Cc: {cc}\r\n" if cc else "") + "Subject: s\r\n\r\nhi"
	context = Context(DIRECTORY, own_addresses={"sales@ourco.example"}, shared_addresses=action)
	return plan_message(parse_message(raw.encode()), context)


def test_file_on_all_files_on_every_customer_and_says_the_address_is_shared():
	plan = decide("casey@consult.example", action=FILE_ON_ALL)
	assert (plan.status, plan.rule) == (FILED, "matched")
	assert (plan.contacts, plan.customers) == (["Casey"], ["Acme", "Initech"])
	assert "casey@consult.example is shared by Contacts of Acme and Initech: filed on all of them." in plan.reason


def test_needs_review_holds_a_family_address_with_both_candidates():
	plan = decide("smiths@home.example")
	assert (plan.status, plan.rule, plan.confidence) == (NEEDS_REVIEW, "shared-address", 100)
	assert plan.contacts == ["Pat Smith (Senior)", "Pat Smith (Junior)"]
	assert plan.customers == ["Smith Senior", "Smith Junior"]
	assert plan.reason == (
		"smiths@home.example is shared by Contacts of Smith Junior and Smith Senior: choose where to file it."
	)
	assert plan.new_contacts == []


def test_one_contact_of_two_customers_is_shared_too():
	plan = decide("casey@consult.example")
	assert (plan.status, plan.contacts, plan.customers) == (NEEDS_REVIEW, ["Casey"], ["Acme", "Initech"])
	assert "shared by Contacts of Acme and Initech" in plan.reason


def test_another_address_of_one_candidate_customer_settles_it():
	plan = decide("casey@consult.example", cc="bob@acme.example")
	assert (plan.status, plan.rule) == (FILED, "matched")
	assert (plan.contacts, plan.customers) == (["Casey", "Bob"], ["Acme"])
	assert "filed on Acme, named by bob@acme.example" in plan.reason
	assert "Initech" not in plan.reason.split(":", 1)[0]  # the exact-match part names Acme only


def test_two_shared_addresses_that_name_no_common_customer_are_both_explained():
	plan = decide("smiths@home.example", cc="casey@consult.example")  # Casey names neither Smith
	assert plan.status == NEEDS_REVIEW
	assert plan.customers == ["Smith Senior", "Smith Junior", "Acme", "Initech"]
	assert plan.reason == (
		"smiths@home.example is shared by Contacts of Smith Junior and Smith Senior; "
		"casey@consult.example is shared by Contacts of Acme and Initech: choose where to file it."
	)


def test_a_new_colleague_at_a_customer_domain_names_that_customer():
	plan = decide("casey@consult.example", cc="newbie@acme.example")
	assert (plan.status, plan.customers) == (FILED, ["Acme"])
	assert [c.email for c in plan.new_contacts] == ["newbie@acme.example"]
	assert "named by newbie@acme.example" in plan.reason


def test_other_addresses_naming_none_of_the_candidates_leave_it_to_a_person():
	plan = decide("smiths@home.example", cc="loner@nowhere.example")  # a Contact of no Customer names nobody
	assert plan.status == NEEDS_REVIEW
	assert "Loner" in plan.contacts


def test_outbound_mail_to_the_shared_address_and_a_customer_contact_is_settled_the_same_way():
	plan = decide("sales@ourco.example", to="casey@consult.example, dana@initech.example")
	assert (plan.status, plan.contacts, plan.customers) == (FILED, ["Casey", "Dana"], ["Initech"])


def test_an_address_of_one_customer_is_never_shared():
	plan = decide("bob@acme.example")
	assert (plan.status, plan.customers) == (FILED, ["Acme"])
	assert "shared" not in plan.reason


def test_readable_lists():
	assert [and_list([]), and_list(["Acme"]), and_list(["Acme", "Initech"]), and_list(["A", "B", "C"])] == [
		"", "Acme", "Acme and Initech", "A, B and C"]  # fmt: skip
