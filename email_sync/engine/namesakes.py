"""A second address of a person the site already knows.

Mail from an unknown address at a Customer's domain makes a new Contact of that Customer. When the sender's
display name is the name of a Contact the same Customer already has ("Lee Smith" writing from her phone's
address), a second Contact would be a look-alike in every picker. The setting says what happens instead:
add the address to that Contact, ask in Needs Review, or create the new Contact anyway.

Names are compared in a bounded, normalised form: case, accents, punctuation and spacing do not count, and
"Smith, Lee" is "Lee Smith". A name of one word ("Lee", "Support") or one that is an address is no person's
name, and a name is only ever compared with the Contacts of the Customer the address belongs to: two
Customers' Contacts are never merged on a name alone.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field

from email_sync.engine.model import AddedAddress, NewContact

ADD = "Add to the existing Contact"
ASK = "Ask in Needs Review"
CREATE = "Create a new Contact"
ACTIONS = (ADD, ASK, CREATE)
RULE = "namesake"  # the decision rule of an email waiting for that choice: "namesake:<address>"
MAX_NAME = 200  # characters of a display name looked at; longer ones are cut first


def normalise_name(name: str) -> str:
	"""Lower case, no accents, no punctuation, single spaces; "Last, First" turned round. Linear in MAX_NAME."""
	text = (name or "")[:MAX_NAME]
	if text.count(",") == 1:
		last, first = text.split(",")
		text = f"{first} {last}"
	text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c)).casefold()
	return " ".join("".join(c if c.isalnum() else " " for c in text).split())


def person_name(name: str) -> str:
	"""The normalised name when it can be a person's (two words or more, not an address), else ""."""
	if "@" in (name or "")[:MAX_NAME]:
		return ""
	normalised = normalise_name(name)
	return normalised if " " in normalised else ""


def rule_for(email: str) -> str:
	return f"{RULE}:{email}"


def address_of(rule: str) -> str:
	"""The address a namesake review is about, from its decision rule; "" for any other rule."""
	prefix, _, email = (rule or "").partition(":")
	return email if prefix == RULE and "@" in email else ""


@dataclass
class Sorted:
	"""The Contacts a message would create, sorted out by what the site already knows of their names."""

	create: list[NewContact] = field(default_factory=list)
	add: list[AddedAddress] = field(default_factory=list)
	ask: list[tuple[NewContact, list[str]]] = field(default_factory=list)  # with the Contacts of that name

	def reason(self) -> str:
		return " ".join(
			f"{a.email} ({a.name}) is a second address of Contact {a.contact} of Customer {a.customer}: added to it."
			for a in self.add
		)

	def review_reason(self) -> str:
		new, contacts = self.ask[0]
		who = " or ".join(contacts)
		return (
			f"{new.email} ({new.name}) is unknown, but Customer {new.customer} has a Contact of that name ({who}): "
			f"add the address to {'it' if len(contacts) == 1 else 'one of them'}, or assign the email otherwise."
		)


def sort_out(new_contacts: Iterable[NewContact], namesakes_of, action: str) -> Sorted:
	"""`namesakes_of(customer, display name)` lists the Contacts of that Customer with that person's name.
	Several of them make the choice a person's, whatever the setting."""
	result = Sorted()
	for new in new_contacts:
		contacts = namesakes_of(new.customer, new.name) if action in (ADD, ASK) else []
		if not contacts:
			result.create.append(new)
		elif action == ADD and len(contacts) == 1:
			result.add.append(AddedAddress(new.email, new.name, new.customer, contacts[0]))
		else:
			result.ask.append((new, contacts))
	return result

