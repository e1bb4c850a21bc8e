// The Email Sync page: is sync healthy, what needs attention, what happened.

frappe.pages["email-sync"].on_page_load = (wrapper) => {
	const page = frappe.ui.make_app_page({ parent: wrapper, title: __("Email Sync"), single_column: true });
	wrapper.email_sync_page = new EmailSyncPage(page);
};

frappe.pages["email-sync"].on_page_show = (wrapper) => wrapper.email_sync_page && wrapper.email_sync_page.refresh();

const esc = (value) => frappe.utils.escape_html(value == null ? "" : String(value));
const LIGHT = { green: "green", yellow: "orange", red: "red" };
const STATUS_COLOR = { Filed: "green", Skipped: "gray", "Needs Review": "orange", Error: "red" };

class EmailSyncPage {
	constructor(page) {
		this.page = page;
		this.progress = {};
		page.set_primary_action(__("Sync All"), () => this.sync_all(), "refresh");
		page.add_inner_button(__("Settings"), () => frappe.set_route("Form", "Email Sync Settings"));
		page.add_inner_button(__("New Account"), () => frappe.new_doc("Email Sync Account"));
		page.add_inner_button(__("Response Times"), () => frappe.set_route("query-report", "Email Response Times"));
		this.$body = $(`<div class="email-sync-page">
			<div class="es-accounts" style="display:flex; flex-wrap:wrap; gap:12px; margin-bottom:20px"></div>
			<div class="es-review frappe-card" style="padding:14px; margin-bottom:20px"></div>
			<div class="es-recent frappe-card" style="padding:14px; margin-bottom:20px"></div>
			<div class="es-log frappe-card" style="padding:14px"></div>
		</div>`).appendTo(page.main);
		frappe.realtime.on("email_sync_progress", (data) => this.on_progress(data));
		this.refresh();
	}

	refresh() {
		return frappe.xcall("email_sync.desk.dashboard", { limit: 20 }).then((data) => {
			this.data = data;
			this.page.set_indicator(data.connected ? __("Connected") : __("Disconnected"), data.connected ? "green" : "red");
			this.render_accounts(data.accounts);
			this.render_emails(this.$body.find(".es-review"), __("Needs Review"), data.needs_review, true, data.needs_review_count);
			this.render_emails(this.$body.find(".es-recent"), __("Recent Synced Emails"), data.recent, false);
			this.render_log(data.log);
			data.accounts.forEach((a) => frappe.realtime.doc_subscribe("Email Sync Account", a.name));
		});
	}

	render_accounts(accounts) {
		const $wrap = this.$body.find(".es-accounts").empty();
		if (!accounts.length) {
			$wrap.html(`<div class="frappe-card" style="padding:16px">${__("No mailbox is connected yet.")}
				<a href="/app/email-sync-account/new">${__("Connect one")}</a></div>`);
			return;
		}
		accounts.forEach((a) => {
			const $card = $(`<div class="frappe-card es-account" data-account="${esc(a.name)}" style="padding:14px; width:320px">
				<div style="display:flex; align-items:center; gap:8px">
					<span class="indicator ${LIGHT[a.health]}" title="${esc(a.health_reason)}"></span>
					<b class="ellipsis" style="flex:1">${esc(a.email_address)}</b>
					${email_sync.badge(a.provider)}
				</div>
				<div class="text-muted small" style="margin:6px 0">${esc(a.status)} &middot; ${esc(a.frequency)}${a.shared ? "" : " &middot; " + __("private")}</div>
				<div class="small">${__("Last sync")}: <b>${a.last_sync ? frappe.datetime.comment_when(a.last_sync) : __("never")}</b></div>
				<div class="small">${__("Emails synced")}: <b>${a.emails_synced || 0}</b> &middot; ${__("Errors")}: <b>${a.error_count || 0}</b></div>
				<div class="small es-health" style="margin-top:6px; color:var(--${LIGHT[a.health]}-600, inherit)">${esc(a.health_reason)}
					${a.health_fix ? `<div class="text-muted">${esc(a.health_fix)}</div>` : ""}</div>
				<div class="es-progress small text-muted" style="margin-top:6px"></div>
				<div style="margin-top:10px; display:flex; gap:6px">
					<button class="btn btn-xs btn-default es-sync">${__("Sync Now")}</button>
					<a class="btn btn-xs btn-default" href="/app/email-sync-account/${encodeURIComponent(a.name)}">${__("Open")}</a>
				</div></div>`);
			$card.find(".es-sync").on("click", () =>
				frappe.xcall("email_sync.api.sync_now", { account: a.name }).then(() => {
					$card.find(".es-progress").text(__("Sync queued…"));
				})
			);
			$wrap.append($card);
		});
	}

	render_emails($section, title, rows, review, total) {
		$section.empty();
		const count = total != null ? ` <span class="badge">${total}</span>` : "";
		const bulk = review
			? `<button class="btn btn-xs btn-default es-bulk-assign">${__("Assign to Customer")}</button>
			   <button class="btn btn-xs btn-default es-bulk-issues">${__("Create Issues")}</button>
			   <button class="btn btn-xs btn-default es-bulk-ignore">${__("Ignore Senders")}</button>`
			: `<button class="btn btn-xs btn-default es-bulk-issues">${__("Create Issues")}</button>`;
		$section.append(`<div style="display:flex; align-items:center; gap:8px; margin-bottom:10px">
			<h5 style="margin:0">${title}${count}</h5><span style="margin-left:auto" class="es-bulk">${bulk}</span></div>`);
		if (!rows.length) {
			$section.append(`<p class="text-muted">${review ? __("Nothing needs review.") : __("No emails synced yet.")}</p>`);
			return;
		}
		const $table = $(`<table class="table table-sm es-table" style="margin:0"><thead><tr>
			<th style="width:24px"><input type="checkbox" class="es-all"></th><th>${__("From")}</th><th>${__("Subject")}</th>
			<th>${__("Date")}</th><th>${__("Customer Match")}</th><th>${__("Status")}</th><th>${__("Actions")}</th>
			</tr></thead><tbody></tbody></table>`);
		rows.forEach((row) => $table.find("tbody").append(this.email_row(row, review)));
		$table.find(".es-all").on("change", (e) => $table.find(".es-pick").prop("checked", e.target.checked));
		$section.append($table);
		const picked = () => $table.find(".es-pick:checked").map((_, el) => $(el).data("name")).get();
		$section.find(".es-bulk-issues").on("click", () => this.create_issues(picked()));
		$section.find(".es-bulk-assign").on("click", () => this.assign(picked()));
		$section.find(".es-bulk-ignore").on("click", () => this.ignore(picked()));
	}

	email_row(row, review) {
		const customers = (row.matched_customers || "").split("\n").filter(Boolean);
		const match = customers.length
			? `${customers.map(esc).join(", ")} <span class="text-muted small">${row.confidence || 0}%</span>`
			: `<span class="text-muted">${__("No match")}</span>`;
		const $tr = $(`<tr data-name="${esc(row.name)}">
			<td><input type="checkbox" class="es-pick" data-name="${esc(row.name)}"></td>
			<td class="ellipsis" style="max-width:200px" title="${esc(row.sender)}">${email_sync.direction_arrow(row.direction === "Outbound" ? "out" : "in")} ${esc(row.sender_name || row.sender)}</td>
			<td class="ellipsis" style="max-width:280px" title="${esc(row.reason)}">${esc(row.subject)}</td>
			<td class="text-muted small" style="white-space:nowrap">${row.email_date ? frappe.datetime.comment_when(row.email_date) : ""}</td>
			<td>${match}</td>
			<td><span class="indicator-pill ${STATUS_COLOR[row.status] || "gray"}" title="${esc(row.reason)}">${esc(__(row.status))}</span></td>
			<td style="white-space:nowrap" class="es-actions"></td></tr>`);
		const $actions = $tr.find(".es-actions");
		const button = (label, action) =>
			$(`<button class="btn btn-xs btn-default" style="margin-right:4px">${label}</button>`).on("click", action).appendTo($actions);
		if (row.communication) button(__("View"), () => email_sync.open_email(row.communication));
		if (review) {
			button(__("Assign to Customer"), () => this.assign([row.name]));
			button(__("Create Customer"), () => this.create_customer(row));
			button(__("Ignore sender"), () => this.ignore([row.name]));
		}
		if (row.issue) {
			$actions.append(`<a class="btn btn-xs btn-default" href="/app/issue/${encodeURIComponent(row.issue)}">${esc(row.issue)}</a>`);
		} else if (row.status === "Filed" || review) {
			button(__("Create Issue"), () => this.create_issues([row.name]));
		}
		return $tr;
	}

	render_log(log) {
		const $log = this.$body.find(".es-log").empty().append(`<h5>${__("Sync Log")}</h5>`);
		if (!log.length) return $log.append(`<p class="text-muted">${__("No sync has run yet.")}</p>`);
		const color = { Success: "green", Partial: "orange", Failed: "red", Running: "blue", Skipped: "gray" };
		log.forEach((l) => {
			$log.append(`<div class="es-log-row" style="padding:6px 0; border-bottom:1px solid var(--border-color)">
				<span class="indicator-pill ${color[l.status] || "gray"}">${esc(__(l.status))}</span>
				<b>${esc(l.account)}</b> <span class="text-muted small">${frappe.datetime.comment_when(l.started)} &middot; ${esc(l.triggered_by || "")}</span>
				<span class="small">&middot; ${__("{0} fetched, {1} filed, {2} skipped, {3} for review, {4} errors",
					[l.fetched || 0, l.filed || 0, l.skipped || 0, l.needs_review || 0, l.failed || 0])}</span>
				${l.error ? `<div class="small" style="color:var(--red-600)">${esc(l.error)}</div>` : ""}
				${l.fix ? `<div class="small text-muted">${__("What to do")}: ${esc(l.fix)}</div>` : ""}
			</div>`);
		});
	}

	on_progress(data) {
		const $card = this.$body.find(`.es-account[data-account="${CSS.escape(data.account)}"]`);
		if (data.done) {
			$card.find(".es-progress").empty();
			this.refresh();
			return;
		}
		const total = (data.fetched || 0) + (data.remaining || 0);
		const percent = total ? Math.round((100 * data.fetched) / total) : 0;
		$card.find(".es-progress").html(`<div class="progress" style="height:6px; margin-bottom:4px">
				<div class="progress-bar" style="width:${percent}%"></div></div>
			${__("{0} of {1}: {2} filed, {3} skipped, {4} for review", [data.fetched, total || "?", data.filed, data.skipped, data.needs_review])}`);
	}

	sync_all() {
		frappe.xcall("email_sync.api.sync_all").then((r) => {
			frappe.show_alert({ message: __("{0} syncs queued", [r.job_ids.length]), indicator: "blue" });
		});
	}

	done(message) {
		frappe.show_alert({ message, indicator: "green" });
		this.refresh();
	}

	assign(names) {
		if (!names.length) return frappe.msgprint(__("Select emails first."));
		const dialog = new frappe.ui.Dialog({
			title: __("Assign {0} email(s) to a Customer", [names.length]),
			fields: [
				{ fieldname: "customer", fieldtype: "Link", options: "Customer", label: __("Customer"), reqd: 1 },
				{
					fieldname: "contact", fieldtype: "Link", options: "Contact", label: __("Contact"),
					description: __("Empty: the sender's address becomes a Contact of the Customer (or is added to theirs)."),
					get_query: () => ({ filters: { link_doctype: "Customer", link_name: dialog.get_value("customer") } }),
				},
			],
			primary_action_label: __("Assign"),
			primary_action: (values) =>
				frappe.xcall("email_sync.api.assign_to_customer", { names, customer: values.customer, contact: values.contact })
					.then((r) => { dialog.hide(); this.done(__("{0} email(s) filed on {1}", [r.length, values.customer])); }),
		});
		dialog.show();
	}

	create_customer(row) {
		frappe.xcall("email_sync.api.customer_prefill", { name: row.name }).then((prefill) => {
			const dialog = new frappe.ui.Dialog({
				title: __("Create Customer from {0}", [row.sender]),
				fields: [{ fieldname: "customer_name", fieldtype: "Data", label: __("Customer Name"), reqd: 1, default: prefill.customer_name },
					{ fieldtype: "HTML", options: prefill.email_sync_domains
						? `<p class="text-muted small">${__("Email domain {0} will be listed on the Customer.", [esc(prefill.email_sync_domains)])}</p>` : "" }],
				primary_action_label: __("Create and Assign"),
				primary_action: (values) =>
					frappe.xcall("email_sync.api.create_customer", { name: row.name, customer_name: values.customer_name })
						.then((customer) => { dialog.hide(); this.done(__("Customer {0} created; email filed", [customer])); }),
			});
			dialog.show();
		});
	}

	create_issues(names) {
		if (!names.length) return frappe.msgprint(__("Select emails first."));
		frappe.xcall("email_sync.api.create_issues", { names }).then((issues) => this.done(__("Issues: {0}", [issues.join(", ")])));
	}

	ignore(names) {
		if (!names.length) return frappe.msgprint(__("Select emails first."));
		frappe.confirm(__("Blacklist the sender of {0} email(s)? Their mail will be skipped from now on.", [names.length]), () =>
			frappe.xcall("email_sync.api.ignore_senders", { names }).then((r) => this.done(__("{0} sender(s) ignored", [r.length])))
		);
	}
}
