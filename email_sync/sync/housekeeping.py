"""Daily clean-up."""

import frappe
from frappe.utils import add_days, now_datetime


def delete_old_logs() -> None:
	days = int(frappe.db.get_single_value("Email Sync Settings", "keep_logs_days") or 30)
	frappe.db.delete("Email Sync Log", {"started": ("<", add_days(now_datetime(), -days))})
