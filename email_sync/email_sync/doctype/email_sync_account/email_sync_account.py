# Copyright (c) 2026, Email Sync developers
# For license information, please see license.txt

import frappe
from frappe import _
from frappe.model.document import Document
from frappe.utils import format_date, getdate, now_datetime

from email_sync.engine.schedule import ScheduleError, parse_skip_times

DEFAULT_PORTS = {"SSL": 993, "STARTTLS": 143, "None": 143}


class EmailSyncAccount(Document):
	def validate(self):
		self.email_address = (self.email_address or "").strip().lower()
		self.validate_skip_times()
		self.validate_imap()
		self.validate_aliases()
		self.validate_company_mailbox()
		self.validate_folders()
		self.set_sync_start_date()
		self.set_activated_on()

	def validate_skip_times(self):
		try:
			parse_skip_times(self.skip_times)
		except ScheduleError as e:
			frappe.throw(_("Skip Times: {0}").format(e), title=_("Invalid Skip Times"))

	def validate_imap(self):
		if self.provider != "IMAP":
			return
		if not self.imap_port or (self.has_value_changed("imap_security") and self.imap_port in DEFAULT_PORTS.values()):
			self.imap_port = DEFAULT_PORTS.get(self.imap_security or "SSL", 993)
		if self.status == "Active" and not self.imap_host:
			frappe.throw(_("Enter the IMAP host (for example imap.example.com) before activating the account."))

	def validate_aliases(self):
		seen = {self.email_address}
		for row in self.aliases:
			row.alias = (row.alias or "").strip().lower()
			if row.alias in seen:
				frappe.throw(_("Row {0}: {1} is listed twice or is the account's own address.").format(row.idx, row.alias))
			seen.add(row.alias)

	def validate_company_mailbox(self):
		"""A shared or delegated mailbox is read through the API with the app's own access (Email Sync Settings)."""
		from email_sync.sync.company import SHARED, SHARED_SIGN_IN, is_shared, missing_setup

		if self.provider != "IMAP" and self.mailbox_kind == SHARED_SIGN_IN:
			self.validate_shared_sign_in()
		if self.provider == "IMAP" or self.mailbox_kind != SHARED:
			return
		if self.mail_access == "IMAP (XOAUTH2)":
			frappe.throw(_("A shared or delegated mailbox is read through the API: set Mail Access to API."))
		if self.status == "Active" and is_shared(self) and (missing := missing_setup(self.provider)):
			message = _(
				"Before activating a shared or delegated mailbox, enter {0} under Company Mailboxes in Email Sync "
				"Settings."
			)
			frappe.throw(message.format(missing), title=_("App access is not set up"))

	def validate_shared_sign_in(self):
		"""Someone's own sign-in reading a shared mailbox: Microsoft Graph with Mail.Read.Shared only."""
		if self.provider == "Gmail":
			frappe.throw(
				_(
					"Gmail cannot read another person's mailbox through your sign-in. Choose Mailbox Shared or "
					"delegated: the mailbox is then read with domain-wide delegation (Company Mailboxes in Email "
					"Sync Settings)."
				)
			)
		if self.mail_access == "IMAP (XOAUTH2)":
			frappe.throw(_("A shared mailbox read through your sign-in is read through Microsoft Graph: set Read Mail Through to API."))

	def validate_folders(self):
		from email_sync.sync.folder_check import check_folders, should_check

		if should_check(self):
			check_folders(self)

	def set_sync_start_date(self):
		"""The date is the admin's: shown (today by default) before activation and never changed by a save. Moving
		it earlier on an account that has synced brings in the mail between the new date and what is read."""
		if self.status == "Active" and not self.sync_start_date:
			frappe.throw(_("Set the Sync Start Date: mail received from that day on is synced."))
		if not self.sync_cursor or self.is_new():
			return  # nothing read yet: the first sync starts at the date, whatever it is now
		before = self.get_doc_before_save()
		if not self.history_from and before and before.sync_start_date:
			self.history_from = before.sync_start_date  # what the syncs so far have read back to
		moved = before and getdate(before.sync_start_date) != getdate(self.sync_start_date)
		if moved and self.history_from and getdate(self.sync_start_date) < getdate(self.history_from):
			self.flags.backfill_from = self.sync_start_date

	def on_update(self):
		if self.flags.backfill_from:
			from email_sync.sync.backfill import queue_backfill_if_free

			if queue_backfill_if_free(self.name, self.flags.backfill_from):
				frappe.msgprint(
					_("Bringing in the mail from {0} to {1} in the background; it is filed as history.").format(
						format_date(self.flags.backfill_from), format_date(self.history_from)
					),
					indicator="blue",
					alert=True,
				)
			self.flags.backfill_from = None

	def set_activated_on(self):
		# The moment that separates history (filed only) from new mail (Issues, notifications): see IssueRouter.
		if self.status == "Active" and not self.activated_on:
			self.activated_on = now_datetime()
