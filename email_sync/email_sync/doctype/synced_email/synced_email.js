// Synced Email form: Retry on an email whose download failed (the server would not hand it out at the time)

frappe.ui.form.on("Synced Email", {
	refresh(frm) {
		if (!email_sync_retry.can_retry(frm.doc) || !frm.has_perm("write")) return;
		frm.add_custom_button(__("Retry"), () =>
			email_sync_retry.run([frm.doc.name]).then((results) => {
				const result = results[0] || {};
				if (result.synced_email && result.synced_email !== frm.doc.name) {
					frappe.set_route("Form", "Synced Email", result.synced_email);
				} else {
					frm.reload_doc();
				}
			})
		);
	},
});

window.email_sync_retry = {
	can_retry(doc) {
		return doc.status === "Error" && (doc.decision_rule || "").startsWith("fetch-error:") && !!doc.provider_id;
	},

	run(names) {
		return frappe
			.call({
				method: "email_sync.email_sync.doctype.synced_email.synced_email.retry_download",
				args: { names },
				freeze: true,
				freeze_message: __("Downloading again from the mail server…"),
			})
			.then((r) => {
				const results = r.message || [];
				const lines = results.map(
					(x) =>
						(results.length > 1 ? `${x.name}: ` : "") +
						(x.synced_email
							? __("Downloaded from the mail server and filed (status {0}).", [__(x.status)])
							: x.message)
				);
				const ok = results.every((x) => x.synced_email);
				frappe.msgprint({
					title: ok ? __("Downloaded") : __("Not every email could be downloaded"),
					message: lines.map((l) => frappe.utils.escape_html(l)).join("<br>"),
					indicator: ok ? "green" : "orange",
				});
				return results;
			});
	},
};
