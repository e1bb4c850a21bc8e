// Email Sync Log list: the run's status as its indicator, and no "0" for counts a run did not reach.

frappe.listview_settings["Email Sync Log"] = {
	add_fields: ["status", "error"],
	get_indicator(doc) {
		const color = { Success: "green", Partial: "orange", Failed: "red", Running: "blue", Skipped: "gray" }[doc.status] || "gray";
		return [__(doc.status), color, `status,=,${doc.status}`];
	},
	formatters: {
		// A run that failed before reading anything has nothing to count: its Error says what failed.
		fetched: (value) => (value ? value : ""),
		filed: (value) => (value ? value : ""),
		failed: (value) => (value ? value : ""),
	},
};
