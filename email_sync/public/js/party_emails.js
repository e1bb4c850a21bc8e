// The Emails tab of Customer and Contact (its HTML field is added by Email Sync's install).
["Customer", "Contact"].forEach((doctype) => {
	frappe.ui.form.on(doctype, {
		refresh(frm) {
			const field = frm.fields_dict.email_sync_emails;
			if (!field) return;
			// One list per form, refreshed with it (a second instance could append its answer to the same list)
			if (!frm.__email_sync_emails || frm.__email_sync_emails.$wrapper[0] !== field.$wrapper[0]) {
				frm.__email_sync_emails = new email_sync.EmailsSection(frm, field.$wrapper);
			}
			frm.__email_sync_emails.refresh();
		},
	});
});
