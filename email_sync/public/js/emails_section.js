// Email Sync: the Emails list of a Customer or Contact, and a safe viewer for one email.
// Loaded through the doctype_js and page_js hooks, so it needs no asset build.

window.email_sync = window.email_sync || {};

email_sync.SOURCE_BADGES = {
	Gmail: { label: "Gmail", color: "red" },
	Microsoft: { label: "Outlook", color: "blue" },
	IMAP: { label: "IMAP", color: "gray" },
	ERPNext: { label: "ERPNext", color: "green" },
};

email_sync.badge = (source) => {
	const b = email_sync.SOURCE_BADGES[source] || { label: source || "", color: "gray" };
	return `<span class="indicator-pill ${b.color} email-sync-source">${frappe.utils.escape_html(b.label)}</span>`;
};

email_sync.direction_arrow = (direction) =>
	direction === "out"
		? `<span class="email-sync-arrow out" title="${__("Sent")}" style="color: var(--green-600)">&#8593;</span>`
		: `<span class="email-sync-arrow in" title="${__("Received")}" style="color: var(--blue-600)">&#8595;</span>`;

// Like a mail client: the time for today's mail, the day this year, the full date before.
email_sync.when = (value) => {
	if (!value) return "";
	const date = frappe.datetime.convert_to_user_tz(value, false);
	const now = moment();
	const format = date.isSame(now, "day") ? "HH:mm" : date.isSame(now, "year") ? "MMM D" : "MMM D, YYYY";
	return date.format(format);
};

email_sync.EmailsSection = class {
	constructor(frm, wrapper) {
		this.frm = frm;
		this.$wrapper = $(wrapper);
		this.page_length = 20;
	}

	refresh() {
		if (this.frm.is_new()) {
			this.$wrapper.html(`<p class="text-muted">${__("Save to see emails.")}</p>`);
			return;
		}
		this.start = 0;
		this.generation = (this.generation || 0) + 1; // answers to an earlier refresh are dropped
		this.$wrapper.html(`<div class="email-sync-emails">
			<style>.email-sync-row:hover { background: var(--fg-hover-color, var(--gray-50)); }</style>
			<div class="list"></div>
			<button class="btn btn-xs btn-default more hidden" style="margin-top:10px">${__("Older emails")}</button></div>`);
		this.$wrapper.find(".more").on("click", () => this.load());
		this.load();
	}

	load() {
		const generation = this.generation;
		frappe
			.xcall("email_sync.desk.party_emails", {
				doctype: this.frm.doctype,
				name: this.frm.doc.name,
				start: this.start,
				page_length: this.page_length,
			})
			.then((r) => {
				if (generation !== this.generation) return;
				const $list = this.$wrapper.find(".list");
				if (!r.emails.length && !this.start) {
					$list.html(`<p class="text-muted">${__("No emails yet.")}</p>`);
				}
				r.emails.forEach((email) => $list.append(this.row(email)));
				if (!this.start) this.catch_up_timeline(r.emails[0]);
				this.start += r.emails.length;
				this.$wrapper.find(".more").toggleClass("hidden", !r.more);
			});
	}

	// A form kept by the desk shows the timeline it loaded; mail synced since is only on this list. When the
	// newest email here is newer than anything on the timeline, the timeline is fetched again (once a refresh).
	catch_up_timeline(newest) {
		const frm = this.frm;
		if (!newest || !frm.timeline || this.frm.is_new()) return;
		const shown = frm.get_docinfo().communications || [];
		if (shown.some((c) => c.name === newest.name)) return;
		const latest = shown.map((c) => c.communication_date || "").sort().pop() || "";
		if (latest >= (newest.communication_date || "")) return;
		const docname = frm.docname;
		frappe
			.call({ method: "frappe.desk.form.load.get_docinfo", args: { doctype: frm.doctype, name: docname } })
			.then(() => frm.timeline && frm.docname === docname && frm.timeline.refresh());
	}

	row(email) {
		const esc = frappe.utils.escape_html;
		const who = email.direction === "out" ? __("To {0}", [email.recipients || ""]) : email.sender_full_name || email.sender;
		// The Issue it belongs to: a link for those who may open Issues, its name for the others
		let issue = "";
		if (email.reference_doctype === "Issue") {
			issue = frappe.model.can_read("Issue")
				? `<a class="email-sync-issue small" href="/app/issue/${encodeURIComponent(email.reference_name)}">${esc(email.reference_name)}</a>`
				: `<span class="email-sync-issue small text-muted" title="${__("Issue")}">${esc(email.reference_name)}</span>`;
		}
		const clip = email.attachment_count
			? `<span class="email-sync-attachment text-muted small" title="${email.attachment_count === 1 ? __("1 attachment") : __("{0} attachments", [email.attachment_count])}"
				style="display:inline-flex; align-items:center; gap:2px; white-space:nowrap">${frappe.utils.icon("attachment", "xs")}${email.attachment_count}</span>`
			: "";
		const $row = $(`<div class="email-sync-row" data-name="${esc(email.name)}"
				style="display:flex; gap:10px; padding:8px 6px; border-bottom:1px solid var(--border-color); cursor:pointer; border-radius:4px">
			<div style="width:18px; font-size:16px">${email_sync.direction_arrow(email.direction)}</div>
			<div style="flex:1; min-width:0">
				<div style="display:flex; gap:8px; align-items:center; min-width:0">
					<b class="ellipsis email-sync-subject" style="min-width:0">${esc(email.subject || __("(no subject)"))}</b>
					<span style="flex:none; display:inline-flex; gap:8px; align-items:center">${email_sync.badge(email.source)} ${clip} ${issue}</span>
					<span class="text-muted small email-sync-date" style="margin-left:auto; white-space:nowrap; flex:none"
						title="${esc(frappe.datetime.str_to_user(email.communication_date))}">${email_sync.when(email.communication_date)}</span>
					${this.actions_menu(email)}
				</div>
				<div class="text-muted small ellipsis">${esc(who)}</div>
				<div class="small ellipsis">${esc(email.snippet || "")}</div>
				${email_sync.attachment_list(email.attachments)}
			</div></div>`);
		$row.on("click", (e) => {
			if ($(e.target).closest("a, .email-sync-actions").length) return;
			email_sync.open_email(email.name, this.frm);
		});
		const done = () => this.frm.reload_doc(); // the list, the timeline and the counts follow
		$row.find(".email-sync-reassign").on("click", () => email_sync.reassign_dialog([email.name], this.frm, done));
		$row.find(".email-sync-remove").on("click", () => email_sync.remove_from_record(email, this.frm, done));
		$row.find(".email-sync-link-issue").on("click", () => email_sync.link_issue_dialog(email, done));
		return $row;
	}

	// Put a wrong filing right; only for synced emails (the server checks who may do what).
	actions_menu(email) {
		if (!email.account) return `<span style="width:26px; flex:none"></span>`; // dates stay in one column
		const item = (cls, label) => `<li><button type="button" class="dropdown-item ${cls}">${label}</button></li>`;
		return `<div class="dropdown email-sync-actions" style="flex:none">
			<button class="btn btn-xs btn-default email-sync-actions-toggle" data-toggle="dropdown" title="${__("Fix filing")}"
				aria-label="${__("Fix filing")}">&hellip;</button>
			<ul class="dropdown-menu dropdown-menu-right">
				${item("email-sync-reassign", __("Reassign…"))}
				${item("email-sync-remove", __("Remove from this record"))}
				${frappe.model.can_write("Issue") ? item("email-sync-link-issue", __("Link to Issue…")) : ""}
			</ul></div>`;
	}
};

// File emails (Communication names) on another Customer and/or Contact instead of where they are.
email_sync.reassign_dialog = (emails, frm, done) => {
	const dialog = new frappe.ui.Dialog({
		title: __("Reassign email"),
		fields: [
			{ fieldtype: "Link", fieldname: "customer", label: __("Customer"), options: "Customer" },
			{
				fieldtype: "Link",
				fieldname: "contact",
				label: __("Contact"),
				options: "Contact",
				get_query: () => {
					const customer = dialog.get_value("customer");
					return customer
						? { query: "frappe.contacts.doctype.contact.contact.contact_query", filters: { link_doctype: "Customer", link_name: customer } }
						: {};
				},
			},
			{
				fieldtype: "Check",
				fieldname: "learn",
				label: __("Learn the address: add it to this Contact, so later mail from it is filed there"),
				depends_on: "eval:doc.contact",
			},
			{ fieldtype: "HTML", options: `<p class="text-muted small">${__("The email leaves the Customers and Contacts it is on now, in every mailbox that synced it.")}</p>` },
		],
		primary_action_label: __("Reassign"),
		primary_action(values) {
			if (!values.customer && !values.contact) {
				frappe.msgprint(__("Choose a Customer or a Contact."));
				return;
			}
			frappe
				.xcall("email_sync.api.reassign_emails", { emails, customer: values.customer, contact: values.contact, learn: values.learn ? 1 : 0 })
				.then(() => {
					dialog.hide();
					frappe.show_alert({ message: __("Email reassigned"), indicator: "green" });
					done && done();
				});
		},
	});
	dialog.show();
	return dialog;
};

// Take the email off the record it is listed on. The confirmation says what happens: the records that
// keep it, or, when nothing else holds it, that it is deleted from the site and later syncs leave it out.
email_sync.remove_from_record = (email, frm, done) => {
	const esc = frappe.utils.escape_html;
	const args = { email: email.name, doctype: frm.doctype, name: frm.doc.name };
	frappe.xcall("email_sync.api.removal_outcome", args).then((outcome) => {
		const question = __("Remove {0} from {1} {2}?", [`<b>${esc(email.subject || __("(no subject)"))}</b>`, __(frm.doctype), esc(frm.doc.name)]);
		const what = outcome.deletes
			? __("Nothing else holds it, so it is <b>deleted from the site</b> with its attachments, in every mailbox that synced it. Later syncs leave it out.")
			: __("It stays on {0}.", [outcome.kept_by.map((record) => `<b>${esc(record)}</b>`).join(", ")]);
		frappe.warn(
			outcome.deletes ? __("Delete this email?") : __("Remove this email from {0}?", [__(frm.doctype)]),
			`<p>${question}</p><p class="email-sync-removal-outcome">${what}</p>`,
			() =>
				frappe.xcall("email_sync.api.remove_from_record", { emails: [email.name], doctype: frm.doctype, name: frm.doc.name }).then(() => {
					frappe.show_alert({ message: outcome.deletes ? __("Email deleted") : __("Email removed from this record"), indicator: "green" });
					done && done();
				}),
			outcome.deletes ? __("Delete email") : __("Remove")
		);
	});
};

// Put the email on an existing Issue (with its conversation, if asked), or split it into a new Issue.
email_sync.link_issue_dialog = (email, done) => {
	const on_issue = email.reference_doctype === "Issue";
	const dialog = new frappe.ui.Dialog({
		title: __("Link to Issue"),
		fields: [
			{ fieldtype: "Link", fieldname: "issue", label: __("Issue"), options: "Issue", reqd: 1 },
			{ fieldtype: "Check", fieldname: "thread", label: __("With the rest of its thread") },
		],
		primary_action_label: __("Link"),
		primary_action(values) {
			frappe.xcall("email_sync.api.link_to_issue", { emails: [email.name], issue: values.issue, thread: values.thread ? 1 : 0 }).then(() => {
				dialog.hide();
				frappe.show_alert({ message: __("Email linked to {0}", [values.issue]), indicator: "green" });
				done && done();
			});
		},
	});
	if (frappe.model.can_create("Issue")) {
		dialog.set_secondary_action_label(on_issue ? __("Split into a new Issue") : __("New Issue from this email"));
		dialog.set_secondary_action(() =>
			frappe.xcall("email_sync.api.split_to_issue", { email: email.name }).then((issue) => {
				dialog.hide();
				frappe.show_alert({ message: __("Issue {0} created", [issue]), indicator: "green" });
				done && done();
			})
		);
	}
	dialog.show();
	return dialog;
};

email_sync.file_size = (bytes) =>
	bytes >= 1048576 ? `${(bytes / 1048576).toFixed(1)} MB` : `${Math.max(1, Math.round((bytes || 0) / 1024))} KB`;

// Each attachment: a download link when it was stored, else its name with the reason it was not.
email_sync.attachment_list = (attachments) => {
	if (!attachments || !attachments.length) return "";
	const esc = frappe.utils.escape_html;
	const items = attachments.map((a) => {
		const label = `${esc(a.file_name || __("attachment"))} <span class="text-muted">(${email_sync.file_size(a.size)})</span>`;
		return a.url
			? `<a class="email-sync-file" href="${esc(a.url)}" target="_blank" rel="noopener">${frappe.utils.icon("attachment", "xs")} ${label}</a>`
			: `<span class="email-sync-file not-stored text-muted" title="${esc(a.reason || "")}">${frappe.utils.icon("attachment", "xs")} ${label} &middot; ${esc(a.reason || "")}</span>`;
	});
	return `<div class="email-sync-files small" style="display:flex; flex-wrap:wrap; gap:4px 12px; margin-top:4px">${items.join("")}</div>`;
};

// Reply, Reply All or Forward with Frappe's own composer, filed on the email's Issue when it has one (so
// the answer joins the Issue's thread), else on the form the viewer was opened from, else on its party.
email_sync.compose = (email, mode, frm) => {
	const doc = email.reference_doctype
		? { doctype: email.reference_doctype, name: email.reference_name }
		: frm
		? frm.doc
		: email.party;
	const last_email = {
		name: email.name,
		subject: email.subject,
		sender: email.sender,
		recipients: email.recipients || "",
		cc: email.cc || "",
		bcc: "",
		content: email.html,
		communication_date: email.date,
	};
	const strip = (subject) => (subject || "").replace(/^((re|fwd?|aw|sv|wg)\s*:\s*)+/i, "");
	const args = { doc, frm: frm && doc === frm.doc ? frm : null, last_email, is_a_reply: mode !== "forward" };
	if (mode === "forward") {
		Object.assign(args, { forward: true, recipients: "", subject: __("Fwd: {0}", [strip(email.subject)]), title: __("Forward") });
	} else {
		const mine = frappe.session.user_email;
		const others = (list) => (list || "").split(",").map((a) => a.trim()).filter((a) => a && a !== mine && a !== email.sender);
		Object.assign(args, {
			recipients: email.direction === "out" ? email.recipients : email.sender,
			cc: mode === "reply_all" ? [...others(email.recipients), ...others(email.cc)].join(", ") : "",
			subject: __("Re: {0}", [strip(email.subject)]),
			title: mode === "reply_all" ? __("Reply All") : __("Reply"),
		});
	}
	return new (email_sync.composer_class())(args);
};

// Frappe's composer looks up a signature in Email Account, which a Sales User or a support agent may not read:
// the "Not permitted" that answers stops the composer before it quotes the email being answered. Without that
// right the user's own signature (User settings) is all there is to find. Made on first use, after the desk's
// own scripts.
email_sync.composer_class = () => {
	email_sync.Composer = email_sync.Composer || class extends frappe.views.CommunicationComposer {
		async get_signature(sender_email) {
			if (!frappe.boot.user.email_signature && !frappe.model.can_read("Email Account")) return "";
			return super.get_signature(sender_email);
		}
	};
	return email_sync.Composer;
};

// The viewer's frame (opaque to the desk: its height cannot be read) takes the height of the email, measured on a
// copy laid out in a hidden frame that may be read but can neither run a script nor load anything (its policy
// allows no network, not even the remote images); the copy goes once measured.
email_sync.fit_frame = (frame, measured_page, tallest) => {
	const probe = document.createElement("iframe");
	probe.setAttribute("sandbox", "allow-same-origin");
	probe.setAttribute("aria-hidden", "true");
	probe.tabIndex = -1;
	probe.className = "email-sync-measure";
	probe.style.cssText = `position:absolute; left:-10000px; top:0; height:0; border:0; visibility:hidden; width:${frame.clientWidth || 760}px`;
	probe.onload = () => {
		const content = probe.contentDocument ? probe.contentDocument.documentElement.scrollHeight : tallest;
		frame.style.height = `${Math.min(tallest, Math.max(60, content + 2))}px`;
		probe.remove();
	};
	probe.srcdoc = measured_page;
	frame.parentNode.appendChild(probe);
};

// The email in a sandboxed frame (no scripts, no forms, no same-origin), remote images off until asked.
email_sync.open_email = (communication, frm) => {
	frappe.xcall("email_sync.desk.email_view", { communication }).then((email) => {
		const esc = frappe.utils.escape_html;
		const dialog = new frappe.ui.Dialog({ title: email.subject || __("(no subject)"), size: "large" });
		const render = (images) => {
			let html = email.html || "";
			if (images) html = html.replace(/data-remote-src=/g, "src=");
			const page = (policy, body) => `<!doctype html><html><head><meta charset="utf-8">
				<meta http-equiv="Content-Security-Policy" content="${policy}">
				<base target="_blank"><style>body{font-family:sans-serif;font-size:14px;margin:8px}</style></head>
				<body>${body}</body></html>`;
			const frame = document.createElement("iframe");
			frame.setAttribute("sandbox", "allow-popups allow-popups-to-escape-sandbox");
			frame.setAttribute("referrerpolicy", "no-referrer");
			frame.className = "email-sync-frame";
			// Remote images have no size until they load: shown, they get the tallest frame allowed.
			const tallest = Math.max(320, Math.round(window.innerHeight * 0.65));
			frame.style.cssText = `width:100%; height:${images ? tallest : 120}px; border:1px solid var(--border-color); border-radius:6px`;
			frame.srcdoc = page(`default-src 'none'; style-src 'unsafe-inline'; img-src data: cid:${images ? " https: http:" : ""}`, html);
			dialog.$body.find(".email-sync-body").empty().append(frame);
			if (!images) email_sync.fit_frame(frame, page("default-src 'none'; style-src 'unsafe-inline'; img-src data:", html), tallest);
		};
		dialog.$body.html(`
			<div class="small text-muted" style="margin-bottom:8px">
				${email_sync.direction_arrow(email.direction)}
				<b>${esc(email.sender_full_name || "")}</b> &lt;${esc(email.sender || "")}&gt;
				&rarr; ${esc(email.recipients || "")}${email.cc ? ` &middot; cc ${esc(email.cc)}` : ""}
				&middot; ${frappe.datetime.str_to_user(email.date)}
				${email.reference_doctype ? ` &middot; ${frappe.model.can_read(email.reference_doctype)
					? `<a href="/app/${frappe.router.slug(email.reference_doctype)}/${encodeURIComponent(email.reference_name)}">${esc(email.reference_name)}</a>`
					: esc(email.reference_name)}` : ""}
			</div>
			<div class="email-sync-images ${email.remote_images ? "" : "hidden"}"
				style="display:flex; align-items:center; gap:10px; margin-bottom:8px; padding:6px 10px; border-radius:6px;
					background:var(--yellow-50, var(--gray-100)); border:1px solid var(--yellow-200, var(--border-color))">
				<span class="text-muted small">${email.remote_images === 1
					? __("1 remote image is blocked to protect your privacy.")
					: __("{0} remote images are blocked to protect your privacy.", [email.remote_images])}</span>
				<button class="btn btn-xs btn-default show-images" style="margin-left:auto">${__("Show images")}</button>
			</div>
			<div class="email-sync-body"></div>
			${email_sync.attachment_list(email.attachments)}`);
		const can_reply = email.reference_doctype || frm || email.party;
		if (can_reply) {
			dialog.set_primary_action(__("Reply"), () => {
				dialog.hide();
				email_sync.compose(email, "reply", frm);
			});
			dialog.add_custom_action(__("Reply All"), () => {
				dialog.hide();
				email_sync.compose(email, "reply_all", frm);
			}, "btn-reply-all");
			dialog.add_custom_action(__("Forward"), () => {
				dialog.hide();
				email_sync.compose(email, "forward", frm);
			}, "btn-forward");
		}
		// Where the email sits on a timeline: its Issue, else its Customer or Contact.
		const home = email.reference_doctype ? { doctype: email.reference_doctype, name: email.reference_name } : email.party;
		if (home && !(frm && frm.doctype === home.doctype && frm.docname === home.name)) {
			dialog.add_custom_action(__("Open in Timeline"), () => {
				dialog.hide();
				frappe.set_route("Form", home.doctype, home.name);
			}, "btn-open-timeline");
		}
		dialog.$body.find(".show-images").on("click", () => {
			render(true);
			dialog.$body.find(".email-sync-images").addClass("hidden");
		});
		dialog.onhide = () => dialog.$wrapper.remove(); // one email's frame in the page at a time
		dialog.show();
		render(false); // once shown: the frame is sized to the email at the width it is shown
	});
};
