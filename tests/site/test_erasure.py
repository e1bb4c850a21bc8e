"""Erasure on request: what goes with an address or a Contact (exactly that address, not a lookalike), what
stays, who may do it, the audit record, and the blacklist that keeps the address out afterwards."""

import os

import frappe
import pytest
import requests
from factories import (
	deliver, mail, mail_with_files, make_account, make_contact, make_customer, new_mailbox, pdf, site_user,
	synced, unique,
)  # fmt: skip

from email_sync.erasure import erase, preview_erasure
from email_sync.sync.erasure import subject_hash
from email_sync.sync.runner import sync_account


def files_of(communication: str) -> dict[str, str]:
	"""File name (up to its unique tag) -> its path on disk."""
	return {
		f.file_name.split("-")[0]: frappe.get_doc("File", f.name).get_full_path()
		for f in frappe.get_all(
			"File",
			filters={"attached_to_doctype": "Communication", "attached_to_name": communication},
			fields=["name", "file_name"],
		)
	}


@pytest.fixture
def people(dovecot):
	"""Ann, and Joann whose address contains Ann's, writing to one mailbox; one of Ann's emails came first
	through Frappe's own Email Account pull."""
	domain = f"{unique('gdpr')}.test"
	customer = make_customer(f"Erase {domain}")
	ann, joann = f"ann@{domain}", f"joann@{domain}"
	make_contact("Ann", [ann], customer)
	make_contact("Joann", [joann], customer)
	pulled_id = f"pulled-{unique()}@{domain}"
	pulled = frappe.get_doc({"doctype": "Communication", "communication_type": "Communication",
		"communication_medium": "Email", "sent_or_received": "Received", "subject": "Pulled by ERPNext",
		"sender": ann, "message_id": pulled_id}).insert(ignore_permissions=True)  # fmt: skip
	frappe.db.commit()
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	shared, tag = pdf(), unique()
	own, terms = [(f"own-{tag}.pdf", pdf()), (f"terms-{tag}.pdf", shared)], [(f"terms-{tag}.pdf", shared)]
	deliver(dovecot, box, [
		mail_with_files(ann, box.name, "Ann's own file", own),
		mail_with_files(joann, box.name, "Joann sends the terms", terms),
		mail(joann, box.name, subject="Joann copies Ann", cc=ann),
		mail(joann, f"{box.name}, {ann.upper()}", subject="Joann writes to both"),
		mail(joann, box.name, subject="Joann copies lookalikes", cc=f"{ann}.uk, x{ann}, {ann[:-1]}"),
		mail(ann, box.name, subject="Pulled by ERPNext", message_id=f"<{pulled_id}>"),
	])  # fmt: skip
	assert sync_account(account)["Filed"] == 6
	rows = {r.subject: r for r in synced(account)}
	return frappe._dict(domain=domain, ann=ann, joann=joann, account=account, rows=rows, pulled=pulled.name)


ANNS = {"Ann's own file", "Joann copies Ann", "Joann writes to both", "Pulled by ERPNext"}


def test_an_address_is_erased_exactly_by_a_system_manager_only(people):
	rows = people.rows
	own = rows["Ann's own file"].communication
	files = files_of(own)
	joanns_files = files_of(rows["Joann sends the terms"].communication)
	assert set(files) == {"own", "terms"} and all(os.path.exists(p) for p in files.values())
	frappe.get_doc("Communication", own).add_comment("Comment", "Call Ann back")

	for key, role in (("erase-sales", "Sales User"), ("erase-support", "Support Team")):
		frappe.set_user(site_user(key, role))
		with pytest.raises(frappe.PermissionError):
			preview_erasure(address=people.ann)
		with pytest.raises(frappe.PermissionError):
			erase(address=people.ann, blacklist=1)
	eraser = site_user("erase-admin", "System Manager")
	frappe.set_user(eraser)

	preview = preview_erasure(address=people.ann.upper())
	assert preview["synced_emails"] == 4 and set(preview["subjects"]) == ANNS
	assert preview["communications"] == 3 and preview["kept_communications"] == 1  # ERPNext's own stays
	assert preview["files"] == 2 and preview["issues"] == 0
	assert preview["comments"] == 3  # "Call Ann back", and Frappe's "Attachment" comment naming each file
	assert preview["accounts"] == {people.account: 4}
	assert frappe.db.count("Synced Email", {"account": people.account}) == 6  # a preview changes nothing

	result = erase(address=people.ann, blacklist=1)
	assert (result["synced_emails"], result["communications"], result["files"]) == (4, 3, 2)
	frappe.set_user("Administrator")

	left = {r.subject for r in synced(people.account)}
	assert left == {"Joann sends the terms", "Joann copies lookalikes"}
	for subject in ANNS - {"Pulled by ERPNext"}:
		name = rows[subject].communication
		assert not frappe.db.exists("Communication", name)
		assert not frappe.db.exists("Communication Link", {"parent": name})
	assert frappe.db.exists("Communication", people.pulled)  # not Email Sync's to erase
	assert not frappe.db.exists("Comment", {"reference_doctype": "Communication", "reference_name": own})
	assert not frappe.db.exists("Email Sync Attachment", {"parent": rows["Ann's own file"].name})
	assert not files_of(own)
	assert not os.path.exists(files["own"])  # its content was Ann's alone
	assert files["terms"] == joanns_files["terms"]  # one copy on disk for both emails
	assert os.path.exists(joanns_files["terms"])  # shared with Joann's email: it stays

	log = frappe.get_doc("Email Sync Erasure Log", result["log"])
	assert (log.kind, log.erased_by, log.addresses, log.blacklisted) == ("Erasure", eraser, people.ann, 1)
	assert (log.synced_emails, log.communications, log.files, log.kept_communications) == (4, 3, 2, 1)
	records = dict(line.split(" ") for line in log.erased_records.splitlines())
	assert records == {rows[s].name: subject_hash(s) for s in ANNS}
	assert not any(s in log.as_json() for s in ANNS)  # the subjects themselves are not kept
	assert frappe.db.exists("Email Sync Blacklist", people.ann)


def test_blacklisted_after_erasure_the_next_email_is_skipped(dovecot):
	domain = f"{unique('gdpr')}.test"
	ben = f"ben@{domain}"
	make_contact("Ben", [ben], make_customer(f"Again {domain}"))
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box)
	deliver(dovecot, box, [mail(ben, box.name, subject="First")])
	sync_account(account)
	erase(address=ben, blacklist=1)
	frappe.db.commit()
	deliver(dovecot, box, [mail(ben, box.name, subject="After the erasure")])
	sync_account(account)
	[row] = synced(account)
	assert (row.subject, row.status, row.communication) == ("After the erasure", "Skipped", None)
	assert "blacklist" in (row.decision_rule + row.reason).lower()


def test_a_contact_is_erased_with_all_its_addresses_and_its_issues_only_when_asked(dovecot):
	domain = f"{unique('gdpr')}.test"
	customer = make_customer(f"Issues {domain}")
	cleo = make_contact("Cleo", [f"cleo@{domain}", f"cleo.work@{domain}"], customer)
	dora = make_contact("Dora", [f"dora@{domain}"], customer)
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, create_issues=1)
	deliver(dovecot, box, [
		mail(f"cleo@{domain}", box.name, subject="Printer broken", body="It prints nothing at all."),
		mail(f"cleo.work@{domain}", box.name, subject="Invoice question"),
		mail(f"dora@{domain}", box.name, subject="Scanner broken"),
	])  # fmt: skip
	sync_account(account)
	issue = {r.subject: frappe.db.get_value("Synced Email", r.name, "issue") for r in synced(account)}
	assert all(issue.values())

	preview = preview_erasure(contact=cleo)
	assert set(preview["addresses"]) == {f"cleo@{domain}", f"cleo.work@{domain}"}
	assert preview["synced_emails"] == 2 and preview["issues"] == 2
	result = erase(contact=cleo)
	assert result["synced_emails"] == 2 and result["issues"] == 0
	for subject in ("Printer broken", "Invoice question"):  # the Issues stay, description and all
		assert frappe.db.exists("Issue", issue[subject])
	assert "prints nothing" in frappe.db.get_value("Issue", issue["Printer broken"], "description")
	assert not frappe.get_all("Communication", filters={"reference_name": issue["Printer broken"]})
	assert not frappe.db.exists("Email Sync Blacklist", f"cleo@{domain}")  # not asked
	assert frappe.db.get_value("Email Sync Erasure Log", result["log"], "contact") == cleo

	result = erase(contact=dora, delete_issues=1)
	assert result["issues"] == 1 and not frappe.db.exists("Issue", issue["Scanner broken"])
	assert frappe.db.exists("Contact", dora)  # the Contact itself is the user's to delete
	assert not synced(account)


def test_erasure_over_http_is_refused_to_sales_and_support(web):
	address = f"nobody@{unique('gdpr')}.test"
	api = f"{web}/api/method/email_sync.erasure"
	for key, role in (
		("erase-sales", "Sales User"), ("erase-support", "Support Team"), ("erase-admin", "System Manager")
	):  # fmt: skip
		password = "Es-" + unique("pw") + "-9Qx"
		session = requests.Session()
		user = site_user(key, role, password=password)
		assert session.post(f"{web}/api/method/login", data={"usr": user, "pwd": password}).ok
		preview = session.get(f"{api}.preview_erasure", params={"address": address})
		erased = session.post(f"{api}.erase", data={"address": address})
		if role == "System Manager":
			assert preview.ok and preview.json()["message"]["synced_emails"] == 0
			assert erased.ok and erased.json()["message"]["synced_emails"] == 0
		else:
			assert preview.status_code == 403 and erased.status_code == 403
	assert session.get(f"{api}.erase", params={"address": address}).status_code in (403, 405)  # POST only
