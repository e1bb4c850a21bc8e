"""A run killed with its worker leaves its Sync Log 'Running'; the account's next run says what became of it,
so neither the log nor the Email Sync page shows a run that will never finish."""

import os
import signal
import subprocess
import sys
import time

import frappe
from factories import deliver, mail, make_account, make_party, new_mailbox

from email_sync.sync.runner import sync_account

RUN_SYNC = """
import sys, frappe
frappe.init(site=sys.argv[1], sites_path=".")
frappe.connect()
frappe.set_user("Administrator")
from email_sync.sync.runner import sync_account
sync_account(sys.argv[2])
"""


def logs(account: str) -> list:
	frappe.db.rollback()  # see what other connections committed
	return frappe.get_all(
		"Email Sync Log", filters={"account": account}, fields=["status", "error_code", "error"], order_by="creation"
	)


def test_the_next_run_closes_the_log_of_a_run_killed_with_its_worker(dovecot):
	party = make_party("killed", "Ana")
	user = new_mailbox(dovecot)
	deliver(dovecot, user, [mail(f"ana@{party.domain}", user.name, subject=f"bulk {i:03}") for i in range(300)])
	account = make_account(dovecot, user, batch_size=10)
	worker = subprocess.Popen([sys.executable, "-c", RUN_SYNC, frappe.local.site, account], cwd=os.getcwd(),
	                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
	deadline = time.time() + 60
	while time.time() < deadline and frappe.db.count("Synced Email", {"account": account}) < 30:
		time.sleep(0.05)
		frappe.db.rollback()
	worker.send_signal(signal.SIGKILL)
	worker.wait()
	assert [log.status for log in logs(account)] == ["Running"], "the worker should have been killed mid-run"

	sync_account(account)

	killed, rerun = logs(account)
	assert (killed.status, killed.error_code) == ("Failed", "interrupted")
	assert "stopped before it finished" in killed.error
	assert rerun.status == "Success"
	account_row = frappe.db.get_value("Email Sync Account", account, ["status", "consecutive_failures"], as_dict=True)
	assert (account_row.status, account_row.consecutive_failures) == ("Active", 0)  # not a failure of the account
