"""The Email Response Times report, the number cards and the workspace, on the real site with real mail.

The site is shared and every sync commits: each test makes its own mailbox, Customer and agents, and reads the
report and the cards scoped to them (by the report's own filters, or by one extra filter on a card).
"""

import json
from datetime import datetime, timedelta, timezone

import frappe
import pytest
from factories import deliver, mail, make_account, make_contact, make_customer, new_mailbox, unique
from frappe.desk.doctype.number_card.number_card import get_result
from frappe.desk.query_report import run
from frappe.utils import flt, get_datetime, nowdate
from frappe.utils.data import convert_utc_to_system_timezone

from email_sync.email_sync.report.email_response_times.email_response_times import execute
from email_sync.sync.runner import sync_account

REPORT = "Email Response Times"
WORKSPACE = "Email Sync Hub"
CARDS = ("Emails Synced Today", "Emails Needing Review", "Sync Errors", "Open Issues From Email")


def local(utc: datetime) -> datetime:
	"""How the site stores a mail's date: naive, in its system timezone."""
	return convert_utc_to_system_timezone(utc).replace(tzinfo=None)


def agent_user(first_name: str) -> str:
	"""A support agent, the same User on every run: Frappe throttles User creation (60 an hour, site-wide),
	which a shared test site reaches; made once, so the throttle is stepped over that once."""
	email = f"report.agent.{first_name.lower()}@ourco.example"
	if frappe.db.exists("User", email):
		return email
	frappe.flags.in_import = True
	try:
		frappe.get_doc(
			{
				"doctype": "User",
				"email": email,
				"first_name": first_name,
				"send_welcome_email": 0,
				"roles": [{"role": "Support Team"}],
			}
		).insert(ignore_permissions=True)
	finally:
		frappe.flags.in_import = False
	return email


@pytest.fixture
def issue_settings():
	"""One Issue per request for this module, whatever another test left; restored afterwards."""
	doc = frappe.get_single("Email Sync Settings")
	saved = doc.one_open_issue_per_customer
	doc.one_open_issue_per_customer = 0
	doc.save()
	frappe.db.commit()
	yield
	doc.reload()
	doc.one_open_issue_per_customer = saved
	doc.save()
	frappe.db.commit()


@pytest.fixture(scope="module")
def scenario(dovecot):
	"""Three customer requests on one mailbox, answered, ignored and resolved at known times.

	A: 09:00 UTC, answered by an agent (a User) at 11:30 and again from the mailbox at 13:00, the customer
	   wrote again at 12:00; resolved 26 h 15 min after the request (resolution_date).
	B: 10:00 UTC, never answered, assigned to a second agent, then closed from the form (no resolution_date:
	   the report reads when it was closed from the Issue's history).
	C: 10:30 UTC, answered from the shared mailbox itself (not a User) at 11:30.
	"""
	frappe.set_user("Administrator")
	doc = frappe.get_single("Email Sync Settings")
	saved = doc.one_open_issue_per_customer
	doc.one_open_issue_per_customer = 0
	doc.save()

	domain = f"{unique('globex')}.test"
	customer = make_customer(f"Globex {domain}")
	make_contact("Hank", [f"hank@{domain}"], customer)
	agent, other_agent = agent_user("Marge"), agent_user("Homer")
	frappe.db.commit()

	support = new_mailbox(dovecot)
	account = make_account(dovecot, support, create_issues=1, direction="Bidirectional")
	day = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
	hours = {"a": 9, "b": 10, "c": 10.5, "a_reply": 11.5, "c_reply": 11.5, "a_again": 12, "a_reply2": 13}
	at = {name: day + timedelta(hours=h) for name, h in hours.items()}
	ids = {name: f"<{name}.{unique()}@{domain}>" for name in ("a", "b", "c")}
	customer_address = f"Hank <hank@{domain}>"
	deliver(dovecot, support, [
		mail(customer_address, support.name, subject="Invoice is wrong", message_id=ids["a"], date=at["a"]),
		mail(customer_address, support.name, subject="Password reset", message_id=ids["b"], date=at["b"]),
		mail(customer_address, support.name, subject="Shipping delay", message_id=ids["c"], date=at["c"]),
	])  # fmt: skip
	assert sync_account(account)["issues_created"] == 3

	deliver(dovecot, support, [
		mail(f"Marge <{agent}>", f"hank@{domain}", subject="Re: Invoice is wrong", date=at["a_reply"],
			headers={"In-Reply-To": ids["a"]}),
		mail(support.name, f"hank@{domain}", subject="Re: Invoice is wrong", date=at["a_reply2"],
			headers={"In-Reply-To": ids["a"]}),
		mail(support.name, f"hank@{domain}", subject="Re: Shipping delay", date=at["c_reply"],
			headers={"In-Reply-To": ids["c"]}),
	], "Sent")  # fmt: skip
	deliver(dovecot, support, [
		mail(customer_address, support.name, subject="Re: Invoice is wrong", date=at["a_again"],
			headers={"In-Reply-To": ids["a"]}),
	])  # fmt: skip
	counts = sync_account(account)
	assert counts["Filed"] == 4 and counts["issues_created"] == 0

	frappe.db.rollback()
	issues = dict(
		frappe.get_all(
			"Synced Email",
			filters={"account": account, "message_id": ("in", [i.strip("<>") for i in ids.values()])},
			fields=["message_id", "issue"],
			as_list=True,
		)
	)
	a, b, c = (issues[ids[name].strip("<>")] for name in ("a", "b", "c"))
	assert len({a, b, c}) == 3

	resolved_a = local(at["a"]) + timedelta(hours=26, minutes=15)
	frappe.db.set_value("Issue", a, {"status": "Resolved", "resolution_date": resolved_a})
	from frappe.desk.form.assign_to import add as assign

	assign({"assign_to": [other_agent], "doctype": "Issue", "name": b})
	issue_b = frappe.get_doc("Issue", b)
	issue_b.status = "Closed"
	issue_b.save(ignore_permissions=True)
	frappe.db.commit()
	closed_b = frappe.db.get_value("Issue", b, "resolution_date") or frappe.get_all(
		"Version",
		filters={"ref_doctype": "Issue", "docname": b, "data": ("like", '%"Closed"%')},
		pluck="creation",
		order_by="creation desc",
		limit=1,
	)[0]

	doc.reload()
	doc.one_open_issue_per_customer = saved
	doc.save()
	frappe.db.commit()
	return frappe._dict(
		account=account, mailbox=support.name, customer=customer, agent=agent, other_agent=other_agent,
		a=a, b=b, c=c, at=at, resolved_a=resolved_a, closed_b=get_datetime(closed_b),
	)  # fmt: skip


def report(group_by: str, **filters) -> dict:
	today = nowdate()
	return run(REPORT, {"from_date": today, "to_date": today, "group_by": group_by, **filters})


def hours_between(start: datetime, end: datetime) -> float:
	return (end - start).total_seconds() / 3600


def test_response_and_resolution_times_per_issue(scenario):
	s = scenario
	result = report("Issue", customer=s.customer)
	rows = {row["issue"]: row for row in result["result"]}
	assert set(rows) == {s.a, s.b, s.c}
	a, b, c = rows[s.a], rows[s.b], rows[s.c]

	# A: from the first customer email (not the later one) to the first reply (not the second), by the agent
	assert (a["first_inbound"], a["first_reply"]) == (local(s.at["a"]), local(s.at["a_reply"]))
	assert hours_between(a["first_inbound"], a["first_reply"]) == 2.5
	assert a["first_response_hours"] == 2.5
	assert (a["agent"], a["agent_address"]) == (s.agent, None)
	assert (a["status"], a["resolution_date"], a["resolution_hours"]) == ("Resolved", s.resolved_a, 26.25)
	assert (a["customer"], a["account"]) == (s.customer, s.account)

	# B: unanswered, so its agent is its assignee; closed from the form: resolved when its history says
	assert (b["first_inbound"], b["first_reply"], b["first_response_hours"]) == (local(s.at["b"]), None, None)
	assert (b["agent"], b["agent_address"]) == (s.other_agent, None)
	assert get_datetime(b["resolution_date"]) == s.closed_b
	assert b["resolution_hours"] == flt(hours_between(local(s.at["b"]), s.closed_b), 2)

	# C: answered from the shared mailbox, which is no User: the address stands for the agent
	assert (c["first_response_hours"], c["agent"], c["agent_address"]) == (1.0, None, s.mailbox)
	assert (c["resolution_date"], c["resolution_hours"]) == (None, None)

	fieldtypes = {col["fieldname"]: (col["fieldtype"], col.get("options")) for col in result["columns"]}
	assert fieldtypes["issue"] == ("Link", "Issue") and fieldtypes["customer"] == ("Link", "Customer")
	assert fieldtypes["account"] == ("Link", "Email Sync Account") and fieldtypes["agent"] == ("Link", "User")
	assert fieldtypes["first_reply"] == ("Datetime", None) and fieldtypes["first_response_hours"][0] == "Float"
	assert {c["precision"] for c in result["columns"] if c["fieldtype"] == "Float"} == {2}

	summary = {figure["label"]: figure["value"] for figure in result["report_summary"]}
	b_hours = b["resolution_hours"]
	assert summary == {
		"Issues": 3,
		"Replied": 66.7,
		"Median First Response": 6300,  # 1.75 h, in seconds: shown as a duration
		"Median Resolution": round(flt((26.25 + b_hours) / 2, 2) * 3600),
	}
	# per day of opening: all three opened today, answered in 2.5 h and 1 h
	assert result["chart"]["type"] == "bar"
	assert result["chart"]["data"]["datasets"][0]["values"] == [1.75]


def test_grouped_by_customer_agent_and_account(scenario):
	s = scenario
	[by_customer] = report("Customer", customer=s.customer)["result"]
	b_hours = flt(hours_between(local(s.at["b"]), s.closed_b), 2)
	assert by_customer == {
		"customer": s.customer,
		"issues": 3,
		"replied": 2,
		"unreplied": 1,
		"avg_first_response_hours": 1.75,
		"median_first_response_hours": 1.75,
		"resolved": 2,
		"avg_resolution_hours": flt((26.25 + b_hours) / 2, 2),
		"median_resolution_hours": flt((26.25 + b_hours) / 2, 2),
	}

	result = report("Agent", customer=s.customer)
	by_agent = {(r["agent"], r["agent_address"]): r for r in result["result"]}
	assert set(by_agent) == {(s.agent, None), (s.other_agent, None), (None, s.mailbox)}
	assert (by_agent[s.agent, None]["replied"], by_agent[s.agent, None]["avg_first_response_hours"]) == (1, 2.5)
	homer = by_agent[s.other_agent, None]
	assert (homer["unreplied"], homer["avg_first_response_hours"]) == (1, None)
	assert by_agent[None, s.mailbox]["median_first_response_hours"] == 1.0
	chart = result["chart"]["data"]
	assert dict(zip(chart["labels"], chart["datasets"][0]["values"])) == {s.agent: 2.5, s.mailbox: 1.0}

	[by_account] = report("Account", account=s.account)["result"]
	assert (by_account["account"], by_account["issues"], by_account["replied"]) == (s.account, 3, 2)
	# the account filter alone selects the same Issues as the customer filter
	assert {r["issue"] for r in report("Issue", account=s.account)["result"]} == {s.a, s.b, s.c}


def test_date_range_is_on_the_issue_opening_date(scenario):
	s = scenario
	yesterday = frappe.utils.add_days(nowdate(), -1)
	result = run(REPORT, {"from_date": yesterday, "to_date": yesterday, "customer": s.customer})
	assert result["result"] == []
	assert {f["label"]: f["value"] for f in result["report_summary"]}["Median First Response"] == "-"
	with pytest.raises(frappe.ValidationError, match="before"):
		execute({"from_date": nowdate(), "to_date": yesterday})


def card_count(name: str, *extra) -> float:
	"""What the desk shows on the card (its filters and dynamic filters), narrowed by `extra` if given."""
	card = frappe.get_doc("Number Card", name)
	filters = json.loads(card.filters_json or "[]") + json.loads(card.dynamic_filters_json or "[]")
	return get_result(card.as_json(), json.dumps(filters + list(extra)))


def test_number_cards_count_what_they_say(dovecot, issue_settings):
	domain = f"{unique('initech')}.test"
	customer = make_customer(f"Initech {domain}")
	make_contact("Bill", [f"bill@{domain}"], customer)
	box = new_mailbox(dovecot)
	account = make_account(dovecot, box, create_issues=1)
	mine = ["Synced Email", "account", "=", account]
	theirs = ["Issue", "customer", "=", customer]
	ours = ["Email Sync Account", "name", "=", account]
	assert (card_count(CARDS[0], mine), card_count(CARDS[1], mine)) == (0, 0)
	assert (card_count(CARDS[2], ours), card_count(CARDS[3], theirs)) == (0, 0)

	# an old email synced today counts as synced today; it opens an Issue
	deliver(dovecot, box, [mail(f"bill@{domain}", box.name, subject="TPS report cover",
		date=datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc))])  # fmt: skip
	sync_account(account)
	frappe.db.rollback()
	assert card_count(CARDS[0], mine) == 1
	assert card_count(CARDS[3], theirs) == 1
	assert card_count(CARDS[1], mine) == 0

	# a stranger's email waits for review, and is not "synced" (filed)
	deliver(dovecot, box, [mail(f"{unique('someone')}@elsewhere.example", box.name, subject="Who are you")])
	sync_account(account)
	frappe.db.rollback()
	assert (card_count(CARDS[1], mine), card_count(CARDS[0], mine)) == (1, 1)

	# an account in status Error needs attention; an Issue resolved is no longer open
	frappe.db.set_value("Email Sync Account", account, "status", "Error")
	issue = frappe.db.get_value("Issue", {"customer": customer}, "name")
	frappe.db.set_value("Issue", issue, "status", "Resolved")
	frappe.db.commit()
	assert (card_count(CARDS[2], ours), card_count(CARDS[3], theirs)) == (1, 0)
	frappe.db.set_value("Email Sync Account", account, "status", "Paused")
	frappe.db.commit()
	assert card_count(CARDS[2], ours) == 0

	# unscoped, each card is the plain count of what it names (one snapshot: same transaction)
	frappe.db.rollback()
	today = nowdate()
	assert card_count(CARDS[0]) == frappe.db.sql(
		"select count(*) from `tabSynced Email` where status = 'Filed' and date(creation) = %s", today
	)[0][0]
	assert card_count(CARDS[1]) == frappe.db.count("Synced Email", {"status": "Needs Review"})
	assert card_count(CARDS[2]) == frappe.db.count("Email Sync Account", {"status": "Error"})
	assert card_count(CARDS[3]) == frappe.db.count(
		"Issue", {"email_sync_source": "Email", "status": ("in", ["Open", "Replied", "On Hold"])}
	)


def test_workspace_places_cards_shortcuts_and_links():
	from frappe.desk.desktop import get_desktop_page

	ws = frappe.get_doc("Workspace", WORKSPACE)
	assert (ws.module, ws.public, ws.is_hidden) == ("Email Sync", 1, 0)
	# /app/<slug> of a workspace would hide a Page or DocType of the same slug: keep it free
	slug = WORKSPACE.lower().replace(" ", "-")
	assert not frappe.db.exists("Page", slug) and not frappe.db.exists("DocType", WORKSPACE)

	blocks = json.loads(ws.content)
	keys = {"number_card": "number_card_name", "shortcut": "shortcut_name", "card": "card_name"}
	placed = {kind: [b["data"][key] for b in blocks if b["type"] == kind] for kind, key in keys.items()}
	assert placed["number_card"] == list(CARDS)
	assert sorted(placed["shortcut"]) == sorted(s.label for s in ws.shortcuts)
	card_breaks = [link.label for link in ws.links if link.type == "Card Break"]
	assert placed["card"] == card_breaks == ["Setup", "Activity", "Reports"]
	assert len({b["id"] for b in blocks}) == len(blocks)

	for name in CARDS:
		card = frappe.get_doc("Number Card", name)
		assert (card.module, card.is_standard, card.is_public, card.type) == ("Email Sync", 1, 1, "Document Type")
	targets = {(s.type, s.link_to) for s in ws.shortcuts}
	assert {("Page", "email-sync"), ("Report", REPORT), ("DocType", "Synced Email"), ("DocType", "Issue"),
		("DocType", "Email Sync Account"), ("DocType", "Email Sync Settings"), ("DocType", "Email Sync Filter"),
		("DocType", "Email Sync Blacklist"), ("DocType", "Email Sync Log")} <= targets  # fmt: skip
	review = next(s for s in ws.shortcuts if s.label == "Needs Review")
	assert json.loads(review.stats_filter) == {"status": "Needs Review"}
	for link in ws.links:
		if link.type == "Link" and link.link_type != "Page":
			assert frappe.db.exists(link.link_type, link.link_to), link.link_to

	page = get_desktop_page(json.dumps({"name": WORKSPACE, "title": WORKSPACE, "public": 1}))
	assert len(page["number_cards"]["items"]) == 4
	assert len(page["shortcuts"]["items"]) == len(ws.shortcuts)
	assert [card["label"] for card in page["cards"]["items"]][:3] == ["Setup", "Activity", "Reports"]
