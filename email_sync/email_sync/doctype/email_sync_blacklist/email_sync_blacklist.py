# Copyright (c) 2026, Email Sync developers
# For license information, please see license.txt

import frappe
from frappe import _
from frappe.model.document import Document


def normalise_entry(entry: str | None) -> str:
	return (entry or "").strip().lower()


class EmailSyncBlacklist(Document):
	def before_naming(self):
		# The name is taken from `entry` (autoname field:entry) before validate() runs, so normalise here too.
		self.entry = normalise_entry(self.entry)

	def validate(self):
		self.entry = normalise_entry(self.entry)
		self.validate_entry()
		self.entry_type = "Address" if "@" in self.entry else "Domain"

	def validate_entry(self):
		entry = self.entry
		if not entry:
			frappe.throw(_("Enter an address or a domain."), title=_("Entry Missing"))

		if any(ch.isspace() for ch in entry):
			frappe.throw(
				_("{0} contains a space. Enter one address or domain per entry.").format(frappe.bold(entry)),
				title=_("Invalid Entry"),
			)

		if entry.count("@") > 1:
			frappe.throw(
				_("{0} contains more than one @. Enter one address or domain per entry.").format(
					frappe.bold(entry)
				),
				title=_("Invalid Entry"),
			)

		if "@" in entry:
			local, domain = entry.split("@")
			if not local:
				frappe.throw(
					_("{0} has nothing before the @. To block a whole domain, enter just {1}.").format(
						frappe.bold(entry), frappe.bold(domain or "example.com")
					),
					title=_("Invalid Entry"),
				)
			if "*" in local and local != "*":
				frappe.throw(
					_("In {0} the wildcard must be the whole part before the @, as in {1}.").format(
						frappe.bold(entry), frappe.bold("*@" + (domain or "example.com"))
					),
					title=_("Invalid Entry"),
				)
		else:
			domain = entry[2:] if entry.startswith("*.") else entry

		if "*" in domain:
			frappe.throw(
				_("In {0} a wildcard is only allowed at the start, as in {1} or {2}.").format(
					frappe.bold(entry), frappe.bold("*@mailer.example.com"), frappe.bold("*.example.com")
				),
				title=_("Invalid Entry"),
			)

		if "." not in domain or domain.startswith(".") or domain.endswith(".") or ".." in domain:
			frappe.throw(
				_("{0} does not end in a valid domain such as {1}.").format(
					frappe.bold(entry), frappe.bold("example.com")
				),
				title=_("Invalid Entry"),
			)
