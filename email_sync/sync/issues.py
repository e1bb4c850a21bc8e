"""Filed emails and Issues: replies join the Issue they belong to, new customer requests open one.

Runs inside the batch's transaction, after the writer inserted the Communications. Issues and the
Communications linked to them go through the ORM on purpose: ERPNext's Issue hooks (SLA, first response,
reopening, Assignment Rule) are what support teams rely on, and those are few compared with all mail.
"""

from __future__ import annotations

from datetime import datetime

import frappe
from frappe.utils import escape_html, get_datetime
from frappe.utils.data import convert_utc_to_system_timezone

from email_sync.engine import FILED, INBOUND, NEEDS_REVIEW
from email_sync.engine.priority import priority_for
from email_sync.engine.threading import base_subject, thread_message_ids, ticket_references
from email_sync.sync import notify
from email_sync.sync.attachments import attach_to_issue
from email_sync.sync.writer import Item, synced_email_name

OPEN_STATUSES = ("Open", "Replied", "On Hold")
CLOSED_STATUSES = ("Resolved", "Closed")


class IssueRouter:
	"""Routes a batch's filed emails to Issues. History (mail older than the account's activation, or any
	imported mail) is filed only: it opens, joins and reopens no Issue, sends no acknowledgement and notifies
	nobody, unless Email Sync Settings' *Issues for History* is on. An account activated before this was
	recorded (no `activated_on`) treats all synced mail as new, as it always did."""

	def __init__(self, account, settings, force: bool = False, imported: bool = False):
		self.account = account
		self.settings = settings
		self.force = force  # an Issue asked for by hand: whatever the account's setting, Customer or not
		self.imported = imported  # the batch comes from files, not from the mailbox: all of it is history
		self.priority_table = [(row.keyword, row.priority) for row in settings.priority_keywords]
		self.created: list[str] = []
		self.activated_on = get_datetime(account.get("activated_on")) if account.get("activated_on") else None
		self.new_needing_review = 0  # emails of the run waiting in Needs Review that are not history

	def is_history(self, item: Item) -> bool:
		if self.force or self.settings.get("issues_for_history"):
			return False
		if self.imported:
			return True
		when = item.plan.message.date or item.fetched.received_at
		return bool(self.activated_on and when and _local(when) < self.activated_on)

	def route(self, items: list[Item]) -> None:
		current = [i for i in items if not self.is_history(i)]
		self.new_needing_review += sum(1 for i in current if i.plan.status == NEEDS_REVIEW)
		filed = [i for i in current if i.plan.status == FILED]
		if not filed:
			return
		known = self._issues_by_message_id(filed)
		for item in sorted(filed, key=_when):
			if not self._may_concern_an_issue(item, known):
				self._notify(item, None, False)
				continue  # most mail: no savepoint, no query
			frappe.db.savepoint("email_sync_issue")
			try:
				issue = self._route_one(item, known)
			except Exception as e:  # the email stays filed on its Contacts; only the Issue step failed
				frappe.db.rollback(save_point="email_sync_issue")
				self._note_failure(item, e)
				continue
			if issue and item.plan.message.message_id:
				known[item.plan.message.message_id] = issue

	def _may_concern_an_issue(self, item: Item, known: dict[str, str]) -> bool:
		message = item.plan.message
		return (
			self._wants_new_issue(item)
			or any(m in known for m in thread_message_ids(message))
			or bool(ticket_references(message.subject))
		)

	def _route_one(self, item: Item, known: dict[str, str]) -> str | None:
		issue = self._existing_issue(item, known)
		created = False
		if issue is None and self._wants_new_issue(item):
			issue = self._open_issue_of_customer(item)
			if issue is None:
				issue, created = self._create_issue(item), True
		if issue:
			self._attach(item, issue)
		self._notify(item, issue, created)
		return issue

	def _notify(self, item: Item, issue: str | None, created: bool) -> None:
		message = item.plan.message
		sender = message.sender.email if message.sender else "?"
		if created:
			notify.notify(notify.NEW_ISSUE, f"New Issue {issue} from {sender}: {message.subject}", "Issue", issue)
		if item.plan.direction != INBOUND:
			return
		verdict = priority_for(message.subject, message.text, self.priority_table)
		if verdict.priority == "High":
			doctype, name = ("Issue", issue) if issue else ("Communication", item.communication)
			notify.notify(
				notify.HIGH_PRIORITY,
				f"High-priority email from {sender}: {message.subject}",
				doctype,
				name,
				f"Priority High because {verdict.reason}.",
			)

	def _note_failure(self, item: Item, error: Exception) -> None:
		name = synced_email_name(self.account.name, item.plan.message.key)
		reason = f"{item.plan.reason} The Issue step failed: {error}"[:1000]
		frappe.db.set_value("Synced Email", name, "reason", reason, update_modified=False)
		frappe.log_error(title=f"Email Sync could not file an Issue for {name}")

	def _issues_by_message_id(self, items: list[Item]) -> dict[str, str]:
		wanted = {mid for i in items for mid in thread_message_ids(i.plan.message)}
		if not wanted:
			return {}
		return dict(
			frappe.db.sql(
				"""select message_id, reference_name from `tabCommunication`
				where reference_doctype = 'Issue' and message_id in %(ids)s""",
				{"ids": list(wanted)},
			)
		)

	def _existing_issue(self, item: Item, known: dict[str, str]) -> str | None:
		message = item.plan.message
		issue = next((known[m] for m in thread_message_ids(message) if m in known), None)
		issue = issue or self._issue_from_subject(message.subject)
		if issue and item.plan.direction == INBOUND and self._closed(issue) and self._starts_new_issue():
			return None
		return issue

	def _issue_from_subject(self, subject: str) -> str | None:
		for ref in ticket_references(subject):
			if not ref.isdigit():
				if frappe.db.exists("Issue", ref):
					return ref
				continue
			# "Ticket #12": the Issue whose number is 12, if exactly one series has it
			matches = frappe.get_all("Issue", filters={"name": ("like", f"%-{int(ref):05d}")}, pluck="name", limit=2)
			if len(matches) == 1:
				return matches[0]
		return None

	def _closed(self, issue: str) -> bool:
		return frappe.db.get_value("Issue", issue, "status") in CLOSED_STATUSES

	def _starts_new_issue(self) -> bool:
		return self.settings.closed_issue_reply == "Starts a new Issue"

	def _wants_new_issue(self, item: Item) -> bool:
		if self.force:
			return True
		return bool(self.account.create_issues and item.plan.direction == INBOUND and item.plan.customers)

	def _open_issue_of_customer(self, item: Item) -> str | None:
		if not self.settings.one_open_issue_per_customer or not item.plan.customers:
			return None
		found = frappe.get_all(
			"Issue",
			filters={
				"customer": item.plan.customers[0],
				"status": ("in", OPEN_STATUSES),
				"email_sync_source": "Email",
			},
			order_by="creation desc",
			pluck="name",
			limit=1,
		)
		return found[0] if found else None

	def _create_issue(self, item: Item) -> str:
		message, plan = item.plan.message, item.plan
		priority = priority_for(message.subject, message.text, self.priority_table, self.settings.default_priority or "")
		issue = frappe.get_doc(
			{
				"doctype": "Issue",
				"subject": (base_subject(message.subject) or "(no subject)")[:140],
				"description": escape_html(message.text or message.snippet()).replace("\n", "<br>"),
				"raised_by": message.sender.email if message.sender else None,
				"customer": plan.customers[0] if plan.customers else None,
				"contact": plan.contacts[0] if plan.contacts else None,
				"priority": priority.priority or None,
				"issue_type": self.account.issue_type or None,
				"email_sync_source": "Email",
				"email_sync_account": self.account.name,
			}
		)
		for row in self.settings.issue_fields:
			value = _mapped_value(row, item, self.account.name)
			if value not in (None, "") and issue.meta.has_field(row.issue_field):
				issue.set(row.issue_field, value)
		issue.flags.ignore_mandatory = True
		issue.insert(ignore_permissions=True)  # Assignment Rules and SLAs apply here, as for any new Issue
		if self.account.attach_eml and item.fetched.raw:
			_attach_eml(issue.name, item)
		if self.account.acknowledgement_template and issue.raised_by:
			self._acknowledge(issue, item)
		self.created.append(issue.name)
		return issue.name

	def _acknowledge(self, issue, item: Item) -> None:
		"""Queue the acknowledgement; if it cannot be (no outgoing Email Account), the Issue still stands."""
		try:
			_acknowledge(issue, self.account.acknowledgement_template)
		except Exception as e:
			name = synced_email_name(self.account.name, item.plan.message.key)
			reason = f"{item.plan.reason} The acknowledgement was not sent: {frappe.utils.strip_html(str(e))}"
			frappe.db.set_value("Synced Email", name, "reason", reason[:1000], update_modified=False)

	def _attach(self, item: Item, issue: str) -> None:
		communication = frappe.get_doc("Communication", item.communication)
		if communication.reference_doctype == "Issue" and communication.reference_name == issue:
			return
		# Set the reference without a full save: validation would sanitise the content again and rebuild the
		# timeline links (private accounts have none on purpose). What support relies on runs below: Frappe's
		# on_update (reopening, response times) and the doc_events hooks (ERPNext's SLA and first response).
		values = {"reference_doctype": "Issue", "reference_name": issue, "status": "Linked"}
		frappe.db.set_value("Communication", communication.name, values, update_modified=False)
		communication.update(values)
		communication.run_method("on_update")
		attach_to_issue(communication.name, issue)
		frappe.db.set_value(
			"Synced Email",
			synced_email_name(self.account.name, item.plan.message.key),
			"issue",
			issue,
			update_modified=False,
		)


def _local(when: datetime) -> datetime:
	"""A message's date (aware, or naive UTC) as the site's naive local time, like the Datetime fields."""
	return convert_utc_to_system_timezone(when).replace(tzinfo=None)


def _when(item: Item):
	return item.plan.message.date or item.fetched.received_at or datetime.min


def _acknowledge(issue, template_name: str) -> None:
	template = frappe.get_doc("Email Template", template_name)
	context = issue.as_dict()
	frappe.sendmail(
		recipients=[issue.raised_by],
		subject=template.get_formatted_subject(context),
		message=template.get_formatted_response(context),
		reference_doctype="Issue",
		reference_name=issue.name,
		header=None,
	)


def _mapped_value(row, item: Item, account: str):
	message = item.plan.message
	source = row.email_property
	value = {
		"Fixed Value": row.default_value,
		"Account": account,
		"To Address": message.to[0].email if message.to else "",
		"Sender Domain": message.sender.domain if message.sender else "",
		"Subject": message.subject,
		"From Name": message.sender.name if message.sender else "",
	}.get(source)
	return value or row.default_value


def _attach_eml(issue: str, item: Item) -> None:
	frappe.get_doc(
		{
			"doctype": "File",
			"file_name": f"{(item.plan.message.message_id or item.plan.message.key)[:60]}.eml".replace("/", "_"),
			"attached_to_doctype": "Issue",
			"attached_to_name": issue,
			"content": item.fetched.raw,
			"is_private": 1,
		}
	).insert(ignore_permissions=True)
