// Copyright (c) 2026, Email Sync developers
// For license information, please see license.txt

frappe.ui.form.on("Email Sync Account", {
	onload(frm) {
		frm.email_sync_saved_store_mode = frm.doc.store_mode;
		frm.email_sync_saved_start_date = frm.doc.sync_start_date;
	},
	// Moving the start date before what is read brings that older mail in on save: ask first.
	sync_start_date(frm) {
		email_sync_account.confirm_backfill(frm);
	},
	// The usual port follows the security chosen, unless the admin typed another one.
	imap_security(frm) {
		const ports = { SSL: 993, STARTTLS: 143, None: 143 };
		if (!frm.doc.imap_port || Object.values(ports).includes(frm.doc.imap_port)) {
			frm.set_value("imap_port", ports[frm.doc.imap_security] || 993);
		}
	},
	after_save(frm) {
		email_sync_account.offer_to_strip(frm);
		frm.email_sync_saved_store_mode = frm.doc.store_mode;
		frm.email_sync_saved_start_date = frm.doc.sync_start_date;
	},
	refresh(frm) {
		if (frm.is_new()) return;
		email_sync_account.show_connect_error(frm);
		if (frm.doc.provider !== "IMAP" && frm.doc.mailbox_kind !== "Shared or delegated") {
			const label = frm.doc.connected_on ? __("Reconnect") : __("Connect");
			frm.add_custom_button(label, () => email_sync_account.connect(frm));
		}
		if (!["Draft", "Disconnected"].includes(frm.doc.status)) {
			// A Draft account cannot sync yet: its setup steps say what is missing instead
			frm.add_custom_button(__("Sync Now"), () => email_sync_account.sync_now(frm));
		}
		frm.add_custom_button(__("Test Connection"), () => email_sync_account.test_connection(frm));
		if (frm.doc.status !== "Disconnected") {
			frm.add_custom_button(__("Disconnect"), () => email_sync_account.disconnect(frm), __("Actions"));
		}
		if (!["Draft", "Disconnected"].includes(frm.doc.status)) {
			frm.add_custom_button(__("Import older mail"), () => email_sync_account.import_older_mail(frm), __("Actions"));
		}
		frm.add_custom_button(__("Import from file"), () => email_sync_account.import_file(frm), __("Actions"));
		// The form's message box appends: cleared first, so a refresh (two after the first save) draws it once.
		frm.dashboard.clear_headline();
		email_sync_account.show_health(frm);
		email_sync_account.show_setup_steps(frm);
		email_sync_account.listen_for_progress(frm);
		email_sync_account.listen_for_older_mail(frm);
	},
});

const email_sync_account = {
	STRICTNESS: { "Full email": 0, "Snippet only": 1, "Headers only": 2 },

	// A stricter Store mode applies to new mail; what is already stored is cut down only if the admin says so.
	offer_to_strip(frm) {
		const before = email_sync_account.STRICTNESS[frm.email_sync_saved_store_mode || "Full email"] || 0;
		if ((email_sync_account.STRICTNESS[frm.doc.store_mode] || 0) <= before) return;
		frappe.confirm(
			frm.doc.store_mode === "Snippet only"
				? __("New mail is now kept as snippets. Also cut the emails this account already stored down to their snippet, and delete their attached files?")
				: __("New mail now keeps headers only. Also remove the bodies, snippets and attached files of the emails this account already stored?"),
			() =>
				frappe.xcall("email_sync.api.strip_stored", { account: frm.doc.name }).then((r) =>
					frappe.show_alert({ message: __("Stripping {0} stored emails in the background.", [r.queued]), indicator: "blue" })
				)
		);
	},

	confirm_backfill(frm) {
		const covered = frm.doc.history_from || frm.email_sync_saved_start_date;
		const chosen = frm.doc.sync_start_date;
		if (!frm.doc.sync_cursor || !covered || !chosen || chosen >= covered) return;
		const fmt = (d) => frappe.datetime.str_to_user(d);
		frappe.confirm(
			__("When you save, the mail from {0} to {1} is brought in. It is filed on its Customers and Contacts as history: no Issues, no acknowledgements, no notifications. Go on?", [fmt(chosen), fmt(covered)]),
			() => {},
			() => frm.set_value("sync_start_date", frm.email_sync_saved_start_date)
		);
	},

	import_older_mail(frm) {
		const covered = frm.doc.history_from || frm.doc.sync_start_date;
		const folders = (frm.doc.folders || []).map((row) => row.folder_name).filter(Boolean);
		const dialog = new frappe.ui.Dialog({
			title: __("Import older mail"),
			fields: [
				{
					fieldtype: "HTML",
					options: `<p class="text-muted">${covered
						? __("Mail since {0} is already read. The older mail is read from the mailbox in the background and filed as history: no Issues, no acknowledgements, no notifications. Mail already filed is not filed again.", [frappe.datetime.str_to_user(covered)])
						: ""}</p>`,
				},
				{ fieldname: "since", fieldtype: "Date", label: __("From"), reqd: 1 },
				{
					fieldname: "folder",
					fieldtype: "Select",
					label: __("Folder"),
					options: [{ value: "", label: __("All folders this account syncs") }, ...folders.map((f) => ({ value: f, label: f }))],
				},
			],
			primary_action_label: __("Import"),
			primary_action(values) {
				frappe
					.xcall("email_sync.api.import_older_mail", { account: frm.doc.name, since: values.since, folder: values.folder || "" })
					.then((r) => {
						dialog.hide();
						frappe.show_alert({ message: __("Bringing in the mail from {0} to {1}…", [frappe.datetime.str_to_user(r.since), frappe.datetime.str_to_user(r.before)]), indicator: "blue" });
					});
			},
		});
		dialog.show();
	},

	import_file(frm) {
		new frappe.ui.FileUploader({
			doctype: frm.doctype,
			docname: frm.docname,
			dialog_title: __("Import mail from a file (.eml, .mbox or a .zip of those)"),
			restrictions: { allowed_file_types: [".eml", ".mbox", ".zip"] },
			allow_multiple: false,
			disable_file_browser: true, // a new upload, not a file already on the site
			make_attachments_public: false,
			on_success(file) {
				frappe
					.xcall("email_sync.api.import_upload", { account: frm.doc.name, file: file.name })
					.then((r) => frappe.show_alert({ message: __("Importing {0}…", [frappe.utils.escape_html(r.file_name)]), indicator: "blue" }));
			},
		});
	},

	listen_for_older_mail(frm) {
		if (frm.__email_sync_older_listening) return;
		frm.__email_sync_older_listening = true;
		frappe.realtime.on("email_sync_backfill_progress", (data) => {
			if (data.account !== frm.doc.name) return;
			const title = data.kind === "import" ? __("Importing mail") : __("Bringing in older mail");
			if (data.done) {
				frm.dashboard.hide_progress(title);
				const message = frappe.utils.escape_html(data.error ? `${data.summary} ${data.error}` : data.summary);
				frappe.show_alert({ message, indicator: data.error ? "red" : "green" }, 15);
				frm.reload_doc();
				return;
			}
			const done = data.fetched || 0;
			const total = done + (data.remaining || 0);
			frm.dashboard.show_progress(title, total ? (done / total) * 100 : 0,
				__("{0} read: {1} filed, {2} skipped, {3} for review, {4} already on the site", [
					done, data.filed, data.skipped, data.needs_review, data.already_synced,
				]));
		});
	},

	connect(frm) {
		const go = () =>
			frappe.xcall("email_sync.api.connect", { account: frm.doc.name }).then((r) => (window.location.href = r.url));
		frm.is_dirty() ? frm.save().then(go) : go();
	},

	show_connect_error(frm) {
		if (!frappe.utils.get_url_arg("connect_error")) return;
		frappe.xcall("email_sync.api.connect_error").then((message) => {
			if (message) frappe.msgprint({ title: __("Connect failed"), message: frappe.utils.escape_html(message), indicator: "red" });
		});
	},

	disconnect(frm) {
		const dialog = new frappe.ui.Dialog({
			title: __("Disconnect {0}", [frm.doc.email_address]),
			fields: [
				{
					fieldname: "what",
					fieldtype: "Select",
					label: __("Synced history"),
					options: [
						{ value: "keep", label: __("Keep the emails already filed (recommended)") },
						{ value: "erase", label: __("Erase everything this account synced") },
					],
					default: "keep",
					description: __("Erasing deletes this account's Synced Emails and the Communications and files that only it filed."),
				},
			],
			primary_action_label: __("Disconnect"),
			primary_action(values) {
				frappe
					.xcall("email_sync.api.disconnect", { account: frm.doc.name, erase: values.what === "erase" ? 1 : 0 })
					.then((r) => {
						dialog.hide();
						frappe.show_alert({
							message: values.what === "erase"
								? __("Disconnected; {0} Communications erased.", [r.communications_deleted || 0])
								: __("Disconnected; the synced history is kept."),
							indicator: "orange",
						});
						frm.reload_doc();
					});
			},
		});
		dialog.show();
	},

	sync_now(frm) {
		frappe
			.xcall("email_sync.api.sync_now", { account: frm.doc.name })
			.then(() => frappe.show_alert({ message: __("Sync started"), indicator: "blue" }))
			.catch(() => {}); // the server's message is already shown
	},

	// The server tests the saved settings: unsaved changes (a new port, another Security) are saved first.
	test_connection(frm) {
		const go = () => {
			const message = __("Connecting to {0}…", [frappe.utils.escape_html(email_sync_account.server_of(frm.doc))]);
			const started = Date.now();
			// A sign of life while the server waits on the mail server: the seconds counted up.
			const ticker = setInterval(() => {
				const seconds = Math.round((Date.now() - started) / 1000);
				$("#freeze .freeze-message .lead").text(`${$("<p>").html(message).text()} ${__("{0} s", [seconds])}`);
			}, 1000);
			frappe.call({
				method: "email_sync.api.test_connection",
				args: { account: frm.doc.name },
				type: "POST",
				freeze: true, // frappe.xcall takes no freeze: frappe.call does
				freeze_message: message,
				always: () => clearInterval(ticker),
				callback: ({ message: r }) => {
					if (!r.connected) {
						frappe.msgprint({ title: __("Connection failed"), message: frappe.utils.escape_html(r.message), indicator: "red" });
						return;
					}
					email_sync_account.offer_folders(frm, r);
				},
			});
		};
		frm.is_dirty() ? frm.save().then(go) : go();
	},

	server_of(d) {
		if (d.provider === "IMAP" || d.mail_access === "IMAP (XOAUTH2)") {
			const port = d.imap_port || (d.imap_security === "SSL" ? 993 : 143);
			return `${d.imap_host || d.email_address}:${port}`;
		}
		return d.provider === "Gmail" ? "Gmail" : "Microsoft 365";
	},

	offer_folders(frm, result) {
		const chosen = new Set((frm.doc.folders || []).map((row) => row.folder_name));
		// No folders yet means the inbox (and Sent when bidirectional): ticked, so the picker starts from what syncs
		const by_default = (f) =>
			!chosen.size && (f.role === "inbox" || (f.role === "sent" && frm.doc.direction === "Bidirectional"));
		// Connected, but a folder to sync is missing: same picker, with what is wrong on top.
		const tone = result.ok ? "text-success" : "text-danger";
		const dialog = new frappe.ui.Dialog({
			title: result.ok ? __("Connected: choose folders to sync") : __("Connected, but a folder does not exist"),
			fields: [
				{ fieldtype: "HTML", options: `<p class="${tone}">${frappe.utils.escape_html(result.message)}</p>` },
				{ fieldtype: "HTML", options: result.ok ? email_sync_account.preview_table(result.preview || []) : "" },
				{
					fieldname: "folders",
					fieldtype: "MultiCheck",
					label: __("Folders"),
					options: result.folders
						.filter((f) => f.role !== "junk")
						.map((f) => ({
							label: f.role && f.role !== f.name.toLowerCase() ? `${f.name} (${f.role})` : f.name,
							value: f.name,
							checked: chosen.has(f.name) || by_default(f),
						})),
				},
			],
			primary_action_label: __("Use these folders"),
			primary_action(values) {
				frm.clear_table("folders");
				const roles = Object.fromEntries(result.folders.map((f) => [f.name, f.role]));
				(values.folders || []).forEach((name) => frm.add_child("folders", { folder_name: name, role: roles[name] || "" }));
				frm.refresh_field("folders");
				frm.dirty();
				dialog.hide();
			},
		});
		dialog.show();
	},

	preview_table(rows) {
		if (!rows.length) return `<p class="text-muted">${__("No new messages to sync right now.")}</p>`;
		const esc = frappe.utils.escape_html;
		const color = { Filed: "green", Skipped: "gray", "Needs Review": "orange", Error: "red" };
		return `<p><b>${__("The next messages the sync would take, and what it would do:")}</b></p>
			<table class="table table-sm"><thead><tr><th>${__("From")}</th><th>${__("Subject")}</th><th>${__("Decision")}</th></tr></thead><tbody>
			${rows.map((r) => `<tr><td>${esc(r.from)}</td><td>${esc(r.subject)}</td>
				<td><span class="indicator-pill ${color[r.status] || "gray"}">${esc(__(r.status))}</span>
				<div class="small text-muted">${esc(r.reason)}</div></td></tr>`).join("")}</tbody></table>`;
	},

	// A Draft account shows the way to a working sync, one step at a time.
	show_setup_steps(frm) {
		const d = frm.doc;
		if (d.status !== "Draft") return;
		const oauth = d.provider !== "IMAP";
		const company = oauth && d.mailbox_kind === "Shared or delegated";
		const through_sign_in = d.provider === "Microsoft" && d.mailbox_kind === "Shared, through my sign-in";
		const sign_in = company
			? [__("App access set up under Company Mailboxes in Email Sync Settings (Test Connection checks it)"), false]
			: through_sign_in
			? [__("Connect: sign in to Microsoft as yourself, a person with access to this shared mailbox"), !!d.connected_on]
			: [oauth ? __("Connect (sign in with {0})", [d.provider === "Gmail" ? "Google" : "Microsoft"]) : __("IMAP host, username and password"),
				oauth ? !!d.connected_on : !!(d.imap_host && (d.password || d.auth_type === "OAuth"))];  // username may stay empty
		const steps = [
			[__("Provider and address"), !!d.email_address],
			sign_in,
			[__("Folders picked from the live list (Test Connection)"), (d.folders || []).length > 0],
			[__("Direction and frequency"), !!(d.direction && d.frequency)],
			[__("Status Active, then Save"), false],
		];
		const html = steps
			.map(([label, done], i) => `<div>${done ? "&#9745;" : "&#9744;"} ${i + 1}. ${frappe.utils.escape_html(label)}</div>`)
			.join("");
		frm.dashboard.set_headline_alert(`<div class="small"><b>${__("Set up this mailbox")}</b>${html}</div>`, "blue");
	},

	show_health(frm) {
		const d = frm.doc;
		if (d.status === "Error" || (d.consecutive_failures || 0) > 0) {
			frm.dashboard.set_headline_alert(
				`<b>${frappe.utils.escape_html(d.last_error || __("The last sync failed."))}</b><br>${frappe.utils.escape_html(d.last_error_fix || "")}`,
				d.status === "Error" ? "red" : "yellow"
			);
		} else if (d.last_success) {
			frm.dashboard.set_headline_alert(
				d.emails_synced === 1
					? __("Healthy: last synced {0}, 1 email filed.", [frappe.datetime.comment_when(d.last_success)])
					: __("Healthy: last synced {0}, {1} emails filed.", [frappe.datetime.comment_when(d.last_success), d.emails_synced || 0]),
				"green"
			);
		}
	},

	listen_for_progress(frm) {
		if (frm.__email_sync_listening) return;
		frm.__email_sync_listening = true;
		frappe.realtime.on("email_sync_progress", (data) => {
			if (data.account !== frm.doc.name) return;
			if (data.done) {
				frm.dashboard.hide_progress();
				frm.reload_doc();
				return;
			}
			const done = data.fetched || 0;
			const total = done + (data.remaining || 0);
			frm.dashboard.show_progress(__("Syncing"), total ? (done / total) * 100 : 0,
				(data.failed === 1
					? __("{0} fetched: {1} filed, {2} skipped, {3} for review, 1 error", [done, data.filed, data.skipped, data.needs_review])
					: __("{0} fetched: {1} filed, {2} skipped, {3} for review, {4} errors", [
						done, data.filed, data.skipped, data.needs_review, data.failed || 0,
					])));
		});
	},
};
