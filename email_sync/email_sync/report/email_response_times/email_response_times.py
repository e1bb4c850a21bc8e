# Copyright (c) 2026, Email Sync developers
# For license information, please see license.txt

"""Email Response Times: how long customers waited for a first reply and for resolution, on Issues from email.

The clock starts at the first inbound (Received) email on the Issue (the Issue's creation when it has none).
The first response is the earliest Sent email on the Issue from then on, whether it was sent from a synced
mailbox or from the Issue form. Resolution is the Issue's resolution_date (ERPNext sets it when an SLA
applies), else the last time its status became Resolved or Closed in its version history.

Everything comes from a handful of bulk queries, whatever the number of Issues.
"""

from __future__ import annotations

import json
from statistics import mean, median

import frappe
from frappe import _
from frappe.utils import add_days, flt, get_datetime, getdate, nowdate, parse_addr

GROUP_BY = ("Issue", "Customer", "Agent", "Account")
RESOLVED_STATUSES = ("Resolved", "Closed")
CHART_BARS = 20  # the groups with the most Issues; a chart of hundreds of bars says nothing


def execute(filters=None):
	filters = frappe._dict(filters or {})
	group_by = filters.get("group_by") or "Issue"
	if group_by not in GROUP_BY:
		frappe.throw(_("Group By must be one of {0}").format(", ".join(GROUP_BY)))

	rows = issue_rows(filters)
	if group_by == "Issue":
		columns, data, chart = issue_columns(), rows, daily_chart(rows)
	else:
		data = grouped(rows, group_by)
		columns, chart = group_columns(group_by), group_chart(data, group_by)
	return columns, data, None, chart, summary(rows)


def issue_rows(filters) -> list[dict]:
	from_date = getdate(filters.get("from_date") or add_days(nowdate(), -30))
	to_date = getdate(filters.get("to_date") or nowdate())
	if from_date > to_date:
		frappe.throw(_("From Date must be before To Date"))

	conditions = {"email_sync_source": "Email", "opening_date": ["between", [from_date, to_date]]}
	if filters.get("account"):
		conditions["email_sync_account"] = filters.account
	if filters.get("customer"):
		conditions["customer"] = filters.customer
	issues = frappe.get_list(  # the user's permissions on Issue apply
		"Issue",
		filters=conditions,
		fields=[
			"name", "subject", "status", "customer", "email_sync_account", "opening_date", "creation",
			"resolution_date", "_assign",
		],
		order_by="opening_date desc, creation desc",
		limit_page_length=0,
	)  # fmt: skip
	if not issues:
		return []

	names = [issue.name for issue in issues]
	threads = first_messages(names)
	users = users_by_email({parse_addr(t.sender)[1] for t in threads.values() if t.sender})
	unresolved = [i.name for i in issues if i.status in RESOLVED_STATUSES and not i.resolution_date]
	resolved_on = resolution_from_history(unresolved) if unresolved else {}

	rows = []
	for issue in issues:
		thread = threads.get(issue.name) or frappe._dict()
		start = thread.first_in or issue.creation
		agent, agent_address = None, None
		if thread.sender:
			address = parse_addr(thread.sender)[1]
			agent = users.get(address.lower())
			agent_address = None if agent else address
		else:
			agent = first_assignee(issue._assign)
		resolved = None
		if issue.status in RESOLVED_STATUSES:
			resolved = issue.resolution_date or resolved_on.get(issue.name)
		rows.append(
			{
				"issue": issue.name,
				"subject": issue.subject,
				"status": issue.status,
				"customer": issue.customer,
				"account": issue.email_sync_account,
				"agent": agent,
				"agent_address": agent_address,
				"opening_date": issue.opening_date,
				"first_inbound": start,
				"first_reply": thread.replied_on,
				"first_response_hours": hours(start, thread.replied_on),
				"resolution_date": resolved,
				"resolution_hours": hours(start, resolved, floor=0),
			}
		)
	return rows


def first_messages(issues: list[str]) -> dict[str, frappe._dict]:
	"""Per Issue: its first inbound email (else its creation), and the first email sent on it from then on."""
	rows = frappe.db.sql(
		"""
		with firsts as (
			select i.name as issue, coalesce(min(c.communication_date), i.creation) as first_in
			from `tabIssue` i
			left join `tabCommunication` c on c.reference_doctype = 'Issue' and c.reference_name = i.name
				and c.communication_type = 'Communication' and c.sent_or_received = 'Received'
			where i.name in %(issues)s
			group by i.name, i.creation
		),
		replies as (
			select c.reference_name as issue, c.communication_date as replied_on, c.sender,
				row_number() over (
					partition by c.reference_name order by c.communication_date, c.creation
				) as position
			from `tabCommunication` c
			join firsts f on f.issue = c.reference_name
			where c.reference_doctype = 'Issue' and c.reference_name in %(issues)s
				and c.communication_type = 'Communication' and c.sent_or_received = 'Sent'
				and c.communication_date >= f.first_in
		)
		select f.issue, f.first_in, r.replied_on, r.sender
		from firsts f
		left join replies r on r.issue = f.issue and r.position = 1
		""",
		{"issues": issues},
		as_dict=True,
	)
	return {row.issue: row for row in rows}


def users_by_email(addresses: set[str]) -> dict[str, str]:
	addresses = {a for a in addresses if a}
	if not addresses:
		return {}
	rows = frappe.db.sql(
		"select email, name from `tabUser` where email in %(emails)s", {"emails": list(addresses)}
	)
	return {email.lower(): name for email, name in rows if email}


def resolution_from_history(issues: list[str]) -> dict[str, object]:
	"""When each Issue last turned Resolved or Closed, from its versions (Issue tracks changes)."""
	resolved = {}
	rows = frappe.db.sql(
		"""select docname, creation, data from `tabVersion`
		where ref_doctype = 'Issue' and docname in %(issues)s and data like %(status)s
		order by creation""",
		{"issues": issues, "status": '%"status"%'},
	)
	for issue, when, data in rows:
		try:
			changed = json.loads(data or "{}").get("changed") or []
		except ValueError:
			continue
		for change in changed:
			if len(change) == 3 and change[0] == "status":
				old, new = change[1], change[2]
				if new in RESOLVED_STATUSES and old not in RESOLVED_STATUSES:
					resolved[issue] = when
	return resolved


def first_assignee(assign: str | None) -> str | None:
	try:
		users = json.loads(assign or "[]")
	except ValueError:
		return None
	return users[0] if users else None


def hours(start, end, floor=None) -> float | None:
	if not start or not end:
		return None
	value = (get_datetime(end) - get_datetime(start)).total_seconds() / 3600
	if floor is not None:
		value = max(value, floor)
	return flt(value, 2)


def grouped(rows: list[dict], group_by: str) -> list[dict]:
	groups: dict[tuple, list[dict]] = {}
	for row in rows:
		groups.setdefault(group_key(row, group_by), []).append(row)

	data = []
	for key, members in groups.items():
		responses = [r["first_response_hours"] for r in members if r["first_response_hours"] is not None]
		resolutions = [r["resolution_hours"] for r in members if r["resolution_hours"] is not None]
		data.append(
			{
				**dict(zip(key_fields(group_by), key)),
				"issues": len(members),
				"replied": len(responses),
				"unreplied": len(members) - len(responses),
				"avg_first_response_hours": average(responses),
				"median_first_response_hours": middle(responses),
				"resolved": len(resolutions),
				"avg_resolution_hours": average(resolutions),
				"median_resolution_hours": middle(resolutions),
			}
		)
	# the busiest first; rows without a customer/agent/account last
	fields = key_fields(group_by)
	data.sort(key=lambda d: (not any(d.get(f) for f in fields), -d["issues"], group_label(d, group_by)))
	return data


def key_fields(group_by: str) -> tuple[str, ...]:
	return {"Customer": ("customer",), "Agent": ("agent", "agent_address"), "Account": ("account",)}[group_by]


def group_key(row: dict, group_by: str) -> tuple:
	return tuple(row[f] for f in key_fields(group_by))


def group_label(row: dict, group_by: str) -> str:
	return next((row[f] for f in key_fields(group_by) if row.get(f)), None) or _("Not set")


def average(values: list[float]) -> float | None:
	return flt(mean(values), 2) if values else None


def middle(values: list[float]) -> float | None:
	return flt(median(values), 2) if values else None


def hours_column(fieldname: str, label: str, width: int = 130) -> dict:
	return {"fieldname": fieldname, "label": label, "fieldtype": "Float", "precision": 2, "width": width}


def aligned(columns: list[dict]) -> list[dict]:
	# The report table right-aligns a column whose first cell is empty (it looks numeric): say it outright.
	for column in columns:
		column.setdefault("align", "right" if column["fieldtype"] in ("Int", "Float") else "left")
	return columns


def issue_columns() -> list[dict]:
	return aligned([
		{"fieldname": "issue", "label": _("Issue"), "fieldtype": "Link", "options": "Issue", "width": 150},
		{"fieldname": "subject", "label": _("Subject"), "fieldtype": "Data", "width": 200},
		{"fieldname": "status", "label": _("Status"), "fieldtype": "Data", "width": 90},
		{"fieldname": "customer", "label": _("Customer"), "fieldtype": "Link", "options": "Customer", "width": 160},
		{
			"fieldname": "account",
			"label": _("Account"),
			"fieldtype": "Link",
			"options": "Email Sync Account",
			"width": 180,
		},
		{"fieldname": "agent", "label": _("Agent"), "fieldtype": "Link", "options": "User", "width": 160},
		{"fieldname": "agent_address", "label": _("Replied From"), "fieldtype": "Data", "width": 180},
		{"fieldname": "opening_date", "label": _("Opened"), "fieldtype": "Date", "width": 100},
		{"fieldname": "first_inbound", "label": _("First Email"), "fieldtype": "Datetime", "width": 160},
		{"fieldname": "first_reply", "label": _("First Reply"), "fieldtype": "Datetime", "width": 160},
		hours_column("first_response_hours", _("First Response (h)"), 150),
		{"fieldname": "resolution_date", "label": _("Resolved On"), "fieldtype": "Datetime", "width": 160},
		hours_column("resolution_hours", _("Resolution (h)"), 130),
	])


def group_columns(group_by: str) -> list[dict]:
	key = {
		"Customer": [
			{"fieldname": "customer", "label": _("Customer"), "fieldtype": "Link", "options": "Customer", "width": 200}
		],
		"Agent": [
			{"fieldname": "agent", "label": _("Agent"), "fieldtype": "Link", "options": "User", "width": 180},
			{"fieldname": "agent_address", "label": _("Replied From"), "fieldtype": "Data", "width": 200},
		],
		"Account": [
			{
				"fieldname": "account",
				"label": _("Account"),
				"fieldtype": "Link",
				"options": "Email Sync Account",
				"width": 220,
			}
		],
	}[group_by]
	return aligned([
		*key,
		{"fieldname": "issues", "label": _("Issues"), "fieldtype": "Int", "width": 80},
		{"fieldname": "replied", "label": _("Replied"), "fieldtype": "Int", "width": 80},
		{"fieldname": "unreplied", "label": _("Unreplied"), "fieldtype": "Int", "width": 90},
		hours_column("avg_first_response_hours", _("Avg First Response (h)"), 190),
		hours_column("median_first_response_hours", _("Median First Response (h)"), 210),
		{"fieldname": "resolved", "label": _("Resolved"), "fieldtype": "Int", "width": 90},
		hours_column("avg_resolution_hours", _("Avg Resolution (h)"), 170),
		hours_column("median_resolution_hours", _("Median Resolution (h)"), 190),
	])


def daily_chart(rows: list[dict]) -> dict | None:
	by_day: dict = {}
	for row in rows:
		if row["first_response_hours"] is not None:
			by_day.setdefault(getdate(row["opening_date"] or row["first_inbound"]), []).append(
				row["first_response_hours"]
			)
	if not by_day:
		return None
	days = sorted(by_day)
	return bar_chart(
		[frappe.format(day, {"fieldtype": "Date"}) for day in days], [average(by_day[d]) for d in days]
	)


def group_chart(data: list[dict], group_by: str) -> dict | None:
	replied = [d for d in data if d["avg_first_response_hours"] is not None][:CHART_BARS]
	if not replied:
		return None
	labels = [group_label(d, group_by) for d in replied]
	return bar_chart(labels, [d["avg_first_response_hours"] for d in replied])


def bar_chart(labels: list[str], values: list[float]) -> dict:
	return {
		"data": {"labels": labels, "datasets": [{"name": _("Avg First Response (h)"), "values": values}]},
		"type": "bar",
		"fieldtype": "Float",
		"colors": ["#5e64ff"],
		"barOptions": {"spaceRatio": 0.5},
	}


def summary(rows: list[dict]) -> list[dict]:
	responses = [r["first_response_hours"] for r in rows if r["first_response_hours"] is not None]
	resolutions = [r["resolution_hours"] for r in rows if r["resolution_hours"] is not None]
	replied = flt(100.0 * len(responses) / len(rows), 1) if rows else 0
	return [
		{"value": len(rows), "label": _("Issues"), "datatype": "Int", "indicator": "Blue"},
		{
			"value": replied,
			"label": _("Replied"),
			"datatype": "Percent",
			"indicator": "Green" if replied >= 90 else "Red" if replied < 50 else "Grey",
		},
		duration_figure(middle(responses), _("Median First Response")),
		duration_figure(middle(resolutions), _("Median Resolution")),
	]


def duration_figure(hours: float | None, label: str) -> dict:
	"""A median in hours, shown as a duration (1h 45m, 2d 3h 6m): the value is in seconds."""
	if hours is None:  # nothing to measure yet: a dash, not an empty space or a misleading 0
		return {"value": "-", "label": label, "datatype": "Data", "indicator": "Grey"}
	return {"value": round(hours * 3600), "label": label, "datatype": "Duration", "indicator": "Blue"}
