# Copyright (c) 2026, Email Sync developers
# For license information, please see license.txt

from frappe.model.document import Document


class EmailSyncErasureLog(Document):
	"""Written only by sync/erasure.py and sync/retention.py: what was erased or cut, by whom, when."""

	pass
