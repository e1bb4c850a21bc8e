"""Who is who: the known addresses of Contacts, their Customers, system Users and internal domains.

Built once per sync run (by the Frappe side, in a few bulk queries) and consulted in memory, so matching
costs no query per address however many Contacts there are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from email_sync.engine.model import Address


@dataclass
class Match:
	contacts: list[str] = field(default_factory=list)
	customers: list[str] = field(default_factory=list)
	matched: dict[str, list[str]] = field(default_factory=dict)  # address -> contacts
	users_skipped: list[str] = field(default_factory=list)  # addresses that belong to system users


@dataclass
class Directory:
	contacts_by_email: dict[str, list[str]] = field(default_factory=dict)
	customers_by_contact: dict[str, list[str]] = field(default_factory=dict)
	user_emails: set[str] = field(default_factory=set)
	internal_domains: set[str] = field(default_factory=set)

	@classmethod
	def build(
		cls,
		contact_emails: Iterable[tuple[str, str]],
		contact_customers: Iterable[tuple[str, str]] = (),
		user_emails: Iterable[str] = (),
		internal_domains: Iterable[str] = (),
	) -> Directory:
		"""From (contact, email) and (contact, customer) pairs, as the database returns them."""
		directory = cls(
			user_emails={e.strip().lower() for e in user_emails if e},
			internal_domains={d.strip().lower().lstrip("@") for d in internal_domains if d and d.strip()},
		)
		for contact, email in contact_emails:
			if not email:
				continue
			names = directory.contacts_by_email.setdefault(email.strip().lower(), [])
			if contact not in names:
				names.append(contact)
		for contact, customer in contact_customers:
			customers = directory.customers_by_contact.setdefault(contact, [])
			if customer not in customers:
				customers.append(customer)
		return directory

	def is_internal(self, address: Address) -> bool:
		domain = address.domain
		return any(domain == d or domain.endswith("." + d) for d in self.internal_domains)

	def match(self, addresses: Iterable[Address], exclude: set[str] = frozenset()) -> Match:
		"""Every Contact with any of these addresses, and their Customers. Users' addresses never match."""
		result = Match()
		for address in addresses:
			email = address.email
			if not email or email in exclude or email in result.matched:
				continue
			if email in self.user_emails:
				result.users_skipped.append(email)
				continue
			contacts = self.contacts_by_email.get(email)
			if not contacts:
				continue
			result.matched[email] = contacts
			for contact in contacts:
				if contact not in result.contacts:
					result.contacts.append(contact)
				for customer in self.customers_by_contact.get(contact, ()):
					if customer not in result.customers:
						result.customers.append(customer)
		return result
