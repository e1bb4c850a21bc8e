"""Private accounts stay private on every path, review actions respect the target's permissions, and the
guest push endpoint does bounded work whatever it is sent."""

import json

import frappe
import pytest
import requests
from factories import deliver, mail, make_account, make_contact, make_customer, new_mailbox, site_user, synced, unique
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from email_sync import push
from email_sync.api import assign_to_customer
from email_sync.desk import email_view
from email_sync.sync.runner import sync_account


def login(web, key, *roles):
	password = "Es-" + unique("pw") + "-9Qx"
	email = site_user(key, *roles, password=password)
	session = requests.Session()
	assert session.post(f"{web}/api/method/login", data={"usr": email, "pwd": password}).ok
	session.user = email
	return session


@pytest.fixture(scope="module")
def mailboxes(dovecot, site):
	"""One private and one shared account, each with one filed email from a Customer's Contact."""
	domain = f"{unique('priv')}.test"
	customer = make_customer(f"Privy {domain}")
	make_contact("Pia", [f"pia@{domain}"], customer)
	owner = site_user("privateowner", "Sales Manager")
	private_box, shared_box = new_mailbox(dovecot), new_mailbox(dovecot)
	private = make_account(dovecot, private_box, shared=0, account_owner=owner)
	shared = make_account(dovecot, shared_box, shared=1)
	deliver(dovecot, private_box, [mail(f"pia@{domain}", private_box.name, subject="salary talk")])
	deliver(dovecot, shared_box, [mail(f"pia@{domain}", shared_box.name, subject="order question")])
	sync_account(private)
	sync_account(shared)
	return frappe._dict(
		customer=customer,
		domain=domain,
		owner=owner,
		private=synced(private)[0],
		shared=synced(shared)[0],
		private_account=private,
		shared_account=shared,
	)


def rest_names(session, web, doctype):
	r = session.get(
		f"{web}/api/resource/{doctype}",
		params={"fields": json.dumps(["name"]), "limit_page_length": 0},
	)
	assert r.ok, r.text
	return {row["name"] for row in r.json()["data"]}


def list_view_names(session, web, doctype, filters=None):
	"""What the desk's list view asks for (frappe.desk.reportview.get), as the browser sends it."""
	r = session.post(
		f"{web}/api/method/frappe.desk.reportview.get",
		data={"doctype": doctype, "fields": json.dumps([f"`tab{doctype}`.`name`"]), "filters": json.dumps(filters or []),
			"page_length": 500, "start": 0},
	)  # fmt: skip
	assert r.ok, r.text
	values = r.json()["message"].get("values", []) if r.json().get("message") else []
	return {row[0] for row in values}


@pytest.mark.parametrize("role", ["Sales Manager", "Support Team"])
def test_private_account_mail_is_invisible_over_rest_and_in_the_list_view(web, mailboxes, role):
	colleague = login(web, f"colleague-{role.split()[0].lower()}", role)
	private, shared = mailboxes.private, mailboxes.shared

	assert shared.name in rest_names(colleague, web, "Synced Email")  # the role does read synced mail
	assert private.name not in rest_names(colleague, web, "Synced Email")
	in_list = list_view_names(colleague, web, "Synced Email", [["Synced Email", "account", "in",
		[mailboxes.private_account, mailboxes.shared_account]]])  # fmt: skip
	assert in_list == {shared.name}
	assert colleague.get(f"{web}/api/resource/Synced Email/{private.name}").status_code == 403
	# counts (what Number Cards and list sidebars show) and the search box go through the same conditions
	count = colleague.post(f"{web}/api/method/frappe.desk.reportview.get_count", data={"doctype": "Synced Email",
		"filters": json.dumps([["Synced Email", "account", "=", mailboxes.private_account]])})  # fmt: skip
	assert count.ok and count.json()["message"] == 0
	card = colleague.post(f"{web}/api/method/frappe.desk.doctype.number_card.number_card.get_result", data={
		"doc": json.dumps({"document_type": "Synced Email", "function": "Count", "type": "Document Type"}),
		"filters": json.dumps([["Synced Email", "account", "in", [mailboxes.private_account, mailboxes.shared_account]]])})  # fmt: skip
	assert card.ok and card.json()["message"] == 1  # the shared one
	found = colleague.get(f"{web}/api/method/frappe.desk.search.search_link", params={"doctype": "Synced Email",
		"txt": "salary"})  # fmt: skip
	assert found.ok and private.name not in json.dumps(found.json())
	assert colleague.get(f"{web}/api/resource/Synced Email/{shared.name}").ok
	# the Communication itself, by REST and by the safe view
	assert colleague.get(f"{web}/api/resource/Communication/{private.communication}").status_code == 403
	assert private.communication not in list_view_names(colleague, web, "Communication")
	r = colleague.post(f"{web}/api/method/email_sync.desk.email_view", data={"communication": private.communication})
	assert r.status_code == 403


def test_the_owner_and_administrators_see_the_private_mail(web, mailboxes):
	frappe.set_user(mailboxes.owner)
	assert mailboxes.private.name in frappe.get_list("Synced Email", pluck="name", limit_page_length=0)
	assert frappe.has_permission("Synced Email", "read", doc=mailboxes.private.name)
	assert email_view(mailboxes.private.communication)["subject"] == "salary talk"  # their own mail, in the viewer
	frappe.set_user("Administrator")
	assert mailboxes.private.name in frappe.get_list("Synced Email", pluck="name", limit_page_length=0)
	assert email_view(mailboxes.private.communication)["subject"] == "salary talk"


def test_a_missing_and_a_forbidden_email_get_the_same_answer(mailboxes):
	site_user("nosy", "Sales User")
	frappe.set_user("email-sync-test-nosy@ourco.example")
	answers = []
	for name in (mailboxes.private.communication, "does-not-exist-00000"):
		with pytest.raises(frappe.PermissionError) as caught:
			email_view(name)
		answers.append(str(caught.value))
	assert answers[0] == answers[1]


@pytest.fixture
def waiting(dovecot):
	"""A shared account's email from an unknown sender, waiting in Needs Review."""
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, shared=1)
	deliver(dovecot, box, [mail(f"someone@{unique('new')}.test", box.name, subject="who am I")])
	sync_account(account)
	row = synced(account)[0]
	assert row.status == "Needs Review"
	return row


def test_review_actions_are_refused_on_a_customer_the_user_cannot_write(waiting):
	customer = make_customer(f"Locked {unique()}")
	reviewer = site_user("reviewer-support", "Email Sync Reviewer", "Support Team")
	assert not frappe.has_permission("Customer", "write", doc=customer, user=reviewer)
	frappe.set_user(reviewer)
	with pytest.raises(frappe.PermissionError):
		assign_to_customer(json.dumps([waiting.name]), customer)
	frappe.set_user("Administrator")
	frappe.db.rollback()
	assert frappe.db.get_value("Synced Email", waiting.name, "status") == "Needs Review"
	assert not frappe.db.exists("Communication Link", {"parent": waiting.communication})


def test_a_reviewer_who_may_write_the_customer_files_the_email(waiting):
	customer = make_customer(f"Open {unique()}")
	reviewer = site_user("reviewer-sales", "Email Sync Reviewer", "Sales Manager", "Sales User")
	frappe.set_user(reviewer)
	assert assign_to_customer(json.dumps([waiting.name]), customer) == [waiting.name]
	frappe.set_user("Administrator")
	assert frappe.db.get_value("Synced Email", waiting.name, "status") == "Filed"


def test_review_actions_never_reach_a_private_account_of_someone_else(mailboxes):
	customer = make_customer(f"Other {unique()}")
	reviewer = site_user("reviewer-sales", "Email Sync Reviewer", "Sales Manager", "Sales User")
	frappe.db.set_value("Synced Email", mailboxes.private.name, "status", "Needs Review")
	frappe.db.commit()
	try:
		frappe.set_user(reviewer)
		with pytest.raises(frappe.PermissionError) as private_answer:
			assign_to_customer(json.dumps([mailboxes.private.name]), customer)
		with pytest.raises(frappe.PermissionError) as missing_answer:
			assign_to_customer(json.dumps(["no-such-synced-email"]), customer)
		assert str(private_answer.value).replace(mailboxes.private.name, "X") == str(missing_answer.value).replace(
			"no-such-synced-email", "X"
		)
	finally:
		frappe.set_user("Administrator")
		frappe.db.set_value("Synced Email", mailboxes.private.name, "status", "Filed")
		frappe.db.commit()


def test_push_endpoint_refuses_oversized_bodies_and_tokens(web):
	url = f"{web}/api/method/email_sync.push.microsoft"
	assert requests.post(url, data=b'{"value": []}' + b" " * (push.MAX_PUSH_BYTES + 1)).status_code == 413
	too_many = {"value": [{"subscriptionId": f"s{i}", "clientState": "x"} for i in range(push.MAX_NOTIFICATIONS + 1)]}
	assert requests.post(url, json=too_many).status_code == 400
	assert requests.post(url, params={"validationToken": "v" * (push.MAX_VALIDATION_TOKEN + 1)}).status_code == 400
	r = requests.post(url, params={"validationToken": "Validation: <b>ok</b>"})
	assert r.status_code == 200 and r.text == "Validation: <b>ok</b>" and r.headers["Content-Type"].startswith("text/plain")
	# an unknown subscription is acknowledged like a known one: the answer tells a prober nothing
	assert requests.post(url, json={"value": [{"subscriptionId": "nobody", "clientState": "x"}]}).status_code == 202


def questions() -> int:
	return int(frappe.db.sql("show session status like 'Questions'")[0][1])


def call_push(body: dict):
	"""The endpoint in this process, on a real werkzeug request, so its queries can be counted."""
	frappe.local.request = Request(EnvironBuilder(method="POST", data=json.dumps(body),
		content_type="application/json").get_environ())  # fmt: skip
	try:
		before = questions()
		response = push.microsoft()
		return response.status_code, questions() - before - 1
	finally:
		frappe.local.request = None


def test_push_endpoint_costs_the_same_for_one_or_many_subscription_ids():
	call_push({"value": []})  # metadata and settings cached, as in a warm web worker
	one = call_push({"value": [{"subscriptionId": "unknown-0", "clientState": "x"}]})
	many = call_push({"value": [{"subscriptionId": f"unknown-{i}", "clientState": "x"} for i in range(150)]})
	assert one[0] == many[0] == 202
	assert many[1] == one[1] <= 3, (one, many)


def test_a_hostile_html_email_is_filed_promptly_with_what_was_cut(dovecot):
	"""Markup that took the old sanitiser and html2text minutes: filed within the per-message budget."""
	import time

	from email.message import EmailMessage

	domain = f"{unique('stall')}.test"
	customer = make_customer(f"Stall {domain}")
	make_contact("Sam", [f"sam@{domain}"], customer)
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	msg = EmailMessage()
	msg["From"], msg["To"], msg["Subject"] = f"sam@{domain}", box.name, "broken newsletter"
	msg["Message-ID"] = f"<{unique('stall')}@test.example>"
	body = "<p>Hello</p>" + "<a " * 10_000 + '<a x="' * 10_000 + "<b>" * 20_000 + "</i>" * 20_000
	msg.set_content(body + "<p>" + "filler text " * 200_000 + "</p>", subtype="html")  # about 2.5 MB
	deliver(dovecot, box, [msg.as_bytes()])
	started = time.monotonic()
	assert sync_account(account)["Filed"] == 1
	assert time.monotonic() - started < 10
	row = frappe.get_doc("Synced Email", synced(account)[0].name)
	assert "cut to 300 KB" in row.parse_defects
	content = frappe.db.get_value("Communication", row.communication, "content")
	assert "Hello" in content and "<a " not in content
