app_name = "email_sync"
app_title = "Email Sync"
app_publisher = "Email Sync developers"
app_description = "Sync Gmail, Microsoft 365 and IMAP mailboxes onto ERPNext Customers, Contacts and Issues"
app_email = "developers@email-sync.invalid"
app_license = "MIT"
required_apps = ["frappe/erpnext"]  # org/repo form: resolved without asking GitHub

# Served with the form and the page themselves: nothing here needs an asset build.
doctype_js = {
	"Customer": ["public/js/emails_section.js", "public/js/party_emails.js"],
	"Contact": ["public/js/emails_section.js", "public/js/party_emails.js", "public/js/contact_erasure.js"],
}
page_js = {"email-sync": "public/js/emails_section.js"}

before_install = "email_sync.install.before_install"
after_install = "email_sync.install.after_install"
before_uninstall = "email_sync.install.before_uninstall"
after_migrate = "email_sync.install.after_migrate"

# Lookup columns for matching, kept up to date on every save (see indexes.py); mail waiting for review that
# a Contact's new address or link, or a Customer's new domain, now claims is filed by a job (sync/retrofile.py).
# on_update runs on insert too: a new Contact's addresses are new.
doc_events = {
	"Contact": {
		"validate": "email_sync.indexes.contact_validate",
		"on_update": "email_sync.sync.retrofile.contact_on_update",
	},
	"Customer": {
		"on_update": ["email_sync.indexes.customer_on_update", "email_sync.sync.retrofile.customer_on_update"],
		"on_trash": "email_sync.indexes.customer_on_trash",
	},
}

scheduler_events = {
	# One cheap dispatcher a minute; it enqueues a job for each account that is due (see sync/dispatcher.py).
	"cron": {"* * * * *": ["email_sync.sync.dispatcher.dispatch"]},
	"hourly": ["email_sync.sync.realtime.renew_due"],
	"daily": ["email_sync.sync.housekeeping.delete_old_logs", "email_sync.sync.retention.apply_retention"],
}

# Pub/Sub's OIDC token for the Gmail push endpoint is set aside before Frappe takes it for its own OAuth.
before_request = ["email_sync.push.set_aside_push_authorization"]

# A Synced Email keeps pointing at what it filed; deleting that Communication or Issue must not be blocked.
ignore_links_on_delete = ["Synced Email"]

# A private account's mail is seen by its owner and System Managers only, on every path (see permissions.py).
permission_query_conditions = {
	"Synced Email": "email_sync.permissions.synced_email_query",
	"Communication": "email_sync.permissions.communication_query",
}
has_permission = {
	"Synced Email": "email_sync.permissions.synced_email_permission",
	"Communication": "email_sync.permissions.communication_permission",
}
