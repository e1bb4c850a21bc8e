// Contact form, for System Managers: "Erase Synced Email" shows what would go, and erases it once confirmed
// (email_sync/erasure.py; the server checks the role again).
frappe.ui.form.on("Contact", {
	refresh(frm) {
		if (frm.is_new() || !frappe.user.has_role("System Manager")) return;
		frm.add_custom_button(__("Erase Synced Email"), () => email_sync.erasure.preview(frm), __("Actions"));
	},
});

window.email_sync = window.email_sync || {};

email_sync.erasure = {
	preview(frm) {
		frappe
			.call({
				method: "email_sync.erasure.preview_erasure",
				args: { contact: frm.doc.name },
				type: "GET",
				freeze: true,
				freeze_message: __("Finding what was synced…"),
			})
			.then((r) => email_sync.erasure.confirm(frm, r.message));
	},

	confirm(frm, found) {
		if (!found.synced_emails) {
			frappe.msgprint({
				title: __("Nothing to erase"),
				message: __("Email Sync holds no email from or to {0}.", [email_sync.erasure.list(found.addresses)]),
			});
			return;
		}
		const dialog = new frappe.ui.Dialog({
			title: __("Erase synced email of {0}", [frm.doc.full_name || frm.doc.name]),
			fields: [
				{ fieldtype: "HTML", options: email_sync.erasure.summary(found) },
				{
					fieldname: "blacklist",
					fieldtype: "Check",
					label: __("Blacklist these addresses (the sync skips them from now on)"),
					default: 1,
				},
				{
					fieldname: "delete_issues",
					fieldtype: "Check",
					label: found.issues === 1
						? __("Also delete the Issue these emails opened")
						: __("Also delete the {0} Issues these emails opened", [found.issues]),
					hidden: !found.issues,
					description: __("Otherwise the Issues stay, with their description."),
				},
			],
			primary_action_label: __("Erase"),
			primary_action(values) {
				frappe
					.call({
						method: "email_sync.erasure.erase",
						args: {
							contact: frm.doc.name,
							blacklist: values.blacklist ? 1 : 0,
							delete_issues: values.delete_issues ? 1 : 0,
						},
						freeze: true,
						freeze_message: __("Erasing…"),
					})
					.then(({ message: r }) => {
						dialog.hide();
						frappe.show_alert({
							message: __("{0} and {1} erased.", [
								email_sync.erasure.count(r.synced_emails, "1 synced email", "{0} synced emails"),
								email_sync.erasure.count(r.files, "1 file", "{0} files"),
							]),
							indicator: "orange",
						});
						frm.reload_doc();
					});
			},
		});
		dialog.get_primary_btn().removeClass("btn-primary").addClass("btn-danger");
		dialog.show();
	},

	// "1 file", "3 files": the singular and plural phrases are each translated whole.
	count(n, one, many) {
		return n === 1 ? __(one) : __(many, [n || 0]);
	},

	summary(found) {
		const esc = frappe.utils.escape_html;
		const count = email_sync.erasure.count;
		const more = found.synced_emails - found.subjects.length;
		return `<p>${__("Everything Email Sync synced with {0} will be deleted; this cannot be undone:", [
			email_sync.erasure.list(found.addresses),
		])}</p>
			<ul>
				<li>${count(found.synced_emails, "1 synced email", "{0} synced emails")}</li>
				<li>${__("{0} on the timeline, with {1} and {2}", [
					count(found.communications, "1 email", "{0} emails"),
					count(found.files, "1 file", "{0} files"),
					count(found.comments, "1 comment", "{0} comments"),
				])}</li>
				${found.kept_communications ? `<li>${found.kept_communications === 1
					? __("1 email stays: ERPNext's own, or also synced from other mail")
					: __("{0} emails stay: ERPNext's own, or also synced from other mail", [found.kept_communications])}</li>` : ""}
			</ul>
			<p class="text-muted">${__("Newest subjects:")}</p>
			<ul>${found.subjects.map((s) => `<li>${esc(s)}</li>`).join("")}
				${more > 0 ? `<li class="text-muted">${__("and {0} more", [more])}</li>` : ""}</ul>
			<p class="text-muted">${__("The erasure is recorded (who, when, counts) in the Email Sync Erasure Log.")}</p>`;
	},

	list(addresses) {
		return (addresses || []).map((a) => `<b>${frappe.utils.escape_html(a)}</b>`).join(", ") || __("this Contact");
	},
};
