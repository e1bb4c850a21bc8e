// Copyright (c) 2026, Email Sync developers
// For license information, please see license.txt

frappe.ui.form.on("Email Sync Filter", {
	refresh(frm) {
		frm.add_custom_button(__("Preview"), () => preview_filter(frm));
	},
});

function preview_filter(frm) {
	const d = frm.doc;
	frappe
		.xcall("email_sync.api.preview_filter", {
			filter_type: d.filter_type, match_field: d.match_field, operator: d.operator, value: d.value,
			account: d.account, name: d.name, limit: 50,
		})
		.then((r) => {
			const esc = frappe.utils.escape_html;
			const rows = r.rows
				.map((row) => `<tr class="${row.changes ? "bg-warning-subtle" : ""}">
					<td>${esc(row.sender || "")}</td><td>${esc(row.subject || "")}</td>
					<td>${esc(row.status)}</td><td><b>${esc(row.new_status)}</b></td><td>${esc(row.new_reason || "")}</td></tr>`)
				.join("");
			frappe.msgprint({
				title: __("Preview: {0} of the last {1} emails would change", [r.would_change, r.checked]),
				wide: true,
				message: `<p class="text-muted">${__("Nothing is changed: this shows what the filter would do.")}</p>
					<table class="table table-sm"><thead><tr><th>${__("From")}</th><th>${__("Subject")}</th>
					<th>${__("Now")}</th><th>${__("With this filter")}</th><th>${__("Why")}</th></tr></thead>
					<tbody>${rows}</tbody></table>`,
			});
		});
}
