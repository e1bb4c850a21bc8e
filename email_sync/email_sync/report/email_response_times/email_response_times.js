// Copyright (c) 2026, Email Sync developers
// For license information, please see license.txt

frappe.query_reports["Email Response Times"] = {
	filters: [
		{
			fieldname: "from_date",
			label: __("From Date"),
			fieldtype: "Date",
			default: frappe.datetime.add_days(frappe.datetime.get_today(), -30),
			reqd: 1,
		},
		{
			fieldname: "to_date",
			label: __("To Date"),
			fieldtype: "Date",
			default: frappe.datetime.get_today(),
			reqd: 1,
		},
		{
			fieldname: "group_by",
			label: __("Group By"),
			fieldtype: "Select",
			options: [
				{ value: "Issue", label: __("Issue") },
				{ value: "Customer", label: __("Customer") },
				{ value: "Agent", label: __("Agent") },
				{ value: "Account", label: __("Account") },
			],
			default: "Issue",
			reqd: 1,
		},
		{
			fieldname: "account",
			label: __("Account"),
			fieldtype: "Link",
			options: "Email Sync Account",
		},
		{
			fieldname: "customer",
			label: __("Customer"),
			fieldtype: "Link",
			options: "Customer",
		},
	],

	formatter(value, row, column, data, default_formatter) {
		const formatted = default_formatter(value, row, column, data);
		if (!data) return formatted;
		// An Issue nobody has answered yet: say so instead of an empty cell.
		if (column.fieldname === "first_response_hours" && data.issue && value == null) {
			return `<span class="text-muted">${__("No reply yet")}</span>`;
		}
		if (column.fieldname === "unreplied" && value > 0) {
			return `<span class="text-danger">${formatted}</span>`;
		}
		return formatted;
	},
};
