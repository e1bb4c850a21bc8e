"""Lookup columns beside Contacts and Customers, so matching asks for exactly the addresses and domains a
batch names instead of reading every Contact (see sync/directory.py).

- Contact Email: the address's domain and canonical form (engine/addresses.py `canonical`), filled on every
  Contact save and, for rows written without the ORM, on migrate;
- Email Sync Customer Domain: a Customer's Email Domains text as one indexed row per domain, rewritten on
  every Customer save and, for Customers changed without the ORM, on migrate;
- indexes on Contact Email's and User's address columns, which Frappe leaves unindexed.
"""

from __future__ import annotations

import frappe

from email_sync.engine.addresses import DOTS_IGNORED, canonical

INDEXES = (("Contact Email", "email_id"), ("User", "email"))
DOMAINS = "Email Sync Customer Domain"


def split_domains(text: str | None) -> list[str]:
	"""The Email Domains text as the domains it names, in order, each once."""
	domains = (d.strip().lower().lstrip("@") for d in (text or "").replace(",", "\n").splitlines())
	return list(dict.fromkeys(d for d in domains if d))


# -- doc_events ----------------------------------------------------------------------------------------------


def contact_validate(doc, method=None) -> None:
	for row in doc.get("email_ids") or []:
		email = (row.email_id or "").strip().lower()
		row.email_sync_domain = email.rpartition("@")[2] if "@" in email else ""
		row.email_sync_canonical = canonical(email) if email else ""


def customer_on_update(doc, method=None) -> None:
	wanted = split_domains(doc.get("email_sync_domains"))
	if _domain_rows([doc.name]).get(doc.name, []) != wanted:
		_write_domain_rows({doc.name: wanted})


def customer_on_trash(doc, method=None) -> None:
	frappe.db.delete(DOMAINS, {"customer": doc.name})


# -- migrate -------------------------------------------------------------------------------------------------


def add_indexes() -> None:
	for doctype, column in INDEXES:
		table = f"tab{doctype}"
		if not frappe.db.sql(f"show index from `{table}` where Column_name = %s and Seq_in_index = 1", (column,)):
			frappe.db.add_index(doctype, [column], index_name=f"email_sync_{column}")


def remove_indexes() -> None:
	for doctype, column in INDEXES:
		frappe.db.sql_ddl(f"alter table `tab{doctype}` drop index if exists `email_sync_{column}`")


def backfill_contact_emails() -> None:
	"""Domain and canonical form of every Contact Email row that has none yet: one UPDATE."""
	email = "lower(trim(email_id))"
	frappe.db.sql(
		f"""update `tabContact Email`
		set email_sync_domain = if(locate('@', {email}) > 0, substring_index({email}, '@', -1), ''),
			email_sync_canonical = {canonical_sql(email)}
		where ifnull(email_id, '') != '' and ifnull(email_sync_canonical, '') = ''"""
	)


def canonical_sql(email: str) -> str:
	"""`canonical()` as an SQL expression of the lower-cased, trimmed address `email`."""
	domain = f"substring_index({email}, '@', -1)"
	local = f"left({email}, char_length({email}) - char_length({domain}) - 1)"
	untagged = f"substring_index({local}, '+', 1)"
	ignored = ", ".join(f"'{d}'" for d in sorted(DOTS_IGNORED))
	return f"""case when locate('@', {email}) = 0 or char_length({local}) = 0 then {email}
		when {domain} in ({ignored}) then concat(replace({untagged}, '.', ''), '@gmail.com')
		else concat({untagged}, '@', {domain}) end"""


def backfill_customer_domains() -> int:
	"""Rewrite the rows of every Customer whose rows differ from its Email Domains text (set before this
	version, or by a direct database write). Returns how many Customers were fixed."""
	texts = dict(
		frappe.db.sql("select name, email_sync_domains from tabCustomer where ifnull(email_sync_domains, '') != ''")
	)
	rows = _domain_rows()
	stale = [c for c in set(texts) | set(rows) if rows.get(c, []) != split_domains(texts.get(c))]
	for start in range(0, len(stale), 1000):
		_write_domain_rows({c: split_domains(texts.get(c)) for c in stale[start : start + 1000]})
	return len(stale)


def _domain_rows(customers: list[str] | None = None) -> dict[str, list[str]]:
	where = "where customer in %(customers)s" if customers is not None else ""
	rows: dict[str, list[str]] = {}
	for customer, domain in frappe.db.sql(
		f"select customer, domain from `tab{DOMAINS}` {where} order by customer, idx", {"customers": customers}
	):
		rows.setdefault(customer, []).append(domain)
	return rows


def _write_domain_rows(domains_by_customer: dict[str, list[str]]) -> None:
	frappe.db.delete(DOMAINS, {"customer": ("in", list(domains_by_customer))})
	now, user = frappe.utils.now(), frappe.session.user
	values = [
		(frappe.generate_hash(length=10), customer, domain, idx, now, now, user, user)
		for customer, domains in domains_by_customer.items()
		for idx, domain in enumerate(domains, start=1)
	]
	if values:
		fields = ("name", "customer", "domain", "idx", "creation", "modified", "owner", "modified_by")
		frappe.db.bulk_insert(DOMAINS, fields, values)
