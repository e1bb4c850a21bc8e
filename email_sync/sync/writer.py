"""The only place that persists a batch: Synced Emails, Communications, their timeline links, the cursor.

One transaction per batch, committed after the cursor moves, so a crash anywhere leaves either the whole
batch with its cursor or neither. Rows are written in bulk (a handful of queries per batch, not dozens per
message) and named from the message's identity, so writing the same mail again is a no-op:
- a Synced Email is named from (account, identity): one row per message per account;
- a Communication is named from the identity alone: the same mail in two mailboxes is filed once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import frappe
from frappe.utils import now_datetime
from frappe.utils.data import convert_utc_to_system_timezone

from email_sync.engine import ERROR, FILED, NEEDS_REVIEW, OUTBOUND, Plan
from email_sync.engine.sanitize import safe_html_for_storage, text_to_html
from email_sync.providers import FetchedMessage
from email_sync.sync import attachments
from email_sync.sync.namesakes import add_addresses

STANDARD = ("name", "creation", "modified", "modified_by", "owner", "docstatus", "idx")
SYNCED_FIELDS = (
	*STANDARD,
	"account", "status", "direction", "subject", "sender", "sender_name", "email_date", "recipients", "cc",
	"decision_rule", "reason", "confidence", "matched_contacts", "matched_customers", "communication",
	"snippet", "attachment_count", "size", "message_id", "in_reply_to", "message_references", "email_key",
	"folder", "provider_id", "received_at", "parse_defects",
)  # fmt: skip
COMMUNICATION_FIELDS = (
	*STANDARD,
	"subject", "communication_medium", "communication_type", "sent_or_received", "status", "email_status",
	"sender", "sender_full_name", "recipients", "cc", "content", "text_content", "communication_date",
	"message_id", "has_attachment", "seen",
)  # fmt: skip
KEPT = (FILED, NEEDS_REVIEW)  # the statuses whose emails are stored as Communications
LINK_FIELDS = (*STANDARD, "parent", "parenttype", "parentfield", "link_doctype", "link_name", "link_title")


@dataclass
class Item:
	fetched: FetchedMessage
	plan: Plan
	communication: str = ""  # the Communication it is filed as, once written
	existing_communication: str = ""  # the same email, filed already from another mailbox without a Message-ID


def synced_email_name(account: str, key: str) -> str:
	return _digest(f"{account}\x1f{key}")


def communication_name(key: str) -> str:
	return key[:20]


def write_batch(
	account: str,
	items: list[Item],
	cursor: dict | None,
	snippet_length: int = 200,
	then: Callable[[list[Item]], None] | None = None,
) -> Counter:
	"""Persist one batch and its cursor, then commit. Returns counts by status, plus 'already_synced'.

	`then` runs on the newly written items inside the same transaction (Issue routing), before the cursor moves.
	A `cursor` of None leaves the account's provider cursor as it is: mail imported from files, not the mailbox.
	"""
	counts: Counter = Counter()
	fresh = _not_yet_synced(account, items, counts)
	try:
		_insert(account, fresh, snippet_length)
	except Exception:
		# Something in the batch did not fit (a value too long, a database refusal): file what can be
		# filed one message at a time, and record the rest as errors with the reason.
		frappe.db.rollback()
		fresh = _insert_one_by_one(account, fresh, snippet_length)
	if then is not None:
		then(fresh)
	for item in fresh:
		counts[item.plan.status] += 1
	if cursor is not None:
		frappe.db.set_value(
			"Email Sync Account",
			account,
			{"sync_cursor": json.dumps(cursor, sort_keys=True), "last_sync": now_datetime()},
			update_modified=False,
		)
	frappe.db.sql(
		"update `tabEmail Sync Account` set emails_synced = ifnull(emails_synced, 0) + %s where name = %s",
		(counts[FILED], account),
	)
	frappe.db.commit()
	return counts


def _not_yet_synced(account: str, items: list[Item], counts: Counter) -> list[Item]:
	by_name: dict[str, Item] = {}
	for item in items:
		by_name.setdefault(synced_email_name(account, item.plan.message.key), item)
	counts["already_synced"] += len(items) - len(by_name)  # the same mail twice in one batch (two folders)
	if not by_name:
		return []
	existing = set(
		frappe.get_all("Synced Email", filters={"name": ("in", list(by_name))}, pluck="name", order_by=None)
	)
	counts["already_synced"] += len(existing)
	fresh = [item for name, item in by_name.items() if name not in existing]
	return _not_yet_synced_without_id(account, fresh, counts)


def _not_yet_synced_without_id(account: str, items: list[Item], counts: Counter) -> list[Item]:
	"""Mail without a Message-ID is keyed by a hash of its content, and how its text is read may improve
	from one version to the next: such mail is also recognised by sender, date and subject, so an upgrade
	never files it twice (in this account: skipped; from another mailbox: filed onto the same Communication).
	"""
	candidates = [i for i in items if not i.plan.message.message_id and i.plan.message.date and i.plan.message.sender]
	if not candidates:
		return items
	rows = frappe.db.sql(
		"""select account, communication, sender, email_date, subject from `tabSynced Email`
		where ifnull(message_id, '') = '' and sender in %(senders)s and email_date in %(dates)s""",
		{
			"senders": list({_cut(i.plan.message.sender.email, 140) for i in candidates}),
			"dates": list({_local_time(i.plan.message.date) for i in candidates}),
		},
		as_dict=True,
	)
	if not rows:
		return items
	candidate_ids = {id(i) for i in candidates}
	seen: dict[tuple, list] = {}
	for row in rows:
		seen.setdefault((row.sender, row.email_date, row.subject or ""), []).append(row)
	fresh = []
	for item in items:
		message = item.plan.message
		key = (_cut(message.sender.email, 140), _local_time(message.date), message.subject or "")
		same = seen.get(key) if id(item) in candidate_ids else None
		if same and any(r.account == account for r in same):
			counts["already_synced"] += 1
			continue
		if same:
			item.existing_communication = next((r.communication for r in same if r.communication), "")
		fresh.append(item)
	return fresh


def _insert_one_by_one(account: str, items: list[Item], snippet_length: int) -> list[Item]:
	written = []
	for item in items:
		frappe.db.savepoint("email_sync_item")
		try:
			_insert(account, [item], snippet_length)
		except Exception as e:
			frappe.db.rollback(save_point="email_sync_item")
			item = Item(item.fetched, _as_error(item.plan, f"Could not be saved: {e}"))
			_insert(account, [item], snippet_length)
		written.append(item)
	return written


def _as_error(plan: Plan, reason: str) -> Plan:
	return Plan(plan.message, ERROR, reason[:1000], "write-error", plan.direction)


def _insert(account: str, items: list[Item], snippet_length: int) -> None:
	if not items:
		return
	now = now_datetime()
	user = frappe.session.user
	filed = [item for item in items if item.plan.status == FILED]
	keeps = _keeps(account)
	shared = bool(keeps.shared)
	for item in items:
		attachments.apply_store_mode(item.plan.message, keeps.store_mode, snippet_length)
	_create_contacts(filed)
	# Emails waiting for review get their Communication too (with no links yet), so that assigning one to a
	# Customer later files it completely, body included.
	kept = [i for i in items if i.plan.status in KEPT]
	existing = _existing_by_message_id(kept)
	for item in kept:
		item.communication = (
			existing.get(item.plan.message.message_id)
			or item.existing_communication
			or communication_name(item.plan.message.key)
		)
	# New rows only: one that exists already (from another mailbox, or from ERPNext's own email) stands.
	communications = {
		i.communication: i for i in kept if i.plan.message.message_id not in existing and not i.existing_communication
	}
	# Only filed mail goes on timelines: a review's candidates (a shared address) wait for a person's choice.
	linked = {i.communication: i for i in kept if i.plan.status == FILED}

	insert_ignore(
		"Communication",
		COMMUNICATION_FIELDS,
		[_communication_row(name, item, now, user, account) for name, item in communications.items()],
	)  # a Communication filed already from another mailbox stands
	insert_ignore(
		"Communication Link",
		LINK_FIELDS,
		[row for name, item in linked.items() for row in timeline_links(name, item.plan, now, user, shared)],
	)
	insert_ignore(
		"Synced Email", SYNCED_FIELDS, [_synced_row(account, item, now, user, snippet_length) for item in items]
	)
	insert_ignore(
		"Email Sync Attachment",
		attachments.ATTACHMENT_FIELDS,
		attachments.store(
			kept,
			lambda item: synced_email_name(account, item.plan.message.key),
			set(communications),
			attachments.policy_for(keeps),
			keeps.store_mode,
			now,
			user,
		),
	)


def _keeps(account: str):
	"""What the account keeps: shared or private, the store mode, the attachment policy."""
	values = frappe.db.get_value(
		"Email Sync Account",
		account,
		["shared", "store_mode", "attachments_mode", "attachment_limit_mb"],
		as_dict=True,
	)
	values.store_mode = values.store_mode or attachments.FULL
	return values


STATEMENT_BYTES = 4 * 1024 * 1024  # well under MariaDB's max_allowed_packet


def insert_ignore(doctype: str, fields: tuple[str, ...], rows: list[tuple]) -> None:
	"""Many rows in a few INSERT IGNORE statements. Plain SQL with placeholders: building the same statement
	with the query builder costs more than the database's work on it."""
	if not rows:
		return
	if frappe.db.db_type != "mariadb":
		frappe.db.bulk_insert(doctype, fields, rows, ignore_duplicates=True)
		return
	head = f"insert ignore into `tab{doctype}` ({', '.join(f'`{f}`' for f in fields)}) values "
	one = "(" + ", ".join(["%s"] * len(fields)) + ")"
	chunk, size = [], 0
	for row in rows:
		chunk.append(row)
		size += sum(len(v) for v in row if isinstance(v, str))
		if size >= STATEMENT_BYTES:
			frappe.db.sql(head + ", ".join([one] * len(chunk)), [v for r in chunk for v in r])
			chunk, size = [], 0
	if chunk:
		frappe.db.sql(head + ", ".join([one] * len(chunk)), [v for r in chunk for v in r])


def _existing_by_message_id(items: list[Item]) -> dict[str, str]:
	"""Communications already on the site for these Message-IDs, whoever made them (Frappe's own Email
	Account pull, or mail sent from ERPNext whose copy is now read from the Sent folder): filed onto, not
	filed again."""
	ids = list({i.plan.message.message_id for i in items if i.plan.message.message_id})
	if not ids:
		return {}
	return dict(
		frappe.db.sql(
			"""select message_id, min(name) from `tabCommunication`
			where message_id in %(ids)s and communication_type = 'Communication' group by message_id""",
			{"ids": ids},
		)
	)


def _create_contacts(filed: list[Item]) -> None:
	"""Contacts for unknown addresses at customer domains: rare (once per new person), so through the ORM."""
	add_addresses(filed)  # a second address of a known person goes onto that Contact instead
	wanted = {c.email: c for item in filed for c in item.plan.new_contacts}
	if not wanted:
		return
	known = _contacts_by_address(list(wanted))
	missing = sorted(email for email in wanted if email not in known)
	# Another worker may be creating the same person right now (the same mail in two mailboxes, or two mails
	# of one new sender): one creator per address at a time, and a look at what is committed once it is ours.
	if missing and not frappe.db.transaction_writes:
		known.update(_create_committed(missing, wanted))
	elif missing:  # mid-transaction (one message at a time after a failed batch, or a caller's own change)
		_lock_addresses(missing)
		known.update(_contacts_by_address(missing, current=True))
		for email in missing:
			if email not in known:
				known[email] = insert_contact(wanted[email])
	for item in filed:
		for new in item.plan.new_contacts:
			if known[new.email] not in item.plan.contacts:
				item.plan.contacts.append(known[new.email])


def _create_committed(missing: list[str], wanted: dict) -> dict[str, str]:
	"""Before the batch writes anything: the Contacts it needs, made and committed on their own under a lock
	per address. The commit before looking gives a fresh snapshot (a Contact another sync committed while we
	waited is seen) without a locking read, whose gap locks would hold up every other worker's new Contacts
	until this batch commits. A batch that fails afterwards leaves its Contacts: real people at a Customer's
	domain, whose mail the next run files."""
	taken = []
	try:
		for email in missing:  # sorted: no two syncs wait on each other
			taken.append(_take_address_lock(email, _address_lock_name(email)))
		frappe.db.commit()
		known = _contacts_by_address(missing)
		for email in missing:
			if email not in known:
				known[email] = insert_contact(wanted[email])
		frappe.db.commit()
		return known
	finally:
		for name in taken:
			with contextlib.suppress(Exception):  # a connection that is gone has released them already
				frappe.db.sql("select release_lock(%s)", (name,))


def _contacts_by_address(emails: list[str], current: bool = False) -> dict[str, str]:
	# `lock in share mode` reads the latest committed rows (a plain read sees the transaction's snapshot).
	return dict(
		frappe.db.sql(
			"select lower(email_id), parent from `tabContact Email` where email_id in %(emails)s"
			+ (" lock in share mode" if current else ""),
			{"emails": emails},
		)
	)


CONTACT_LOCK_SECONDS = 60


def _lock_addresses(emails: list[str]) -> None:
	"""Hold a database lock per address until this transaction ends (commit or rollback), so a Contact made
	for it is committed before another sync looks for it. Taken in sorted order: two syncs never wait on
	each other in a circle. Released by the server too if the worker dies."""
	held = getattr(frappe.local, "email_sync_contact_locks", None)
	if not held:
		held = frappe.local.email_sync_contact_locks = set()
		frappe.db.after_commit.add(_release_address_locks)
		frappe.db.after_rollback.add(_release_address_locks)
	for email in sorted(emails):
		name = _address_lock_name(email)
		if name not in held:
			held.add(_take_address_lock(email, name))


def _take_address_lock(email: str, name: str) -> str:
	if not frappe.db.sql("select get_lock(%s, %s)", (name, CONTACT_LOCK_SECONDS))[0][0]:
		raise frappe.ValidationError(
			f"Another sync kept creating the Contact for {email} for over {CONTACT_LOCK_SECONDS} s"
		)
	return name


def _release_address_locks() -> None:
	held = getattr(frappe.local, "email_sync_contact_locks", None) or set()
	frappe.local.email_sync_contact_locks = set()
	for name in held:
		# A connection that is gone has released them already: nothing to do then.
		with contextlib.suppress(Exception):
			frappe.db.sql("select release_lock(%s)", (name,))


def _address_lock_name(email: str) -> str:
	return "email_sync:contact:" + _digest(f"{frappe.local.site}\x1f{email}")


def insert_contact(new) -> str:
	"""A Contact for an unknown address at a Customer's domain, marked Created by Email Sync."""
	first, _, last = (new.name or new.email.split("@")[0].replace(".", " ").title()).partition(" ")
	contact = frappe.get_doc(
		{
			"doctype": "Contact",
			"first_name": first[:140],
			"last_name": last[:140],
			"email_sync_created": 1,
			"email_ids": [{"email_id": new.email, "is_primary": 1}],
			"links": [{"link_doctype": "Customer", "link_name": new.customer}],
		}
	)
	# Made for mail being filed right now: nothing older waits for it, so no retro-filing job either
	contact.flags.made_by_email_sync = True
	contact.insert(ignore_permissions=True)
	return contact.name


def _communication_row(name: str, item: Item, now, user: str, account: str) -> tuple:
	message, plan = item.plan.message, item.plan
	sender = message.sender
	return (
		name, now, now, user, user, 0, 0,
		message.subject or "(no subject)",
		"Email",
		"Communication",
		"Sent" if plan.direction == OUTBOUND else "Received",
		"Linked" if plan.status == FILED else "Open",
		"Open",
		_cut(sender.email if sender else "", 255),
		_cut(sender.name if sender else "", 140),
		", ".join(a.email for a in message.to),
		", ".join(a.email for a in message.cc),
		attachments.link_inline_images(_content(message), message, synced_email_name(account, message.key)),
		message.text,
		_local_time(message.date or item.fetched.received_at) or now,
		message.message_id or None,
		1 if message.attachments else 0,
		1 if plan.direction == OUTBOUND else 0,
	)  # fmt: skip


def timeline_links(communication: str, plan: Plan, now, user: str, shared: bool) -> list[tuple]:
	"""Communication Link rows putting the email on its Contacts' and Customers' timelines.

	None for a private (not shared) account: Frappe's timeline shows every linked email to whoever may read
	the Customer, so private emails are reached only through the Emails section, which checks the account."""
	if not shared:
		return []
	return list(_link_rows(communication, plan, now, user))


def _link_rows(communication: str, plan: Plan, now, user: str):
	links = [("Contact", c) for c in plan.contacts] + [("Customer", c) for c in plan.customers]
	for idx, (doctype, link) in enumerate(links, start=1):
		yield (
			_digest(f"{communication}\x1f{doctype}\x1f{link}"), now, now, user, user, 0, idx,
			communication, "Communication", "timeline_links", doctype, link, link,
		)  # fmt: skip


def _synced_row(account: str, item: Item, now, user: str, snippet_length: int) -> tuple:
	message, plan, fetched = item.plan.message, item.plan, item.fetched
	sender = message.sender
	return (
		synced_email_name(account, message.key), now, now, user, user, 0, 0,
		account,
		plan.status,
		plan.direction,
		message.subject,
		_cut(sender.email if sender else "", 140),
		_cut(sender.name if sender else "", 140),
		_local_time(message.date or fetched.received_at),
		_cut(", ".join(a.email for a in message.to), 60000),
		_cut(", ".join(a.email for a in message.cc), 60000),
		_cut(plan.rule, 140),
		plan.reason,
		plan.confidence,
		"\n".join(plan.contacts),
		"\n".join(plan.customers),
		item.communication or None,
		message.snippet(snippet_length),
		len(message.attachments),
		message.size,
		_cut(message.message_id, 255),
		_cut(message.in_reply_to, 255),
		_cut(" ".join(message.references), 60000),
		message.key,
		_cut(fetched.folder, 140),
		_cut(fetched.provider_id, 255),
		_local_time(fetched.received_at),
		"\n".join(message.defects)[:10000],
	)  # fmt: skip


def _content(message) -> str:
	# Communication.content is rendered as HTML in the desk's timeline: never store a sender's HTML as sent.
	# Sanitised once, here, within the message's budget (the plain text stands in past it); the desk shows
	# what is stored and never sanitises it again.
	if message.html:
		return safe_html_for_storage(message.html, message.text, message.defects)[0]
	return text_to_html(message.text)


def _local_time(utc):
	if not utc:
		return None
	return convert_utc_to_system_timezone(utc).replace(tzinfo=None)


def _cut(value: str, length: int) -> str:
	return (value or "")[:length]


def _digest(value: str) -> str:
	return hashlib.sha1(value.encode("utf-8", "surrogatepass")).hexdigest()[:20]
