"""The site's side of the engine's Directory: rows for exactly the addresses and domains a batch names.

Every query is an indexed IN on the few values asked (see indexes.py for the columns that make domains and
canonical forms searchable), so its cost follows the batch, not the number of Contacts on the site.
"""

from __future__ import annotations

import frappe

from email_sync.engine.directory import Rows

CHUNK = 500  # values per IN list: a batch's To/Cc lists can be long
NAMESAKES_PER_CUSTOMER = 2000  # Contacts of one Customer whose names a new person's is compared with


class SiteSource:
	def exact(self, emails: list[str], domains: list[str]) -> Rows:
		contact_emails = _chunked(
			"""select parent, lower(trim(email_id)) from `tabContact Email`
			where parenttype = 'Contact' and email_id in %(values)s
			union select name, lower(trim(email_id)) from `tabContact` where email_id in %(values)s""",
			emails,
		)
		users = _chunked(
			"""select lower(email) from `tabUser`
			where email in %(values)s and user_type = 'System User' and enabled = 1""",
			emails,
		)
		customer_domains = _chunked(
			"select customer, domain from `tabEmail Sync Customer Domain` where domain in %(values)s",
			domains,
		)
		return _with_links(contact_emails, [u for (u,) in users], customer_domains)

	def near(self, canonicals: list[str], domains: list[str]) -> Rows:
		contact_emails = _chunked(
			"""select parent, lower(trim(email_id)) from `tabContact Email`
			where parenttype = 'Contact' and email_sync_canonical in %(values)s""",
			canonicals,
		) + _chunked(
			"""select parent, lower(trim(email_id)) from `tabContact Email`
			where parenttype = 'Contact' and email_sync_domain in %(values)s""",
			domains,
		)
		return _with_links(contact_emails)

	def namesakes(self, customers: list[str]) -> Rows:
		"""The names of these Customers' Contacts (the engine compares them in normalised form), the most recently
		changed NAMESAKES_PER_CUSTOMER of each, in one query however many Customers the batch names."""
		rows = _chunked(
			f"""select name, customer, full_name from (
				select c.name, dl.link_name as customer,
					coalesce(nullif(c.full_name, ''), concat_ws(' ', c.first_name, c.middle_name, c.last_name)) as full_name,
					row_number() over (partition by dl.link_name order by c.modified desc) as n
				from `tabDynamic Link` dl join `tabContact` c on c.name = dl.parent
				where dl.parenttype = 'Contact' and dl.link_doctype = 'Customer' and dl.link_name in %(values)s
			) ranked where n <= {int(NAMESAKES_PER_CUSTOMER)}""",
			sorted(customers),
		)
		return Rows(contact_customers=[(c, x) for c, x, _ in rows], contact_names=[(c, n) for c, _, n in rows])


def _with_links(contact_emails: list, users: list[str] = (), customer_domains: list = ()) -> Rows:
	"""The rows, with the Customers of the Contacts found and the addresses of those that are a Supplier's."""
	contacts = sorted({contact for contact, _ in contact_emails})
	links = _chunked(
		"""select parent, link_doctype, link_name from `tabDynamic Link`
		where parenttype = 'Contact' and parent in %(values)s and link_doctype in ('Customer', 'Supplier')""",
		contacts,
	)
	suppliers = {contact for contact, doctype, _ in links if doctype == "Supplier"}
	return Rows(
		contact_emails=contact_emails,
		contact_customers=[(contact, name) for contact, doctype, name in links if doctype == "Customer"],
		user_emails=users,
		customer_domains=customer_domains,
		supplier_emails=[email for contact, email in contact_emails if contact in suppliers],
	)


def _chunked(query: str, values: list[str]) -> list[tuple]:
	rows = []
	for start in range(0, len(values), CHUNK):
		rows += frappe.db.sql(query, {"values": values[start : start + CHUNK]})
	return rows
