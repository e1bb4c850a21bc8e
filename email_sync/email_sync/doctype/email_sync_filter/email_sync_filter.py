# Copyright (c) 2026, Email Sync developers
# For license information, please see license.txt

import re

import frappe
from frappe import _
from frappe.model.document import Document


class EmailSyncFilter(Document):
	def validate(self):
		self.value = (self.value or "").strip()
		if not self.value:
			frappe.throw(_("Enter the value this filter looks for."), title=_("Value Missing"))

		if self.operator == "regex":
			try:
				re.compile(self.value)
			except re.error as e:
				frappe.throw(
					_("{0} is not a valid regular expression: {1}").format(frappe.bold(self.value), e),
					title=_("Invalid Regular Expression"),
				)
