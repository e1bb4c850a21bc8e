"""Turn a parsed message into a Plan: file it, skip it, or hold it for review, always with the reason.

The rules run in this order; the first that decides wins:
  1. unreadable        the bytes are not a message               -> Error
  2. blacklist         sender or any recipient is blacklisted    -> Skipped
  3. internal          sender and every recipient are internal   -> Skipped
  4. auto-submitted    auto-replies, bulk mail, bounces          -> Skipped (when the setting is on)
  5. vendor            the sender is a Supplier's Contact (when the admin excludes vendor mail) -> Skipped
  6. exclude filters   any enabled exclude filter matches        -> Skipped
  7. include filters   some exist and none matches               -> Skipped
  8. matching          every Contact with any of its addresses is linked, with their Customers; an unknown
                       address at a domain that exactly one Customer claims becomes a new Contact of it
                                                                 -> Filed
                       (Skipped instead when only mail with Customers is filed and none is linked;
                       Needs Review when an address is shared by Contacts of two or more Customers, the
                       setting says so, and no other address names one of them: see shared.py)
                       A new address named like a Contact of that Customer goes onto that Contact, or
                       waits in Needs Review (90%), or becomes a Contact all the same, per setting
                       (namesakes.py)
  9. near variant      an address one letter or a +tag away from a known one (80%) -> Needs Review
                       (or Filed at 80% when the admin accepts variants); no Contact is created for it
 10. domain conflict   an unknown address at a domain two Customers claim        -> Needs Review
 11. unknown           nobody known                               -> Needs Review (or Skipped, per setting)
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace

from email_sync.engine.directory import Directory
from email_sync.engine.model import (
	ERROR,
	FILED,
	INBOUND,
	NEEDS_REVIEW,
	OUTBOUND,
	SKIPPED,
	Address,
	Message,
	NewContact,
	Plan,
)
from email_sync.engine import namesakes
from email_sync.engine.rules import RuleSet
from email_sync.engine.shared import FILE_ON_ALL, RULE as SHARED_RULE, settle


@dataclass
class Context:
	"""What the engine knows about the account and the site while deciding one run's messages."""

	directory: Directory
	rules: RuleSet = field(default_factory=lambda: RuleSet([], []))
	own_addresses: set[str] = field(default_factory=set)  # the account's address and aliases
	unmatched_action: str = NEEDS_REVIEW  # or SKIPPED
	skip_auto_submitted: bool = True
	create_contacts: bool = True  # from customer domains
	accept_variants: bool = False
	exclude_suppliers: bool = False
	only_customers: bool = False  # file only mail that reaches a Customer
	shared_addresses: str = FILE_ON_ALL  # or shared.REVIEW: mail of an address two Customers share waits
	namesake_action: str = namesakes.ASK  # a new address named like a Contact of its Customer (namesakes.py)


def direction_of(message: Message, own_addresses: set[str], from_sent_folder: bool = False) -> str:
	if from_sent_folder or (message.sender and message.sender.email in own_addresses):
		return OUTBOUND
	return INBOUND


def plan_message(message: Message, context: Context, from_sent_folder: bool = False) -> Plan:
	direction = direction_of(message, context.own_addresses, from_sent_folder)

	def plan(status: str, reason: str, rule: str) -> Plan:
		return Plan(message, status, reason, rule, direction)

	if message.unreadable:
		return plan(ERROR, message.unreadable, "unreadable")

	hit = context.rules.blacklisted(message)
	if hit:
		entry, address = hit
		why = f" ({entry.reason})" if entry.reason else ""
		return plan(SKIPPED, f"{address.email} is blacklisted by {entry.entry}{why}.", f"blacklist:{entry.entry}")

	participants = [a for a in message.participants if a.email]
	if participants and all(
		context.directory.is_internal(a) or a.email in context.own_addresses for a in participants
	):
		return plan(SKIPPED, "Internal mail: the sender and every recipient are in your company.", "internal")

	if context.skip_auto_submitted and message.auto.is_auto:
		return plan(SKIPPED, f"Sent automatically ({message.auto.kind}): {message.auto.reason}.", "auto-submitted")

	if context.exclude_suppliers and message.sender and context.directory.is_supplier(message.sender.email):
		return plan(SKIPPED, f"Vendor mail: {message.sender.email} is a Supplier's Contact.", "vendor")

	excluded = context.rules.excluded_by(message)
	if excluded:
		return plan(
			SKIPPED,
			f"Excluded by filter {excluded.name}: {excluded.field} {excluded.operator} {excluded.value!r}.",
			f"filter:{excluded.name}",
		)
	included, include_hit = context.rules.included(message)
	if not included:
		return plan(SKIPPED, "No include filter matches this email.", "include-filters")

	match = context.directory.match(participants, exclude=context.own_addresses)
	new_contacts = _new_contacts(match, context) if context.create_contacts else []
	looks = namesakes.sort_out(new_contacts, context.directory.namesakes, context.namesake_action)
	if looks.ask:
		new, contacts = looks.ask[0]
		# The candidates are kept on the plan (not linked: only filed mail is) for the reviewer.
		result = plan(NEEDS_REVIEW, looks.review_reason(), namesakes.rule_for(new.email))
		result.contacts, result.customers, result.confidence = contacts, [new.customer], 90
		return result
	new_contacts = looks.create
	if context.only_customers and match.contacts and not match.customers and not new_contacts:
		return plan(SKIPPED, "Only mail with Customers is filed, and no Contact here belongs to one.", "only-customers")
	if match.contacts or new_contacts or looks.add:
		sharing = settle(match, context.directory.customers_by_contact, [*new_contacts, *looks.add])
		note = ""
		if sharing:
			note = " " + sharing.reason(context.shared_addresses)
			if context.shared_addresses != FILE_ON_ALL:
				if sharing.needs_review:
					# The candidates are kept on the plan (not linked: only filed mail is) for the reviewer.
					result = plan(NEEDS_REVIEW, note.strip(), SHARED_RULE)
					result.contacts, result.customers, result.confidence = match.contacts, match.customers, 100
					return result
				match = _narrowed(match, sharing)
		reason = " ".join(filter(None, [_matched_reason(match, new_contacts, include_hit), looks.reason()]))
		result = plan(FILED, reason + note, "matched" if match.contacts else "domain")
		result.contacts = list(dict.fromkeys([*match.contacts, *(a.contact for a in looks.add)]))
		result.customers = list(dict.fromkeys([*match.customers, *(c.customer for c in [*new_contacts, *looks.add])]))
		result.new_contacts = new_contacts
		result.added_addresses = looks.add
		result.confidence = 100
		return result

	if match.variants:
		address, known = next(iter(match.variants.items()))
		contacts = context.directory.contacts_by_email[known]
		reason = f"{address} looks like {known} ({', '.join(contacts)}) but is not the same address."
		if not context.accept_variants:
			result = plan(NEEDS_REVIEW, reason + " Confirm it to file the email.", "variant")
			result.confidence = 80
			return result
		exact = context.directory.match([Address(known)], exclude=context.own_addresses)
		result = plan(FILED, reason + " Near variants are accepted.", "variant")
		result.contacts, result.customers, result.confidence = exact.contacts, exact.customers, 80
		return result

	conflicts = {a: c for a, c in match.domain_customers.items() if len(c) > 1}
	if conflicts:
		address, customers = next(iter(conflicts.items()))
		return plan(
			NEEDS_REVIEW,
			f"The domain of {address} is claimed by several Customers ({', '.join(customers)}): choose one.",
			"domain-conflict",
		)

	addresses = ", ".join(a.email for a in participants if a.email not in context.own_addresses) or "none"
	reason = f"No Contact has any of its addresses ({addresses})."
	if match.users_skipped:
		reason += f" Addresses of system users are never matched: {', '.join(match.users_skipped)}."
	status = NEEDS_REVIEW if context.unmatched_action == NEEDS_REVIEW else SKIPPED
	return plan(status, reason, "unmatched")


def _narrowed(match, sharing):
	"""The match, on the Contacts and Customers the email's other addresses named only."""
	matched = {e: [c for c in cs if c in sharing.contacts] for e, cs in match.matched.items()}
	return replace(
		match,
		contacts=sharing.contacts,
		customers=[c for c in match.customers if c in sharing.customers],
		matched={e: cs for e, cs in matched.items() if cs},
	)


def _new_contacts(match, context: Context) -> list[NewContact]:
	created = []
	for address in match.unknown:
		customers = match.domain_customers.get(address.email, [])
		# A near variant of a known address is more likely a typo than a new person.
		if len(customers) == 1 and address.email not in match.variants:
			created.append(NewContact(address.email, address.name, customers[0]))
	return created


def _customers_gaining_people(items, context: Context) -> set[str]:
	"""The Customers the batch would give a new Contact with a person's name: their Contacts' names are
	looked up at once (the engine compares them, namesakes.py)."""
	customers = set()
	for message, _ in items:
		for address in message.participants:
			if address.email and address.email not in context.own_addresses and namesakes.person_name(address.name):
				if address.email not in context.directory.contacts_by_email:
					found = context.directory.customers_by_domain.get(address.domain, [])
					if len(found) == 1:
						customers.add(found[0])
	return customers


def _matched_reason(match, new_contacts: list[NewContact], include_hit) -> str:
	reasons = []
	if match.matched:
		pairs = "; ".join(f"{email} is {', '.join(contacts)}" for email, contacts in match.matched.items())
		reasons.append(f"Exact address match: {pairs}.")
	if match.customers:
		reasons.append(f"Customer: {', '.join(match.customers)}.")
	for c in new_contacts:
		reasons.append(f"New Contact for {c.email}: its domain belongs to Customer {c.customer}.")
	reason = " ".join(reasons)
	if include_hit:
		reason += f" Included by filter {include_hit.name}."
	return reason


def plan_messages(items: Iterable[tuple[Message, bool]], context: Context) -> list[Plan]:
	"""Plans for (message, from_sent_folder) pairs; a failure in one message never stops the others."""
	items = list(items)
	# Everyone the batch names, looked up at once: a few queries per batch, not per message.
	context.directory.look_up((a for message, _ in items for a in message.participants), context.own_addresses)
	if context.create_contacts and context.namesake_action != namesakes.CREATE:
		context.directory.look_up_namesakes(_customers_gaining_people(items, context))
	plans = []
	for message, from_sent in items:
		try:
			plans.append(plan_message(message, context, from_sent))
		except Exception as e:  # a bug in a rule must cost one message, visibly, not the batch
			plans.append(Plan(message, ERROR, f"The engine failed on this message: {e!r}", "engine-error"))
	return plans
