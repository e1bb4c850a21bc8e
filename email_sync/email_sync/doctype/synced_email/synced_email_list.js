// Synced Email list: Retry on the selected emails whose download failed

frappe.listview_settings["Synced Email"] = {
	onload(listview) {
		if (!frappe.model.can_write("Synced Email")) return;
		listview.page.add_action_item(__("Retry Download"), () => {
			const names = listview
				.get_checked_items()
				.filter((doc) => doc.status === "Error" && (doc.decision_rule || "").startsWith("fetch-error:"))
				.map((doc) => doc.name);
			if (!names.length) {
				frappe.msgprint(__("Select Error emails whose download failed (rule fetch-error:…)."));
				return;
			}
			frappe
				.call({
					method: "email_sync.email_sync.doctype.synced_email.synced_email.retry_download",
					args: { names },
					freeze: true,
					freeze_message: __("Downloading again from the mail server…"),
				})
				.then((r) => {
					const results = r.message || [];
					const done = results.filter((x) => x.synced_email).length;
					frappe.show_alert({
						message: __("{0} of {1} downloaded and filed", [done, results.length]),
						indicator: done === results.length ? "green" : "orange",
					});
					listview.refresh();
				});
		});
	},
	add_fields: ["status", "decision_rule"],
};
