from frappe.model.document import Document


class EmailSyncAttachment(Document):
	"""One attachment of a synced email: the File it is kept as, or why it was not stored."""
