"""Email Domains is where an admin looks: on the Customer's first tab, without expanding anything."""

import frappe
from browserlib import expect, go, login, settle, shoot, wait_for_form
from factories import make_customer, unique


def test_email_domains_is_visible_on_opening_a_customer(stack, new_page, admin):
	domain = f"{unique('visible')}.test"
	customer = make_customer(f"Visible {domain}", domains=domain)
	frappe.db.commit()
	page = new_page()
	login(page, stack, admin.email, admin.password)
	go(page, stack, f"customer/{customer}")
	wait_for_form(page, "Customer", customer)

	field = page.locator(".frappe-control[data-fieldname='email_sync_domains']:visible")
	expect(field).to_be_visible()  # no section to expand, no tab to pick
	expect(field).to_contain_text("Email Domains")
	expect(field.locator("textarea")).to_have_value(domain)
	expect(page.locator(".frappe-control[data-fieldname='customer_group']:visible")).to_be_visible()
	shoot(page, "customer-email-domains")
	settle(page)
	assert not page.errors, page.errors
