"""Who is who: the known addresses of Contacts, their Customers, system Users and internal domains.

A Directory holds only what it was given or has looked up: built whole from rows (tests, small tools), or
backed by a Source that it asks, one batch at a time, about exactly the addresses and domains the batch
names (the Frappe side answers with indexed queries). So a run costs the same per message whether the site
has a thousand Contacts or a million, and a run with no mail asks nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Protocol

from email_sync.engine.addresses import FREE_MAIL_DOMAINS, canonical, within_one_edit
from email_sync.engine.model import Address
from email_sync.engine.namesakes import person_name

MIN_TYPO_LOCAL = 4  # shorter local parts are too often different people to guess typos


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
class Rows:
	"""What the site knows about some addresses, as the database returns it."""

	contact_emails: Iterable[tuple[str, str]] = ()  # (contact, email)
	contact_customers: Iterable[tuple[str, str]] = ()  # (contact, customer)
	user_emails: Iterable[str] = ()
	customer_domains: Iterable[tuple[str, str]] = ()  # (customer, domain)
	supplier_emails: Iterable[str] = ()  # addresses of Supplier Contacts
	contact_names: Iterable[tuple[str, str]] = ()  # (contact, full name)


class Source(Protocol):
	"""Where a Directory looks up what it has not seen yet."""

	def exact(self, emails: list[str], domains: list[str]) -> Rows:
		"""Contacts (with their Customers and whether they are a Supplier's) and system Users with exactly these
		addresses, and the Customers claiming exactly these domains."""

	def near(self, canonicals: list[str], domains: list[str]) -> Rows:
		"""Contacts (with their Customers) having an address of one of these canonical forms, or any address
		at one of these domains: the candidates for near variants."""

	def namesakes(self, customers: list[str]) -> Rows:
		"""The Contacts of these Customers with their names (contact_names and contact_customers), at most a
		bounded number each: looked at only when a message would create a Contact of one of them."""


@dataclass
class Directory:
	contacts_by_email: dict[str, list[str]] = field(default_factory=dict)
	customers_by_contact: dict[str, list[str]] = field(default_factory=dict)
	user_emails: set[str] = field(default_factory=set)
	internal_domains: set[str] = field(default_factory=set)
	customers_by_domain: dict[str, list[str]] = field(default_factory=dict)
	supplier_emails: set[str] = field(default_factory=set)  # addresses of Supplier Contacts
	contact_names: dict[str, str] = field(default_factory=dict)  # contact -> its person_name(), if it has one
	free_mail_domains: frozenset[str] = FREE_MAIL_DOMAINS
	source: Source | None = field(default=None, repr=False)
	# What has been asked of the source already, found or not:
	_asked: set[str] = field(default_factory=set, repr=False)
	_asked_domains: set[str] = field(default_factory=set, repr=False)
	_asked_canonicals: set[str] = field(default_factory=set, repr=False)
	_asked_typo_domains: set[str] = field(default_factory=set, repr=False)
	_asked_namesakes: set[str] = field(default_factory=set, repr=False)  # Customers whose Contacts' names are in
	_by_canonical: dict[str, str] | None = field(default=None, repr=False)
	_locals: dict[tuple[str, int], list[str]] | None = field(default=None, repr=False)

	@classmethod
	def build(
		cls,
		contact_emails: Iterable[tuple[str, str]] = (),
		contact_customers: Iterable[tuple[str, str]] = (),
		user_emails: Iterable[str] = (),
		internal_domains: Iterable[str] = (),
		customer_domains: Iterable[tuple[str, str]] = (),
		extra_free_mail_domains: Iterable[str] = (),
		supplier_emails: Iterable[str] = (),
		source: Source | None = None,
		contact_names: Iterable[tuple[str, str]] = (),
	) -> Directory:
		"""From (contact, email), (contact, customer) and (customer, domain) pairs, as the database returns them.
		With a `source`, the directory also asks it about every address it meets and has not seen."""
		directory = cls(
			internal_domains={d.strip().lower().lstrip("@") for d in internal_domains if d and d.strip()},
			free_mail_domains=FREE_MAIL_DOMAINS | {d.strip().lower() for d in extra_free_mail_domains if d},
			source=source,
		)
		directory.add(Rows(contact_emails, contact_customers, user_emails, customer_domains, supplier_emails, contact_names))
		return directory

	def add(self, rows: Rows) -> None:
		self.user_emails.update(e.strip().lower() for e in rows.user_emails if e)
		self.supplier_emails.update(e.strip().lower() for e in rows.supplier_emails if e)
		for customer, domain in rows.customer_domains:
			domain = (domain or "").strip().lower().lstrip("@")
			if domain and domain not in self.free_mail_domains:
				_add_unique(self.customers_by_domain.setdefault(domain, []), customer)
		for contact, email in rows.contact_emails:
			if email:
				self._add_email(email.strip().lower(), contact)
		for contact, customer in rows.contact_customers:
			_add_unique(self.customers_by_contact.setdefault(contact, []), customer)
		for contact, name in rows.contact_names:
			self.contact_names[contact] = person_name(name or "")

	def look_up(self, addresses: Iterable[Address], exclude: set[str] = frozenset()) -> None:
		"""Ask the source, in one round, about every address here not seen yet (but those in `exclude`); then,
		for those it does not know, about the near variants they could be. Matching calls this itself;
		calling it first with a whole batch's addresses makes it one round per batch, not one per message."""
		if self.source is None:
			return
		emails = sorted({a.email for a in addresses if a.email} - self._asked - exclude)
		if not emails:
			return
		domains = sorted({_domain(e) for e in emails} - self._asked_domains)
		self._asked.update(emails)
		self._asked_domains.update(domains)
		self.add(self.source.exact(emails, domains))
		self._look_up_near([e for e in emails if e not in self.contacts_by_email and e not in self.user_emails])

	def _look_up_near(self, emails: list[str]) -> None:
		if self.source is None:
			return
		canonicals = {canonical(e) for e in emails} - self._asked_canonicals
		domains = {_domain(e) for e in emails if self._may_be_typo(e)} - self._asked_typo_domains
		if not canonicals and not domains:
			return
		self._asked_canonicals.update(canonicals)
		self._asked_typo_domains.update(domains)
		self.add(self.source.near(sorted(canonicals), sorted(domains)))

	def learn(self, email: str, contact: str, customers: Iterable[str]) -> None:
		"""Add a Contact created during a run, so the run's later messages match it exactly."""
		email = email.lower()
		self._asked.add(email)
		self._add_email(email, contact)
		linked = self.customers_by_contact.setdefault(contact, [])
		linked.extend(c for c in customers if c not in linked)

	def look_up_namesakes(self, customers: Iterable[str]) -> None:
		"""Ask the source, in one round, for the names of these Customers' Contacts (not asked before)."""
		customers = sorted(set(customers) - self._asked_namesakes)
		ask = getattr(self.source, "namesakes", None)  # a source that knows no names: no namesakes either
		if ask is None or not customers:
			return
		self._asked_namesakes.update(customers)
		self.add(ask(customers))

	def namesakes(self, customer: str, name: str) -> list[str]:
		"""The Contacts of `customer` with this person's name (see namesakes.py); never another Customer's."""
		wanted = person_name(name)
		if not wanted:
			return []
		self.look_up_namesakes([customer])
		return sorted(
			contact
			for contact, known in self.contact_names.items()
			if known == wanted and customer in self.customers_by_contact.get(contact, ())
		)

	def is_internal(self, address: Address) -> bool:
		domain = address.domain
		return any(domain == d or domain.endswith("." + d) for d in self.internal_domains)

	def is_supplier(self, email: str) -> bool:
		self.look_up([Address(email)])
		return email in self.supplier_emails

	def match(self, addresses: Iterable[Address], exclude: set[str] = frozenset()) -> Match:
		"""Every Contact with any of these addresses, and their Customers. Users' addresses never match."""
		addresses = list(addresses)
		self.look_up(addresses, exclude)
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
				_add_unique(result.contacts, contact)
				for customer in self.customers_by_contact.get(contact, ()):
					_add_unique(result.customers, customer)
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
		self._look_up_near([email])
		if self._by_canonical is None:
			self._index_variants()
		known = self._by_canonical.get(canonical(email))
		if known and known != email:
			return known
		if not self._may_be_typo(email):
			return ""
		local, _, domain = email.rpartition("@")
		candidates = [
			f"{other}@{domain}"
			for size in (len(local) - 1, len(local), len(local) + 1)
			for other in self._locals.get((domain, size), ())
			if within_one_edit(local, other)
		]
		return candidates[0] if len(candidates) == 1 else ""

	def _may_be_typo(self, email: str) -> bool:
		local, _, domain = email.rpartition("@")
		return domain not in self.free_mail_domains and len(local) >= MIN_TYPO_LOCAL

	def _add_email(self, email: str, contact: str) -> None:
		names = self.contacts_by_email.get(email)
		if names is None:
			names = self.contacts_by_email[email] = []
			if self._by_canonical is not None:
				self._index_email(email)
		_add_unique(names, contact)

	def _index_variants(self) -> None:
		# Built on first use: a run that only sees exact matches never pays for it; kept up to date after.
		self._by_canonical, self._locals = {}, {}
		for email in self.contacts_by_email:
			self._index_email(email)

	def _index_email(self, email: str) -> None:
		self._by_canonical.setdefault(canonical(email), email)
		local, _, domain = email.rpartition("@")
		self._locals.setdefault((domain, len(local)), []).append(local)


def _domain(email: str) -> str:
	return email.rpartition("@")[2]


def _add_unique(items: list[str], item: str) -> None:
	if item not in items:
		items.append(item)
