"""doctor's Scheduler check: 'enabled' is only the site's flag, so it also looks at when Email Sync's
per-minute dispatcher last ran. A bench with no scheduler process (or no worker on the default queue) is
reported with the fix, instead of 'Enabled' while no account ever syncs by itself."""

from datetime import timedelta

import frappe

from email_sync.sync.doctor import DISPATCHER, dispatcher_check


def dispatcher_job():
	return frappe.db.get_value("Scheduled Job Type", {"method": DISPATCHER}, ["last_execution", "creation"], as_dict=True)


def test_a_dispatcher_that_ran_within_minutes_means_the_scheduler_runs():
	job = dispatcher_job()
	since = job.last_execution or job.creation
	check = dispatcher_check(now=since + timedelta(minutes=2))
	assert check.ok and check.name == "Scheduler"


def test_a_dispatcher_that_stopped_running_names_the_missing_scheduler_and_the_fix():
	job = dispatcher_job()
	since = job.last_execution or job.creation
	check = dispatcher_check(now=since + timedelta(minutes=45))
	assert not check.ok
	assert "45 minutes" in check.detail and "no scheduler process runs" in check.detail
	assert "bench start" in check.fix and "bench schedule" in check.fix

