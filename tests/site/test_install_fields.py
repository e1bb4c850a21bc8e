"""Custom fields land where install.py says, on a fresh install and on a site upgraded by migrate."""

import frappe

from email_sync.install import after_migrate


def test_migrate_moves_email_domains_onto_the_customers_first_tab():
	name = frappe.db.get_value("Custom Field", {"dt": "Customer", "fieldname": "email_sync_domains"})
	frappe.db.set_value("Custom Field", name, "insert_after", "website")  # where an older version put it
	after_migrate()  # what every migrate runs: the whole step, since custom fields alone drop lookup indexes
	frappe.db.commit()
	assert frappe.db.get_value("Custom Field", name, "insert_after") == "customer_group"
	meta = frappe.get_meta("Customer").fields
	fields = [f.fieldname for f in meta]
	assert fields.index("email_sync_domains") == fields.index("customer_group") + 1
	# Still in the form's first, open section: before the first break after it.
	first_break = next(f.fieldname for f in meta[1:] if f.fieldtype in ("Section Break", "Tab Break"))
	assert fields.index("email_sync_domains") < fields.index(first_break)
