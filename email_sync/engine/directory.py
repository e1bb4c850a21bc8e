"""Who is who: the known addresses of Contacts, their Customers, system Users and internal domains.

Built once per sync run (by the Frappe side, in a few bulk queries) and consulted in memory, so matching
costs no query per address however many Contacts there are.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from email_sync.engine.addresses import FREE_MAIL_DOMAINS, canonical, within_one_edit
from email_sync.engine.model import Address


@dataclass
class Match:
	contacts: list[str] = field(default_factory=list)
	customers: list[str] = field(default_factory=list)
	matched: dict[str, list[str]] = field(default_factory=dict)  # address -> contacts
	users_skipped: list[str] = field(default_factory=list)  # addresses that belong to system users
	# Unknown addresses, and what could still be said of them:
	variants: dict[str, str] = field(default_factory=dict)  # address -> the known address it nearly is
	domain_customers: dict[str, list[str]] = field(default_factory=dict)  # address -> Customers of its domain
	unknown: list[Address] = field(default_factory=list)


@dataclass
class Directory:
	contacts_by_email: dict[str, list[str]] = field(default_factory=dict)
	customers_by_contact: dict[str, list[str]] = field(default_factory=dict)
	user_emails: set[str] = field(default_factory=set)
	internal_domains: set[str] = field(default_factory=set)
	customers_by_domain: dict[str, list[str]] = field(default_factory=dict)
	supplier_emails: set[str] = field(default_factory=set)  # addresses of Supplier Contacts
	free_mail_domains: frozenset[str] = FREE_MAIL_DOMAINS
	_by_canonical: dict[str, str] | None = field(default=None, repr=False)
	_locals: dict[tuple[str, int], list[str]] | None = field(default=None, repr=False)

	@classmethod
	def build(
		cls,
		contact_emails: Iterable[tuple[str, str]],
		contact_customers: Iterable[tuple[str, str]] = (),
		user_emails: Iterable[str] = (),
		internal_domains: Iterable[str] = (),
		customer_domains: Iterable[tuple[str, str]] = (),
		extra_free_mail_domains: Iterable[str] = (),
		supplier_emails: Iterable[str] = (),
	) -> Directory:
		"""From (contact, email), (contact, customer) and (customer, domain) pairs, as the database returns them."""
		directory = cls(
			user_emails={e.strip().lower() for e in user_emails if e},
			internal_domains={d.strip().lower().lstrip("@") for d in internal_domains if d and d.strip()},
			free_mail_domains=FREE_MAIL_DOMAINS | {d.strip().lower() for d in extra_free_mail_domains if d},
			supplier_emails={e.strip().lower() for e in supplier_emails if e},
		)
		for customer, domain in customer_domains:
			domain = (domain or "").strip().lower().lstrip("@")
			if domain and domain not in directory.free_mail_domains:
				customers = directory.customers_by_domain.setdefault(domain, [])
				if customer not in customers:
					customers.append(customer)
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

	def learn(self, email: str, contact: str, customers: Iterable[str]) -> None:
		"""Add a Contact created during a run, so the run's later messages match it exactly."""
		names = self.contacts_by_email.setdefault(email.lower(), [])
		if contact not in names:
			names.append(contact)
		linked = self.customers_by_contact.setdefault(contact, [])
		linked.extend(c for c in customers if c not in linked)
		self._by_canonical = self._locals = None

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
				self._explain_unknown(address, result)
				continue
			result.matched[email] = contacts
			for contact in contacts:
				if contact not in result.contacts:
					result.contacts.append(contact)
				for customer in self.customers_by_contact.get(contact, ()):
					if customer not in result.customers:
						result.customers.append(customer)
		return result

	def _explain_unknown(self, address: Address, result: Match) -> None:
		result.unknown.append(address)
		variant = self.variant_of(address.email)
		if variant:
			result.variants[address.email] = variant
		customers = self.customers_by_domain.get(address.domain)
		if customers and not self.is_internal(address):
			result.domain_customers[address.email] = customers

	def variant_of(self, email: str) -> str:
		"""A known address this one is nearly: same mailbox by provider rules, or a one-letter typo at the
		same (non-free-mail) domain. "" when there is none or more than one candidate."""
		if self._by_canonical is None:
			self._index_variants()
		known = self._by_canonical.get(canonical(email))
		if known and known != email:
			return known
		local, _, domain = email.rpartition("@")
		if domain in self.free_mail_domains or len(local) < 4:
			return ""  # short or free-mail local parts are too often different people
		candidates = [
			f"{other}@{domain}"
			for size in (len(local) - 1, len(local), len(local) + 1)
			for other in self._locals.get((domain, size), ())
			if within_one_edit(local, other)
		]
		return candidates[0] if len(candidates) == 1 else ""

	def _index_variants(self) -> None:
		# Built on first use: a run that only sees exact matches never pays for it.
		self._by_canonical, self._locals = {}, {}
		for email in self.contacts_by_email:
			self._by_canonical.setdefault(canonical(email), email)
			local, _, domain = email.rpartition("@")
			self._locals.setdefault((domain, len(local)), []).append(local)
