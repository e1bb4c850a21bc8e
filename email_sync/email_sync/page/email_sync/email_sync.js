// The Email Sync page: is sync healthy, what needs attention, what happened.

frappe.pages["email-sync"].on_page_load = (wrapper) => {
	const page = frappe.ui.make_app_page({ parent: wrapper, title: __("Email Sync"), single_column: true });
	wrapper.email_sync_page = new email_sync.SyncPage(page);
};

// Shown the first time right after on_page_load, then every time the user comes back to the page.
frappe.pages["email-sync"].on_page_show = (wrapper) => wrapper.email_sync_page && wrapper.email_sync_page.refresh();

// emails_section.js (badges, the email viewer) is appended after this file by the page_js hook.
window.email_sync = window.email_sync || {};

// In a function scope: the desk evaluates page scripts as global scripts, where top-level names would clash.
(() => {
	const esc = (value) => frappe.utils.escape_html(value == null ? "" : String(value));
	const LIGHT = { green: "green", yellow: "yellow", red: "red" };
	const TEXT_COLOR = { green: "var(--green-600)", yellow: "var(--yellow-700, var(--orange-600))", red: "var(--red-600)" };
	const STATUS_COLOR = { Filed: "green", Skipped: "gray", "Needs Review": "orange", Error: "red" };
	const LOG_COLOR = { Success: "green", Partial: "orange", Failed: "red", Running: "blue", Skipped: "gray" };
	const filed_on = (n, where) => (n === 1 ? __("1 email filed on {0}", [where]) : __("{0} emails filed on {1}", [n, where]));
	const CARDS = 8; // accounts shown before "Show all": those needing attention first
	const CLAMP = (lines) =>
		`display:-webkit-box; -webkit-line-clamp:${lines}; -webkit-box-orient:vertical; overflow:hidden; overflow-wrap:anywhere`;

	// Problems first, then healthy accounts, then those deliberately not syncing; alphabetical within each.
	const rank = (a) => {
		if (["Paused", "Draft", "Disconnected"].includes(a.status)) return 3;
		if (a.health === "red") return 0;
		return a.health === "yellow" ? 1 : 2;
	};

	email_sync.SyncPage = class SyncPage {
		constructor(page) {
			this.page = page;
			this.show_all = false;
			this.filter = "";
			this.pinned = new Set(); // accounts the user synced from here stay on screen whatever their rank
			this.subscribed = new Set();
			// Reviewers (Email Sync Reviewer) triage Needs Review here; running and setting up sync is for admins.
			if (frappe.user.has_role("System Manager")) {
				page.set_primary_action(__("Sync All"), () => this.sync_all(), "refresh");
				page.add_inner_button(__("Settings"), () => frappe.set_route("Form", "Email Sync Settings"));
				page.add_inner_button(__("New Account"), () => frappe.new_doc("Email Sync Account"));
			}
			page.add_inner_button(__("Response Times"), () => frappe.set_route("query-report", "Email Response Times"));
			this.$body = $(`<div class="email-sync-page">
				<style>.email-sync-page .es-subject:hover { text-decoration: underline; }</style>
				<div class="es-review frappe-card" style="padding:14px; margin-bottom:20px"></div>
				<div class="es-accounts-head" style="display:flex; align-items:center; gap:12px; margin-bottom:10px; min-height:28px">
					<h5 style="margin:0">${__("Accounts")}</h5>
					<span class="es-accounts-summary small text-muted"></span>
					<input type="search" class="form-control input-xs es-account-filter hidden"
						placeholder="${__("Filter accounts")}" style="margin-left:auto; width:240px">
				</div>
				<div class="es-accounts" style="display:grid; grid-template-columns:repeat(auto-fill, minmax(280px, 1fr)); gap:12px"></div>
				<div class="es-accounts-more" style="margin:8px 0 20px"></div>
				<div class="es-recent frappe-card" style="padding:14px; margin-bottom:20px"></div>
				<div class="es-log frappe-card" style="padding:14px"></div>
			</div>`).appendTo(page.main);
			this.$body.find(".es-account-filter").on("input", (e) => {
				this.filter = e.target.value.trim().toLowerCase();
				this.render_accounts();
			});
			frappe.realtime.on("email_sync_progress", (data) => this.on_progress(data));
			// Rooms are per connection: join them again when Socket.IO reconnects.
			if (frappe.realtime.socket) frappe.realtime.socket.on("connect", () => this.resubscribe());
		}

		refresh() {
			return frappe.xcall("email_sync.desk.dashboard", { limit: 20 }).then((data) => {
				this.data = data;
				this.rows = new Map([...data.needs_review, ...data.recent].map((row) => [row.name, row]));
				const picked = new Set(this.$body.find(".es-pick:checked").map((_, el) => $(el).data("name")).get());
				this.page.set_indicator(data.connected ? __("Connected") : __("Disconnected"), data.connected ? "green" : "red");
				this.render_accounts();
				this.render_emails(this.$body.find(".es-review"), __("Needs Review"), data.needs_review, true, data.needs_review_count, picked);
				this.render_emails(this.$body.find(".es-recent"), __("Recent Synced Emails"), data.recent, false, null, picked);
				this.render_log(data.log);
			});
		}

		// A sync that ends refreshes the page; many ending together (the scheduler's round) refresh it once.
		refresh_soon() {
			clearTimeout(this.refresh_timer);
			this.refresh_timer = setTimeout(() => this.refresh(), 800);
		}

		render_accounts() {
			const accounts = (this.data && this.data.accounts) || [];
			const $wrap = this.$body.find(".es-accounts").empty();
			const $more = this.$body.find(".es-accounts-more").empty();
			this.$body.find(".es-account-filter").toggleClass("hidden", accounts.length <= CARDS);
			this.render_summary(accounts);
			if (!accounts.length) {
				$wrap.html(`<div class="frappe-card" style="padding:16px; grid-column:1 / -1">${__("No mailbox is connected yet.")}
					<a href="/app/email-sync-account/new">${__("Connect one")}</a></div>`);
				return;
			}
			const matching = accounts
				.filter((a) => !this.filter || [a.email_address, a.provider, a.status].some((v) => (v || "").toLowerCase().includes(this.filter)))
				.sort((a, b) => rank(a) - rank(b) || a.email_address.localeCompare(b.email_address));
			let shown = matching;
			if (!this.show_all && !this.filter && matching.length > CARDS) {
				shown = matching.slice(0, CARDS);
				shown.push(...matching.slice(CARDS).filter((a) => this.pinned.has(a.name)));
			}
			if (!matching.length) {
				$wrap.html(`<p class="text-muted" style="grid-column:1 / -1; margin:0">${__("No account matches {0}.", [esc(this.filter)])}</p>`);
			}
			shown.forEach((a) => $wrap.append(this.account_card(a)));
			if (!this.filter && matching.length > CARDS) {
				const label = this.show_all ? __("Show fewer accounts") : __("Show all {0} accounts", [matching.length]);
				$(`<button class="btn btn-xs btn-default es-show-all">${label}</button>`)
					.on("click", () => {
						this.show_all = !this.show_all;
						this.render_accounts();
					})
					.appendTo($more);
			}
			this.subscribe(shown.map((a) => a.name));
		}

		render_summary(accounts) {
			const count = (test) => accounts.filter(test).length;
			const parts = [
				[count((a) => rank(a) === 0), __("in error"), "red"],
				[count((a) => rank(a) === 1), __("need attention"), "yellow"],
				[count((a) => rank(a) === 2), __("healthy"), "green"],
				[count((a) => rank(a) === 3), __("not syncing"), "gray"],
			].filter(([n]) => n);
			this.$body.find(".es-accounts-summary").html(
				parts.map(([n, label, color]) => `<span class="indicator ${color}" style="margin-right:12px">${n} ${label}</span>`).join("")
			);
		}

		account_card(a) {
			// Paused, Draft or Disconnected on purpose: gray, not a warning (the summary counts them "not syncing").
			const light = rank(a) === 3 ? "gray" : LIGHT[a.health] || "gray";
			const color = rank(a) === 3 ? "var(--text-muted)" : TEXT_COLOR[a.health] || "inherit";
			const $card = $(`<div class="frappe-card es-account" data-account="${esc(a.name)}"
					style="padding:12px 14px; display:flex; flex-direction:column; gap:4px; min-width:0">
				<div style="display:flex; align-items:center; gap:8px; min-width:0">
					<span class="indicator ${light} es-light" title="${esc(a.health_reason)}"></span>
					<b class="ellipsis" style="flex:1; min-width:0" title="${esc(a.email_address)}">${esc(a.email_address)}</b>
					${email_sync.badge(a.provider)}
				</div>
				<div class="text-muted small">${esc(__(a.status))} &middot; ${esc(__(a.frequency))}${a.shared ? "" : " &middot; " + __("private")}${
					a.store_mode && a.store_mode !== "Full email" ? " &middot; " + esc(__(a.store_mode)) : ""}</div>
				<div class="small">${__("Last sync")}: <b>${a.last_sync ? frappe.datetime.comment_when(a.last_sync) : __("never")}</b>
					&middot; ${__("{0} filed", [`<b>${a.emails_synced || 0}</b>`])}
					${a.error_count ? `&middot; <span style="color:var(--red-600)">${a.error_count === 1 ? __("1 error") : __("{0} errors", [a.error_count])}</span>` : ""}</div>
				<div class="small es-health" style="color:${color}; ${CLAMP(2)}" title="${esc(a.health_reason)}">${esc(a.health_reason)}</div>
				${a.health_fix ? `<div class="small text-muted" style="${CLAMP(2)}" title="${esc(a.health_fix)}">${esc(a.health_fix)}</div>` : ""}
				<div class="es-progress small text-muted"></div>
				${frappe.user.has_role("System Manager") ? `<div style="margin-top:auto; padding-top:6px; display:flex; gap:6px">
					${["Draft", "Disconnected"].includes(a.status) ? "" : `<button class="btn btn-xs btn-default es-sync">${__("Sync Now")}</button>`}
					<a class="btn btn-xs btn-default" href="/app/email-sync-account/${encodeURIComponent(a.name)}">${
						a.status === "Draft" ? __("Finish setup") : __("Open")}</a>
				</div>` : ""}</div>`);
			const progress = this.progress_of(a.name);
			if (progress) $card.find(".es-progress").html(progress);
			$card.find(".es-sync").on("click", () => this.sync_now(a.name));
			return $card;
		}

		sync_now(account) {
			this.pinned.add(account);
			this.subscribe([account]);
			this.progress = Object.assign(this.progress || {}, { [account]: { queued: true } });
			this.card(account).find(".es-progress").html(this.progress_of(account));
			frappe.xcall("email_sync.api.sync_now", { account }).catch(() => {
				delete this.progress[account];
				this.card(account).find(".es-progress").empty();
			});
		}

		card(account) {
			return this.$body.find(`.es-account[data-account="${CSS.escape(account)}"]`);
		}

		// frappe.realtime.doc_subscribe takes one document a second and drops the rest, so a page watching
		// several accounts asks the Socket.IO server itself; each room is joined once per connection.
		subscribe(names) {
			names.forEach((name) => {
				if (this.subscribed.has(name)) return;
				this.subscribed.add(name);
				frappe.realtime.emit("doc_subscribe", "Email Sync Account", name);
			});
		}

		resubscribe() {
			const names = [...this.subscribed];
			this.subscribed.clear();
			this.subscribe(names);
		}

		render_emails($section, title, rows, review, total, picked) {
			$section.empty();
			const count = total != null ? ` <span class="text-muted" style="font-weight:normal">(${total})</span>` : "";
			const may = this.may();
			const bulk = [
				review && may.assign ? `<button class="btn btn-xs btn-default es-bulk-assign">${__("Assign to Customer")}</button>` : "",
				may.issue ? `<button class="btn btn-xs btn-default es-bulk-issues">${__("Create Issues")}</button>` : "",
				review && may.ignore ? `<button class="btn btn-xs btn-default es-bulk-ignore">${__("Ignore Senders")}</button>` : "",
			].join("");
			$section.append(`<div style="display:flex; align-items:center; gap:8px; margin-bottom:10px">
				<h5 style="margin:0">${title}${count}</h5>
				<span class="es-bulk small text-muted" style="margin-left:auto; display:flex; align-items:center; gap:6px">
					${rows.length && bulk ? `<span class="es-bulk-hint">${__("With selected:")}</span>` : ""}${bulk}</span></div>`);
			if (review && rows.length) $section.append(this.missing_rights(may));
			if (!rows.length) {
				$section.find(".es-bulk").addClass("hidden");
				$section.append(`<p class="text-muted" style="margin:0">${review ? __("Nothing needs review.") : __("No emails synced yet.")}</p>`);
				return;
			}
			// Needs Review rows are all "Needs Review": that table shows why instead of a Status column.
			const columns = [
				["", "32px", `<input type="checkbox" class="es-all" title="${__("Select all")}">`],
				[__("From"), "20%"],
				[__("Subject"), ""],
				[__("Date"), "110px"],
				[__("Customer Match"), review ? "14%" : "17%"],
				...(review ? [] : [[__("Status"), "140px"]]),
				[__("Actions"), review ? "330px" : "150px"],
			];
			const $table = $(`<div style="overflow-x:auto"><table class="table table-sm es-table" style="margin:0; table-layout:fixed; min-width:1000px">
				<colgroup>${columns.map(([, width]) => `<col${width ? ` style="width:${width}"` : ""}>`).join("")}</colgroup>
				<thead><tr>${columns.map(([label, , html]) => `<th>${html || label}</th>`).join("")}</tr></thead>
				<tbody></tbody></table></div>`);
			rows.forEach((row) => $table.find("tbody").append(this.email_row(row, review, picked, may)));
			$table.find("th, td").css("vertical-align", "middle");
			$table.find(".es-all").on("change", (e) => $table.find(".es-pick").prop("checked", e.target.checked));
			$section.append($table);
			const selected = () => $table.find(".es-pick:checked").map((_, el) => $(el).data("name")).get();
			$section.find(".es-bulk-issues").on("click", () => this.create_issues(selected()));
			$section.find(".es-bulk-assign").on("click", () => this.assign(selected()));
			$section.find(".es-bulk-ignore").on("click", () => this.ignore(selected()));
		}

		email_row(row, review, picked, may) {
			const customers = (row.matched_customers || "").split("\n").filter(Boolean);
			// An address Contacts of several Customers share: the candidates, each a click away
			const candidates = review && row.candidates && row.candidates.length ? row.candidates : null;
			const filing = candidates && may.assign; // File on <Customer> writes that Customer
			const match = candidates
				? `<span class="ellipsis es-shared-match" style="display:block" title="${esc(__("Address shared by these Customers"))}">${
					candidates.map((c) => esc(c.customer_name)).join(` <span class="text-muted small">${__("or")}</span> `)}</span>`
				: customers.length
				? `<span class="ellipsis" style="display:block" title="${esc(customers.join(", "))}">${customers.map(esc).join(", ")}
					<span class="text-muted small">${row.confidence || 0}%</span></span>`
				: `<span class="text-muted">${__("No match")}</span>`;
			const direction = row.direction === "Outbound" ? "out" : "in";
			const $tr = $(`<tr data-name="${esc(row.name)}">
				<td><input type="checkbox" class="es-pick" data-name="${esc(row.name)}" ${picked && picked.has(row.name) ? "checked" : ""}></td>
				<td><div class="ellipsis" title="${esc(row.sender)}">${email_sync.direction_arrow(direction)} ${esc(row.sender_name || row.sender)}</div>
					${row.sender_name && row.sender ? `<div class="ellipsis small text-muted" style="padding-left:14px">${esc(row.sender)}</div>` : ""}</td>
				<td><div class="ellipsis"><a class="es-subject" style="color:inherit" title="${esc(row.communication ? __("Open the email") : row.subject)}">${esc(row.subject || __("(no subject)"))}</a></div>
					${review && row.reason ? `<div class="small text-muted ${candidates ? "" : "ellipsis"}" style="${candidates ? CLAMP(2) : ""}"
						title="${esc(row.reason)}">${esc(row.reason)}</div>` : ""}
					${review && (row.mailboxes || "").includes("\n") ? `<div class="small text-muted es-mailboxes" style="${CLAMP(3)}" title="${esc(row.mailboxes.split("\n").join(", "))}">
						${__("In {0} mailboxes: {1}", [row.mailboxes.split("\n").length, esc(row.mailboxes.split("\n").join(", "))])}</div>` : ""}
					${filing ? this.candidate_buttons(candidates) : ""}
					${review && may.assign ? this.namesake_buttons(row) : ""}</td>
				<td class="text-muted small" style="white-space:nowrap" title="${esc(row.email_date ? frappe.datetime.str_to_user(row.email_date) : "")}">
					${row.email_date ? frappe.datetime.comment_when(row.email_date) : ""}</td>
				<td>${match}</td>
				${review ? "" : `<td><span class="indicator-pill ${STATUS_COLOR[row.status] || "gray"}" title="${esc(row.reason)}">${esc(__(row.status))}</span></td>`}
				<td class="es-actions" style="white-space:nowrap"></td></tr>`);
			if (row.communication) {
				$tr.find(".es-subject").attr("role", "button").css("cursor", "pointer")
					.on("click", () => email_sync.open_email(row.communication));
			}
			$tr.find(".es-file-on").on("click", (e) => this.file_shared([row.name], e.currentTarget.getAttribute("data-customer"),
				e.currentTarget.getAttribute("data-label")));
			$tr.find(".es-file-all").on("click", () => this.file_shared([row.name], null));
			$tr.find(".es-add-address").on("click", (e) => this.add_address(row, e.currentTarget.getAttribute("data-contact")));
			const $actions = $tr.find(".es-actions");
			const button = (label, action, cls) =>
				$(`<button class="btn btn-xs btn-default ${cls}" style="margin-right:4px">${label}</button>`).on("click", action).appendTo($actions);
			if (review) {
				if (may.assign) button(__("Assign"), () => this.assign([row.name]), "es-assign").attr("title", __("Assign to Customer"));
				if (may.customer) button(__("New Customer"), () => this.create_customer(row), "es-create-customer").attr("title", __("Create Customer"));
				if (may.ignore) button(__("Ignore"), () => this.ignore([row.name]), "es-ignore").attr("title", __("Ignore sender"));
			}
			if (row.issue) {
				$actions.append(`<a class="btn btn-xs btn-default" href="/app/issue/${encodeURIComponent(row.issue)}">${esc(row.issue)}</a>`);
			} else if (may.issue && (row.status === "Filed" || review)) {
				button(__("Issue"), () => this.create_issues([row.name]), "es-create-issue").attr("title", __("Create Issue"));
			}
			return $tr;
		}

		// A new address named like a Contact of its Customer: one click puts it on that Contact (one of them).
		namesake_buttons(row) {
			const [rule, address] = (row.decision_rule || "").split(/:(.*)/s);
			if (rule !== "namesake" || !address) return "";
			const contacts = (row.matched_contacts || "").split("\n").filter(Boolean).slice(0, 3);
			return `<div class="es-namesakes small" style="display:flex; flex-wrap:wrap; gap:4px 8px; margin-top:4px">${contacts
				.map((contact) => `<button class="btn btn-xs btn-default es-add-address" data-contact="${esc(contact)}"
					style="max-width:320px; overflow:hidden; text-overflow:ellipsis; white-space:nowrap"
					title="${esc(__("Add {0} to Contact {1} and file the email there", [address, contact]))}">${esc(__("Add address to {0}", [contact]))}</button>`)
				.join("")}</div>`;
		}

		add_address(row, contact) {
			frappe.xcall("email_sync.api.add_address_to_contact", { names: [row.name], contact }).then(() =>
				this.done(__("Address added to {0}; email filed", [esc(contact)]))
			);
		}

		candidate_buttons(candidates) {
			const each = candidates.map((c) => `<span class="es-candidate" style="display:inline-flex; align-items:center; gap:4px; min-width:0">
				<button class="btn btn-xs btn-default es-file-on" data-customer="${esc(c.customer)}" data-label="${esc(c.customer_name)}"
					style="max-width:240px; overflow:hidden; text-overflow:ellipsis" title="${esc(__("File on {0}", [c.customer_name]))}">${
					esc(__("File on {0}", [c.customer_name]))}</button>
				${c.contacts.length ? `<span class="text-muted ellipsis" style="max-width:200px">${c.contacts.map((p) => esc(p.full_name)).join(", ")}</span>` : ""}
			</span>`);
			return `<div class="es-candidates small" style="display:flex; flex-wrap:wrap; align-items:center; gap:4px 12px; margin-top:4px">
				${each.join("")}<button class="btn btn-xs btn-default es-file-all" title="${esc(__("File on every Customer sharing the address"))}">${__("File on all")}</button></div>`;
		}

		render_log(log) {
			const $log = this.$body.find(".es-log").empty().append(`<h5 style="margin-bottom:10px">${__("Sync Log")}</h5>`);
			if (!log.length) return $log.append(`<p class="text-muted" style="margin:0">${__("No sync has run yet.")}</p>`);
			log.forEach((l) => {
				$log.append(`<div class="es-log-row" data-log="${esc(l.name)}" style="padding:6px 0; border-bottom:1px solid var(--border-color)">
					<div style="display:flex; align-items:center; gap:8px; flex-wrap:wrap">
						<span class="indicator-pill ${LOG_COLOR[l.status] || "gray"}" style="min-width:72px; justify-content:center">${esc(__(l.status))}</span>
						<a class="es-log-account" href="/app/email-sync-account/${encodeURIComponent(l.account)}"><b>${esc(l.account)}</b></a>
						<span class="small es-log-summary">${this.log_summary(l)}</span>
						<span class="text-muted small" style="margin-left:auto; white-space:nowrap">${esc(__(l.triggered_by || ""))}
							&middot; ${frappe.datetime.comment_when(l.started)}</span>
					</div>
					${l.error ? `<div class="small" style="color:var(--red-600); margin-top:2px; ${CLAMP(2)}" title="${esc(l.error)}">${esc(l.error)}</div>` : ""}
					${l.fix ? `<div class="small text-muted" style="${CLAMP(2)}">${__("What to do")}: ${esc(l.fix)}</div>` : ""}
				</div>`);
			});
		}

		// What a run did, in words: counts that are zero are left out, and a failed run says it failed first.
		log_summary(l) {
			const parts = [
				[l.fetched, __("{0} fetched", [l.fetched])],
				[l.filed, __("{0} filed", [l.filed])],
				[l.skipped, __("{0} skipped", [l.skipped])],
				[l.needs_review, __("{0} for review", [l.needs_review])],
				[l.failed, l.failed === 1 ? __("1 email could not be read") : __("{0} emails could not be read", [l.failed])],
			].filter(([n]) => n).map(([, text]) => text);
			if (l.status === "Failed") {
				return `<b>${__("The sync failed")}</b>${parts.length ? ` &middot; ${__("before that: {0}", [parts.join(", ")])}` : ""}`;
			}
			if (l.status === "Running") return parts.length ? parts.join(", ") : __("Running…");
			return parts.length ? parts.join(", ") : __("No new mail");
		}

		progress_of(account) {
			const data = this.progress && this.progress[account];
			if (!data) return "";
			if (data.queued) return __("Sync queued…");
			const total = (data.fetched || 0) + (data.remaining || 0);
			const percent = total ? Math.round((100 * data.fetched) / total) : 0;
			return `<div class="progress" style="height:6px; margin:4px 0"><div class="progress-bar" style="width:${percent}%"></div></div>
				${__("{0} of {1}: {2} filed, {3} skipped, {4} for review", [data.fetched || 0, total || "?", data.filed || 0, data.skipped || 0, data.needs_review || 0])}`;
		}

		on_progress(data) {
			this.progress = this.progress || {};
			if (data.done) {
				delete this.progress[data.account];
				this.card(data.account).find(".es-progress").empty();
				this.refresh_soon();
				return;
			}
			this.progress[data.account] = data;
			this.card(data.account).find(".es-progress").html(this.progress_of(data.account));
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

		// The actions this user may take (the server checks the same rights): a button that can only answer
		// "Not permitted" is not offered. A Support Team reviewer, for one, may create Issues but not Customers.
		may() {
			return {
				// Filing writes the Customer's Contact (every role may edit the Contacts it owns, so the Customer decides)
				assign: frappe.model.can_write("Customer") && frappe.model.can_write("Contact"),
				customer: frappe.model.can_create("Customer"),
				ignore: frappe.model.can_create("Email Sync Blacklist"),
				issue: frappe.model.can_create("Issue"),
			};
		}

		// Says who can do what this user cannot, so a reviewer knows whom to ask.
		missing_rights(may) {
			const lines = [];
			if (!may.assign || !may.customer) {
				lines.push(__("Assigning an email to a Customer, or creating the Customer, needs the right to edit Customers (the Sales User role)."));
			}
			if (!may.ignore) lines.push(__("Ignoring a sender (blacklisting it) is for System Managers."));
			if (!may.issue) lines.push(__("Creating Issues needs the Support Team role."));
			return lines.length
				? `<p class="es-missing-rights small text-muted" style="margin:0 0 8px">${lines.map(esc).join(" ")}</p>`
				: "";
		}

		assign(names) {
			if (!names.length) return frappe.msgprint(__("Select emails first."));
			const dialog = new frappe.ui.Dialog({
				title: names.length === 1 ? __("Assign email to a Customer") : __("Assign {0} emails to a Customer", [names.length]),
				fields: [
					{ fieldtype: "HTML", fieldname: "emails", options: this.which_emails(names) },
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
						.then((r) => { dialog.hide(); this.done(filed_on(r.length, esc(values.customer))); }),
			});
			dialog.show();
		}

		// Which email a dialog acts on: subject, sender and date (the first few of several).
		which_emails(names) {
			const shown = names.slice(0, 5).map((name) => (this.rows && this.rows.get(name)) || { name });
			const line = (row) => `<div class="es-which" style="padding:6px 10px; border-bottom:1px solid var(--border-color)">
				<div class="ellipsis"><b>${esc(row.subject || __("(no subject)"))}</b></div>
				<div class="small text-muted ellipsis">${esc(row.sender_name ? `${row.sender_name} <${row.sender}>` : row.sender || "")}${
					row.email_date ? ` &middot; ${esc(frappe.datetime.str_to_user(row.email_date))}` : ""}</div></div>`;
			const more = names.length > shown.length
				? `<div class="small text-muted" style="padding:6px 10px">${__("and {0} more", [names.length - shown.length])}</div>` : "";
			return `<div class="es-assign-emails" style="border:1px solid var(--border-color); border-radius:6px; margin-bottom:12px">
				${shown.map(line).join("")}${more}</div>`;
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

		file_shared(names, customer, label) {
			frappe.xcall("email_sync.api.file_shared", { names, customer: customer || "" }).then((r) =>
				this.done(customer ? filed_on(r.length, esc(label)) : r.length === 1
					? __("1 email filed on every Customer sharing the address") : __("{0} emails filed on every Customer sharing the address", [r.length]))
			);
		}

		ignore(names) {
			if (!names.length) return frappe.msgprint(__("Select emails first."));
			const question = names.length === 1
				? __("Blacklist the sender of this email? Their mail will be skipped from now on.")
				: __("Blacklist the senders of {0} emails? Their mail will be skipped from now on.", [names.length]);
			frappe.confirm(question, () =>
				frappe.xcall("email_sync.api.ignore_senders", { names })
					.then((r) => this.done(r.length === 1 ? __("1 sender ignored") : __("{0} senders ignored", [r.length])))
			);
		}
	};
})();
