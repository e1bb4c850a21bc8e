# Copyright (c) 2026, Email Sync developers
# For license information, please see license.txt

from frappe.model.document import Document


class EmailSyncCustomerDomain(Document):
	pass
