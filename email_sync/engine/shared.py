"""Addresses shared by Customers: one address whose Contacts belong to two or more Customers (a family
account, a consultant working for two clients, a parent company's buyer).

Filing its mail on every Customer is the default. With the setting *Needs Review*, such mail waits for a
person to choose, with every candidate named, unless the email's other addresses already say which
Customer it is about (the consultant writing to Acme's buyer is writing about Acme).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from email_sync.engine.directory import Match
from email_sync.engine.model import NewContact

FILE_ON_ALL = "File on all"
REVIEW = "Needs Review"
RULE = "shared-address"


@dataclass
class Sharing:
	"""What the shared addresses of one email come to."""

	shared: dict[str, list[str]]  # address -> the Customers its Contacts belong to (two or more)
	contacts: list[str] = field(default_factory=list)  # where to file it when settled; empty: ask a person
	customers: list[str] = field(default_factory=list)
	settled_by: list[str] = field(default_factory=list)  # the other addresses that named the Customers

	@property
	def needs_review(self) -> bool:
		return not self.customers

	def reason(self, action: str) -> str:
		"""One sentence a user can read: who shares which address, and what was done about it."""
		shared = "; ".join(f"{email} is shared by Contacts of {and_list(c)}" for email, c in self.shared.items())
		if action == FILE_ON_ALL:
			return f"{shared}: filed on all of them."
		if self.needs_review:
			return f"{shared}: choose where to file it."
		return f"{shared}: filed on {and_list(self.customers)}, named by {and_list(self.settled_by)}."


def shared_addresses(match: Match, customers_by_contact: dict[str, list[str]]) -> dict[str, list[str]]:
	"""The matched addresses whose Contacts belong to two or more Customers, with those Customers."""
	shared = {}
	for email, contacts in match.matched.items():
		customers = _unique(c for contact in contacts for c in customers_by_contact.get(contact, ()))
		if len(customers) > 1:
			shared[email] = sorted(customers)  # the same sentence whatever order the site answered in
	return shared


def settle(
	match: Match, customers_by_contact: dict[str, list[str]], new_contacts: list[NewContact] = ()
) -> Sharing | None:
	"""None when no address is shared. Otherwise the Customers the email's unshared addresses (and the new
	Contacts made at customer domains) name: when they pick one or more Customers of every shared address,
	the email is filed on those alone, with the Contacts that belong to them; when they do not, a person
	chooses."""
	shared = shared_addresses(match, customers_by_contact)
	if not shared:
		return None
	sharing = Sharing(shared)
	named: list[str] = []
	settled_by: list[str] = []
	for email, contacts in match.matched.items():
		customers = [c for contact in contacts for c in customers_by_contact.get(contact, ())]
		if email not in shared and customers:
			settled_by.append(email)
			named += customers
	for new in new_contacts:  # an unknown colleague at a customer's own domain names that Customer too
		settled_by.append(new.email)
		named.append(new.customer)
	named = _unique(named)
	if not named or not all(set(customers) & set(named) for customers in shared.values()):
		return sharing  # nothing else here says which Customer: a person chooses
	sharing.customers = [c for c in match.customers if c in named] + [c for c in named if c not in match.customers]
	sharing.contacts = [
		contact
		for contact in match.contacts
		if not customers_by_contact.get(contact) or set(customers_by_contact[contact]) & set(named)
	]
	sharing.settled_by = settled_by
	return sharing


def and_list(items: list[str]) -> str:
	"""'Acme', 'Acme and Initech', 'Acme, Initech and Umbrella'."""
	items = list(items)
	if len(items) < 2:
		return "".join(items)
	return f"{', '.join(items[:-1])} and {items[-1]}"


def _unique(items) -> list[str]:
	return list(dict.fromkeys(items))
