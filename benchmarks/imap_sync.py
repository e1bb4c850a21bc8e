"""IMAP sync benchmark: Email Sync against Frappe's built-in Email Account pull, same site, same mail.

Run from the bench's `sites` directory with the bench's Python:

    cd <bench>/sites
    ../env/bin/python <repo>/benchmarks/imap_sync.py --site email-sync.localhost --messages 2000
    ../env/bin/python <repo>/benchmarks/imap_sync.py --site email-sync.localhost --messages 2000,10000
    ../env/bin/python <repo>/benchmarks/imap_sync.py --site email-sync.localhost --messages 10000 --only email-sync
    ../env/bin/python <repo>/benchmarks/imap_sync.py --site email-sync.localhost --messages 2000 \
        --only builtin-issue,email-sync-issue       # both tools also creating Issues

What happens, per message count N:
1. A throwaway Dovecot on 127.0.0.1 (tests/providers/dovecot.py) gets one user per tool; every user's INBOX
   receives byte-identical copies of N generated messages (deterministic: --seed). The messages are addressed to
   one shared mailbox address; each tool logs in as its own user, so neither sees the other's \\Seen flags.
2. The site is seeded once (kept and reused): 300 Customers "Bench Customer 001".. with a domain each
   (custom field email_sync_domains) and 1,000 Contacts linked to them, some with a second address.
3. Each tool runs in a fresh subprocess (peak RSS is the sync's own), counting this connection's MariaDB
   `Questions` before and after:
   - Email Sync: one `email_sync.sync.runner.sync_account()` call (it reads everything in batches).
   - Built-in: `pull_from_email_account()` (the scheduler job's body) plus the job's commit, repeated until
     the mailbox has no unseen mail left (each pull takes at most 100 messages per folder). Bookkeeping
     between pulls (counting, checking the mailbox) is not timed or counted. The account is hidden from the
     site's scheduler (awaiting_password=1 after it is saved), so no worker pulls it meanwhile.
4. Everything a run created is deleted afterwards (accounts, Synced Emails, Communications and their links
   and files, logs, Contacts auto-created for the run's addresses); the seeded Customers/Contacts stay.

Do not run two instances against the same site at the same time: each start removes leftovers of runs
that died (accounts named bench-inbox-*).
"""

from __future__ import annotations

import argparse
import contextlib
import html
import imaplib
import json
import os
import random
import resource
import struct
import subprocess
import sys
import time
import zlib
from datetime import datetime, timedelta, timezone
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULT_MARK = "BENCH_RESULT "
SITE_SEED = 20240611  # the seeded Customers/Contacts never change, whatever --seed says
N_CUSTOMERS = 300
N_CONTACTS = 1000
ACCOUNT_PREFIX = "bench-inbox-"
EA_NAME_PREFIX = "Bench IMAP "
TARGET_RATIO = 5.0
TOOLS = ("email-sync", "builtin", "email-sync-issue", "builtin-issue", "email-sync-no-files")


# -- names and words ---------------------------------------------------------------------------------------------

FIRST = (  # noqa: SIM905 - words are easier to read and edit as text
	"James Mary Robert Patricia John Jennifer Michael Linda David Elizabeth William Barbara Richard Susan Joseph "
	"Jessica Thomas Sarah Charles Karen Daniel Nancy Matthew Lisa Anthony Betty Mark Sandra Paul Ashley Steven "
	"Emily Andrew Donna Kevin Michelle Brian Carol George Amanda Edward Melissa Ronald Deborah Timothy Stephanie "
	"Jason Rebecca Jeffrey Laura Ryan Helen Jacob Sharon Gary Cynthia Nicholas Kathleen Eric Amy Jonathan Angela"
).split()
LAST = (  # noqa: SIM905
	"Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Wilson Anderson "
	"Thomas Taylor Moore Jackson Martin Lee Thompson White Harris Clark Lewis Robinson Walker Young Allen King "
	"Wright Scott Hill Green Adams Nelson Baker Hall Campbell Mitchell Carter Roberts Phillips Evans Turner Parker "
	"Collins Edwards Stewart Morris Murphy Cook Rogers Morgan Peterson Cooper Reed Bailey Bell Kelly Howard Ward"
).split()
# (first, last, ascii first, ascii last, language)
NON_ASCII_PEOPLE = (
	("Jürgen", "Müller", "juergen", "mueller", "de"), ("Björn", "Schäfer", "bjoern", "schaefer", "de"),
	("Sören", "Groß", "soeren", "gross", "de"), ("Käthe", "Köhler", "kaethe", "koehler", "de"),
	("Günther", "Weiß", "guenther", "weiss", "de"), ("Jörg", "Bäcker", "joerg", "baecker", "de"),
	("François", "Lefèvre", "francois", "lefevre", "fr"), ("Hélène", "Girard", "helene", "girard", "fr"),
	("Zoë", "Dubois", "zoe", "dubois", "fr"), ("Amélie", "Fournier", "amelie", "fournier", "fr"),
	("Jérôme", "Lemaître", "jerome", "lemaitre", "fr"), ("Cécile", "Bérenger", "cecile", "berenger", "fr"),
	("Дмитрий", "Иванов", "dmitry", "ivanov", "ru"), ("Анна", "Смирнова", "anna", "smirnova", "ru"),
	("Сергей", "Кузнецов", "sergey", "kuznetsov", "ru"), ("Ольга", "Попова", "olga", "popova", "ru"),
	("伟", "王", "wei", "wang", "zh"), ("娜", "李", "na", "li", "zh"), ("敏", "张", "min", "zhang", "zh"),
	("静", "刘", "jing", "liu", "zh"), ("强", "陈", "qiang", "chen", "zh"),
)  # fmt: skip
FREE_MAIL = {
	"en": ("gmail.com", "yahoo.com", "outlook.com", "hotmail.com", "icloud.com"),
	"de": ("web.de", "gmx.de", "t-online.de"),
	"fr": ("orange.fr", "laposte.net", "free.fr"),
	"ru": ("mail.ru", "yandex.ru"),
	"zh": ("qq.com", "163.com"),
}
PRODUCTS = (
	"Industrial pump P-200", "Stainless valve DN50", "Hydraulic hose 3/4\"", "Control unit CU-7", "Pressure sensor",
	"Gear motor 0.75 kW", "Filter cartridge F12", "Mounting kit", "Service contract (12 months)", "Spare seal set",
	"Flow meter FM-40", "Cable harness 5 m", "Frequency inverter", "Safety relay", "Conveyor belt 600 mm",
)  # fmt: skip
LANGS = ("de", "fr", "ru", "zh")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
SUBJECTS = {
	"en": (
		"Order {n}: delivery date", "Question about invoice INV-{n}", "Quote request: {p}", "Meeting next {d}",
		"Contract renewal {y}", "Problem with {p}", "Updated price list {y}", "Shipment {n} delayed?",
		"Returns authorisation for order {n}", "Technical drawing for {p}", "Payment reminder INV-{n}",
		"Visit on {d}", "Training request for our team", "Warranty claim {n}", "Samples of {p}",
	),
	"de": (
		"Rückfrage zur Lieferung – Auftrag {n}", "Änderung der Bestellung {n}", "Angebot für {p} gewünscht",
		"Reklamation: Gerät defekt", "Terminbestätigung für {d}", "Preiserhöhung ab Januar – Stellungnahme",
	),
	"fr": (
		"Problème de facturation – facture {n}", "Demande de devis pour l'été", "Livraison prévue le {d}",
		"Réclamation concernant la commande {n}", "Mise à jour du contrat – année {y}",
	),
	"ru": (
		"Вопрос по счёту {n}", "Заказ {n}: сроки поставки", "Запрос коммерческого предложения",
		"Рекламация по заказу {n}", "Встреча в {d}",
	),
	"zh": ("关于订单 {n} 的交货时间", "发票问题 {n}", "报价请求：{p}", "合同续签 {y}", "样品确认"),
}
SENTENCES = {
	"en": (
		"Thank you for your quick reply yesterday.",
		"Could you please confirm the delivery date for the remaining items?",
		"We have attached the updated specification for your review.",
		"Our accounts team noticed a difference between the quote and the invoice.",
		"Please let me know if you need anything else from our side.",
		"The last shipment arrived in good condition, many thanks.",
		"We would like to order the same quantity as last quarter.",
		"Unfortunately two units were damaged during transport.",
		"Can we schedule a short call to go through the open points?",
		"Our production plan depends on this delivery, so an early answer would help.",
		"I am out of the office next week; my colleague will follow up.",
		"The purchase order number must appear on every invoice.",
		"We are reviewing suppliers for next year and would welcome your offer.",
		"Please send the certificates of conformity together with the goods.",
	),
	"de": (
		"Vielen Dank für Ihre schnelle Rückmeldung.",
		"Könnten Sie uns bitte den Liefertermin für die restlichen Positionen bestätigen?",
		"Leider sind bei der Lieferung zwei Geräte beschädigt worden.",
		"Wir möchten die gleiche Menge wie im letzten Quartal bestellen.",
		"Bitte geben Sie auf allen Rechnungen unsere Bestellnummer an.",
		"Für Rückfragen stehe ich Ihnen gerne zur Verfügung.",
	),
	"fr": (
		"Merci beaucoup pour votre réponse rapide.",
		"Pourriez-vous nous confirmer la date de livraison des articles restants ?",
		"Nous avons constaté une différence entre le devis et la facture.",
		"Deux unités ont malheureusement été endommagées pendant le transport.",
		"Je reste à votre disposition pour toute question.",
	),
	"ru": (
		"Спасибо за быстрый ответ.",
		"Подтвердите, пожалуйста, дату поставки оставшихся позиций.",
		"К сожалению, при транспортировке были повреждены две единицы.",
		"Просим указывать номер заказа во всех счетах.",
		"Буду рад ответить на ваши вопросы.",
	),
	"zh": (
		"感谢您昨天的快速回复。",
		"请确认剩余货物的交货日期。",
		"很遗憾，运输过程中有两台设备损坏。",
		"请在所有发票上注明我们的订单号。",
		"如有任何问题，请随时与我联系。",
	),
}
GREETING = {"en": "Hello {n},", "de": "Guten Tag {n},", "fr": "Bonjour {n},", "ru": "Здравствуйте, {n}!", "zh": "{n}，您好："}
CLOSING = {"en": "Best regards,", "de": "Mit freundlichen Grüßen", "fr": "Cordialement,", "ru": "С уважением,", "zh": "此致敬礼"}
NEWSLETTERS = (
	("Industry Weekly", "news@industry-weekly.example", "Industry Weekly #{n}: what changed in supply chains"),
	("Cloud Tools Digest", "digest@cloudtools.example", "Your monthly product update ({n})"),
	("Trade Fair Hannover", "info@tradefair-news.example", "Last chance: register for the fair, issue {n}"),
	("Webinar Team", "noreply@webinars.example", "Invitation: automation webinar no. {n}"),
	("Supplier Portal", "newsletter@supplier-portal.example", "New features in the supplier portal #{n}"),
)
COLLEAGUES = (
	("Laura", "Becker"), ("Tom", "Fischer"), ("Nina", "Wagner"), ("Peter", "Schulz"), ("Mia", "Hoffmann"),
	("Lukas", "Koch"), ("Sophie", "Richter"), ("Felix", "Klein"), ("Emma", "Wolf"), ("Jonas", "Neumann"),
)  # fmt: skip


# -- the seeded site ---------------------------------------------------------------------------------------------


def people_spec() -> list[dict]:
	"""The 1,000 seeded Contacts, always the same: name, customer number, addresses, language."""
	rng = random.Random(SITE_SEED)
	used: set[str] = set()
	people = []
	for i in range(N_CONTACTS):
		customer = i + 1 if i < N_CUSTOMERS else rng.randint(1, N_CUSTOMERS)  # every Customer has one
		domain = f"bench-{customer:03d}.example"
		if rng.random() < 0.12:
			first, last, a_first, a_last, lang = rng.choice(NON_ASCII_PEOPLE)
		else:
			first, last = rng.choice(FIRST), rng.choice(LAST)
			a_first, a_last, lang = first.lower(), last.lower(), "en"
		local = f"{a_first}.{a_last}"
		email, k = f"{local}@{domain}", 1
		while email in used:
			k += 1
			email = f"{local}{k}@{domain}"
		used.add(email)
		emails = [email]
		if rng.random() < 0.2:  # a second address: a short form at the company, or a personal free-mail one
			if rng.random() < 0.66:
				second = f"{a_first[0]}.{a_last}{k if k > 1 else ''}@{domain}"
			else:
				second = f"{a_first}.{a_last}.{customer:03d}{i}@{rng.choice(FREE_MAIL[lang if lang in FREE_MAIL else 'en'])}"
			if second not in used:
				used.add(second)
				emails.append(second)
		people.append({"first": first, "last": last, "customer": customer, "emails": emails, "lang": lang})
	return people


def customer_name(n: int) -> str:
	return f"Bench Customer {n:03d}"


def seed_site(frappe, people: list[dict]) -> dict[int, str]:
	"""Create what is missing of the seeded Customers/Contacts; returns customer number -> Customer name."""
	for doctype, name, parent_field in (
		("Customer Group", "All Customer Groups", "parent_customer_group"),
		("Territory", "All Territories", "parent_territory"),
	):
		if not frappe.db.exists(doctype, name):
			frappe.get_doc({"doctype": doctype, doctype.lower().replace(" ", "_") + "_name": name, "is_group": 1,
			                parent_field: ""}).insert(ignore_permissions=True)  # fmt: skip
	existing = dict(
		frappe.db.sql("select customer_name, name from tabCustomer where customer_name like 'Bench Customer %%'")
	)
	created = 0
	customers = {}
	for n in range(1, N_CUSTOMERS + 1):
		title = customer_name(n)
		if title not in existing:
			doc = frappe.get_doc(
				{
					"doctype": "Customer",
					"customer_name": title,
					"customer_type": "Company",
					"customer_group": "All Customer Groups",
					"territory": "All Territories",
					"email_sync_domains": f"bench-{n:03d}.example",
				}
			).insert(ignore_permissions=True)
			existing[title] = doc.name
			created += 1
		customers[n] = existing[title]
		if created and created % 100 == 0:
			frappe.db.commit()
	for n, name in customers.items():  # idempotent: make sure each has its domain
		frappe.db.sql(
			"update tabCustomer set email_sync_domains = %s where name = %s and ifnull(email_sync_domains, '') != %s",
			(f"bench-{n:03d}.example", name, f"bench-{n:03d}.example"),
		)
	frappe.db.commit()
	known = {
		e.lower()
		for e in frappe.db.sql_list(
			"select email_id from `tabContact Email` where email_id like '%%@bench-___.example' and parenttype = 'Contact'"
		)
	}
	new_contacts = 0
	for person in people:
		if person["emails"][0] in known:
			continue
		frappe.get_doc(
			{
				"doctype": "Contact",
				"first_name": person["first"],
				"last_name": person["last"],
				"email_ids": [{"email_id": e, "is_primary": int(i == 0)} for i, e in enumerate(person["emails"])],
				"links": [{"link_doctype": "Customer", "link_name": customers[person["customer"]]}],
			}
		).insert(ignore_permissions=True)
		new_contacts += 1
		if new_contacts % 100 == 0:
			frappe.db.commit()
	frappe.db.commit()
	if created or new_contacts:
		print(f"seeded: {created} Customers, {new_contacts} Contacts created")
	return customers


# -- message generation ------------------------------------------------------------------------------------------


class Generator:
	"""N realistic messages, the same for the same seed; Message-IDs carry the run id, so each run is new mail."""

	def __init__(self, seed: int, run: str, mailbox: str, internal: str, people: list[dict]):
		self.rng = random.Random(seed)
		self.run = run
		self.mailbox = mailbox
		self.internal = internal
		self.people = people
		self.by_customer: dict[int, list[dict]] = {}
		for p in people:
			self.by_customer.setdefault(p["customer"], []).append(p)
		self.start = datetime(2024, 9, 2, 7, 0, tzinfo=timezone.utc)
		self.history: list[dict] = []  # sent so far: thread candidates
		self.by_person: dict[str, list[dict]] = {}
		self.addresses: set[str] = {mailbox}  # every address used, to find auto-created Contacts later
		self.kinds: dict[str, int] = {}
		self.replies = self.non_ascii = self.attachments = self.html = 0

	def messages(self, n: int) -> list[bytes]:
		step = timedelta(days=90) / max(n, 1)
		return [self.message(i, self.start + step * i) for i in range(n)]

	# one message

	def message(self, i: int, when: datetime) -> bytes:
		rng = self.rng
		r = rng.random()
		kind = (
			"contact" if r < 0.80 else "unknown" if r < 0.88 else "newsletter" if r < 0.93
			else "internal" if r < 0.97 else "outbound"
		)  # fmt: skip
		self.kinds[kind] = self.kinds.get(kind, 0) + 1
		foreign = rng.random()
		lang = "en"
		msg = EmailMessage()
		parent = None
		person = None
		if kind == "contact":
			person = rng.choice(self.people)
			lang = person["lang"] if person["lang"] != "en" else rng.choice(LANGS) if foreign < 0.04 else "en"
			sender = self._person_address(person)
			to = [Address("Customer Service", addr_spec=self.mailbox)]
			cc = []
			if rng.random() < 0.25:
				colleague = rng.choice(self.by_customer[person["customer"]] if rng.random() < 0.6 else self.people)
				if colleague is not person:
					cc.append(self._person_address(colleague, primary=True))
			if rng.random() < 0.21:
				parent = self._thread_of(person)
		elif kind == "unknown":
			lang = rng.choice(LANGS) if foreign < 0.15 else "en"
			if lang == "en":
				first, last = rng.choice(FIRST), rng.choice(LAST)
				a_first, a_last = first.lower(), last.lower()
			else:
				first, last, a_first, a_last, _ = rng.choice([p for p in NON_ASCII_PEOPLE if p[4] == lang])
			sender = Address(f"{first} {last}", addr_spec=f"{a_first}.{a_last}{rng.randint(1, 999)}@{rng.choice(FREE_MAIL[lang])}")
			to, cc = [Address("Customer Service", addr_spec=self.mailbox)], []
		elif kind == "newsletter":
			brand, address, _ = rng.choice(NEWSLETTERS)
			sender = Address(brand, addr_spec=address)
			to, cc = [Address("", addr_spec=self.mailbox)], []
		elif kind == "internal":
			first, last = rng.choice(COLLEAGUES)
			sender = self._colleague(first, last)
			to = [Address("Customer Service", addr_spec=self.mailbox)]
			cc = [self._colleague(*rng.choice(COLLEAGUES))] if rng.random() < 0.4 else []
		else:  # outbound: the mailbox answers a customer
			parent = self._any_inbound()
			person = parent["person"] if parent else rng.choice(self.people)
			lang = person["lang"]
			sender = Address("Customer Service", addr_spec=self.mailbox)
			to, cc = [self._person_address(person, primary=True)], []
		for a in (sender, *to, *cc):
			self.addresses.add(a.addr_spec.lower())

		message_id = f"<{self.run}.{i:06d}.{rng.getrandbits(32):08x}@{sender.domain}>"
		if parent:
			subject = "Re: " + parent["subject"]
			refs = [*parent["refs"], parent["id"]]
			self.replies += 1
		elif kind == "newsletter":
			subject = next(s for b, a, s in NEWSLETTERS if a == sender.addr_spec).format(n=rng.randint(10, 99))
			refs = []
		else:
			subject = self._subject(lang)
			refs = []
		if lang != "en" or any(ord(c) > 127 for c in subject + sender.display_name):
			self.non_ascii += 1
		msg["From"] = sender
		msg["To"] = to
		if cc:
			msg["Cc"] = cc
		msg["Subject"] = subject
		msg["Date"] = format_datetime(when)
		msg["Message-ID"] = message_id
		if parent:
			msg["In-Reply-To"] = parent["id"]
			msg["References"] = " ".join(refs[-10:])
		msg["MIME-Version"] = "1.0"
		if kind == "newsletter":
			token = rng.getrandbits(48)
			msg["List-Unsubscribe"] = f"<mailto:unsubscribe@{sender.domain}?subject=unsub-{token:x}>, <https://{sender.domain}/u/{token:x}>"
			msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
			msg["List-Id"] = f"{sender.display_name} <list.{sender.domain}>"
			msg["Precedence"] = "bulk"
		if kind == "outbound":
			msg["X-Mailer"] = "Microsoft Outlook 16.0"

		first_name = to[0].display_name.split()[0] if kind == "outbound" and to[0].display_name else "team"
		body_text = self._text(lang, first_name, sender.display_name or "Customer Service", parent)
		b = rng.random()
		if kind == "newsletter" or b < 0.35:
			msg.set_content(body_text)
			msg.add_alternative(self._html(lang, body_text, sender.domain, newsletter=kind == "newsletter"), subtype="html")
			self.html += 1
		elif b < 0.40:  # HTML only
			msg.set_content(self._html(lang, body_text, sender.domain), subtype="html")
			self.html += 1
		else:
			msg.set_content(body_text)
		if kind != "newsletter" and rng.random() < 0.11:
			size = rng.randint(20_000, 200_000)
			if rng.random() < 0.6:
				msg.add_attachment(pdf_bytes(rng, size), "application", "pdf", filename=f"document-{i:06d}.pdf")
			else:
				msg.add_attachment(png_bytes(rng, size), "image", "png", filename=f"photo-{i:06d}.png")
			self.attachments += 1

		record = {"id": message_id, "refs": refs, "subject": subject.removeprefix("Re: "), "person": person,
		          "inbound": kind == "contact"}  # fmt: skip
		if person is not None:
			self.history.append(record)
			self.by_person.setdefault(person["emails"][0], []).append(record)
		for k, part in enumerate(p for p in msg.walk() if p.is_multipart()):
			part.set_boundary(f"=_bench_{i:06d}_{k}_{rng.getrandbits(64):016x}")  # not the random module's
		return msg.as_bytes()

	def _person_address(self, person: dict, primary: bool = False) -> Address:
		emails = person["emails"]
		email = emails[1] if not primary and len(emails) > 1 and self.rng.random() < 0.3 else emails[0]
		return Address(f"{person['first']} {person['last']}", addr_spec=email)

	def _colleague(self, first: str, last: str) -> Address:
		return Address(f"{first} {last}", addr_spec=f"{first.lower()}.{last.lower()}@{self.internal}")

	def _thread_of(self, person: dict) -> dict | None:
		own = self.by_person.get(person["emails"][0])
		if own:
			return own[-1] if self.rng.random() < 0.7 else self.rng.choice(own)
		return self._any_inbound()

	def _any_inbound(self) -> dict | None:
		recent = [h for h in self.history[-300:] if h["inbound"]]
		return self.rng.choice(recent) if recent else None

	def _subject(self, lang: str) -> str:
		rng = self.rng
		return rng.choice(SUBJECTS[lang]).format(
			n=rng.randint(10000, 99999), p=rng.choice(PRODUCTS), d=rng.choice(WEEKDAYS), y=rng.choice((2024, 2025))
		)

	def _text(self, lang: str, to_name: str, signer: str, parent: dict | None) -> str:
		rng = self.rng
		lines = [GREETING[lang].format(n=to_name), ""]
		for _ in range(rng.randint(1, 3)):
			lines.append(" ".join(rng.choice(SENTENCES[lang]) for _ in range(rng.randint(2, 5))))
			lines.append("")
		lines += [CLOSING[lang], signer]
		if parent:  # a quoted earlier message, as mail clients add it
			lines += ["", f"> {parent['subject']}"] + [f"> {rng.choice(SENTENCES['en'])}" for _ in range(rng.randint(3, 12))]
		return "\n".join(lines) + "\n"

	def _html(self, lang: str, text: str, domain: str, newsletter: bool = False) -> str:
		rng = self.rng
		target = rng.randint(10_000, 20_000) if newsletter else rng.randint(5_000, 20_000)
		out = [
			"<!DOCTYPE html><html><head><meta charset=\"utf-8\"><style type=\"text/css\">",
			(
				"body{margin:0;padding:0;background:#f4f4f4}table{border-collapse:collapse}"
				"td{font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#333333}"
				".btn{background:#1a73e8;color:#ffffff;padding:10px 18px;border-radius:4px;text-decoration:none}"
				"@media only screen and (max-width:600px){.wrap{width:100%!important}}"
			),
			"</style></head><body>",
			'<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" bgcolor="#f4f4f4"><tr><td align="center">',
			'<table class="wrap" role="presentation" width="640" cellpadding="0" cellspacing="0" border="0" style="background:#ffffff;margin:16px 0">',
		]
		for paragraph in text.split("\n\n"):
			body = html.escape(paragraph).replace("\n", "<br>")
			out.append(f'<tr><td style="padding:8px 24px;line-height:1.5"><p style="margin:0">{body}</p></td></tr>')
		out.append(
			'<tr><td style="padding:8px 24px"><table width="100%" cellpadding="6" cellspacing="0" border="1" '
			'style="border:1px solid #dddddd;font-size:13px"><tr style="background:#eeeeee"><th align="left">Item</th>'
			'<th align="left">Description</th><th align="right">Qty</th><th align="right">Price</th></tr>'
		)
		size = sum(map(len, out))
		while size < target:
			if newsletter:
				n = rng.randint(100, 999)
				row = (
					f'<tr><td colspan="4" style="padding:12px"><img src="https://cdn.{domain}/img/{n}.jpg" width="560" '
					f'alt="" style="display:block;border:0"><h2 style="font-size:18px;margin:8px 0">{html.escape(rng.choice(PRODUCTS))}'
					f'</h2><p style="margin:0 0 8px 0">{html.escape(" ".join(rng.choice(SENTENCES["en"]) for _ in range(3)))}</p>'
					f'<a class="btn" href="https://{domain}/articles/{n}?utm_source=newsletter&amp;utm_medium=email">Read more</a></td></tr>'
				)
			else:
				sku = rng.randint(100000, 999999)
				row = (
					f'<tr><td><a href="https://{domain}/items/{sku}" style="color:#1a73e8">{sku}</a></td>'
					f"<td>{html.escape(rng.choice(PRODUCTS))}</td><td align=\"right\">{rng.randint(1, 500)}</td>"
					f'<td align="right">{rng.randint(5, 9000)}.{rng.randint(0, 99):02d} EUR</td></tr>'
				)
			out.append(row)
			size += len(row)
		out.append("</table></td></tr>")
		out.append(
			'<tr><td style="padding:16px 24px;font-size:12px;color:#888888;border-top:1px solid #eeeeee">'
			f'<a href="https://{domain}/" style="color:#888888">{domain}</a> &middot; '
			f'<a href="https://{domain}/privacy" style="color:#888888">Privacy</a> &middot; '
			f'<a href="https://{domain}/unsubscribe" style="color:#888888">Unsubscribe</a></td></tr>'
		)
		out.append("</table></td></tr></table></body></html>")
		return "".join(out)


def png_bytes(rng: random.Random, size: int) -> bytes:
	"""A valid PNG of about `size` bytes (noise does not compress)."""
	width = 256
	height = max(1, size // (width * 3))
	raw = b"".join(b"\x00" + rng.randbytes(width * 3) for _ in range(height))

	def chunk(kind: bytes, data: bytes) -> bytes:
		return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

	header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
	return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b"")


def pdf_bytes(rng: random.Random, size: int) -> bytes:
	"""A small valid PDF (one page of text) padded to about `size` bytes with an embedded binary stream."""
	text = b"BT /F1 14 Tf 72 720 Td (Invoice INV-" + str(rng.randint(10000, 99999)).encode() + b") Tj ET"
	blob = rng.randbytes(max(0, size - 900))
	objects = [
		b"<< /Type /Catalog /Pages 2 0 R >>",
		b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
		(
			b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
			b"/Resources << /Font << /F1 5 0 R >> >> >>"
		),
		b"<< /Length %d >>\nstream\n" % len(text) + text + b"\nendstream",
		b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
		b"<< /Type /EmbeddedFile /Length %d >>\nstream\n" % len(blob) + blob + b"\nendstream",
	]
	out = bytearray(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
	offsets = []
	for n, body in enumerate(objects, start=1):
		offsets.append(len(out))
		out += b"%d 0 obj\n" % n + body + b"\nendobj\n"
	xref = len(out)
	out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
	out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
	out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
	return bytes(out)


# -- accounts ----------------------------------------------------------------------------------------------------


def create_email_sync_account(
	frappe, address: str, server, user, batch_size: int, issues: bool = False, files: bool = True
) -> str:
	doc = frappe.get_doc(
		{
			"doctype": "Email Sync Account",
			"create_issues": int(issues),
			"attachments_mode": "All" if files else "None",  # All: like the built-in, which saves every one
			"provider": "IMAP",
			"email_address": address,
			"status": "Active",
			"direction": "Inbound only",
			"frequency": "Manual only",  # never picked up by the scheduler meanwhile
			"sync_start_date": "2000-01-01",
			"imap_host": server.host,
			"imap_port": server.port,
			"imap_security": "None",
			"auth_type": "Password",
			"username": user.name,
			"password": user.password,
			"batch_size": batch_size,
		}
	).insert(ignore_permissions=True)
	frappe.db.commit()
	return doc.name


def create_email_account(frappe, address: str, server, user, run: str, append_to: str | None) -> str:
	doc = frappe.get_doc(
		{
			"doctype": "Email Account",
			"email_account_name": f"{EA_NAME_PREFIX}{run}" + (" Issue" if append_to else ""),
			"email_id": address,
			"login_id_is_different": 1,
			"login_id": user.name,
			"password": user.password,
			"awaiting_password": 0,
			"enable_incoming": 1,
			"use_imap": 1,
			"email_server": server.host,
			"incoming_port": str(server.port),
			"use_ssl": 0,
			"use_starttls": 0,
			"email_sync_option": "UNSEEN",
			# Only the very first pull (no UIDVALIDITY stored yet) looks at the newest `initial_sync_count` UIDs
			# instead of UNSEEN, without marking them Seen; every later pull takes UNSEEN mail, so nothing is
			# capped. 100 = exactly what one pull processes anyway.
			"initial_sync_count": "100",
			"enable_outgoing": 0,
			"default_incoming": 0,
			"imap_folder": [{"folder_name": "INBOX", "append_to": append_to}],
		}
	)
	doc.insert(ignore_permissions=True)  # validate() logs in to Dovecot once to check the account
	# Hide it from the site's scheduler (its `pull` skips accounts awaiting a password), so no worker pulls
	# this mailbox alongside the measured process. receive() itself does not look at the flag.
	frappe.db.set_value("Email Account", doc.name, "awaiting_password", 1, update_modified=False)
	frappe.db.commit()
	return doc.name


# -- cleanup -----------------------------------------------------------------------------------------------------


def _chunks(items: list, size: int = 500):
	for i in range(0, len(items), size):
		yield items[i : i + size]


def delete_communications(frappe, names: list[str]) -> None:
	"""Communications with their timeline links, attached Files (and their bytes on disk) and queued mail."""
	for chunk in _chunks(sorted(set(names))):
		files = frappe.db.sql(
			"select name, file_url, thumbnail_url from tabFile where attached_to_doctype = 'Communication' "
			"and attached_to_name in %(c)s",
			{"c": chunk},
		)
		if files:
			frappe.db.sql("delete from tabFile where name in %(f)s", {"f": [f[0] for f in files]})
			for _, *urls in files:
				for url in urls:
					_remove_file(frappe, url)
		queued = frappe.db.sql_list("select name from `tabEmail Queue` where communication in %(c)s", {"c": chunk})
		if queued:
			frappe.db.sql("delete from `tabEmail Queue Recipient` where parent in %(q)s", {"q": queued})
			frappe.db.sql("delete from `tabEmail Queue` where name in %(q)s", {"q": queued})
		frappe.db.sql("delete from `tabCommunication Link` where parent in %(c)s", {"c": chunk})
		# The built-in saves each Communication twice (a Version row) and comments each attachment.
		frappe.db.sql("delete from tabVersion where ref_doctype = 'Communication' and docname in %(c)s", {"c": chunk})
		frappe.db.sql(
			"delete from tabComment where reference_doctype = 'Communication' and reference_name in %(c)s", {"c": chunk}
		)
		frappe.db.sql("delete from tabCommunication where name in %(c)s", {"c": chunk})


def delete_issues(frappe, names: list[str]) -> None:
	"""Issues a run created, with what hangs on them (assignments, shares, versions, comments, notifications)."""
	for chunk in _chunks(sorted(set(names))):
		for table, doctype_column, name_column in (
			("ToDo", "reference_type", "reference_name"),
			("DocShare", "share_doctype", "share_name"),
			("Version", "ref_doctype", "docname"),
			("Comment", "reference_doctype", "reference_name"),
			("Notification Log", "document_type", "document_name"),
			("Communication Link", "link_doctype", "link_name"),
		):
			frappe.db.sql(
				f"delete from `tab{table}` where {doctype_column} = 'Issue' and {name_column} in %(i)s", {"i": chunk}
			)
		files = frappe.db.sql(
			"select name, file_url from tabFile where attached_to_doctype = 'Issue' and attached_to_name in %(i)s",
			{"i": chunk},
		)
		if files:
			frappe.db.sql("delete from tabFile where name in %(f)s", {"f": [f[0] for f in files]})
			for _, url in files:
				_remove_file(frappe, url)
		frappe.db.sql("delete from tabIssue where name in %(i)s", {"i": chunk})


def delete_account(frappe, doctype: str, name: str) -> None:
	"""The account row, its child rows and stored password, without the "Deleted" comment delete_doc leaves."""
	for table in frappe.get_meta(doctype).get_table_fields():
		frappe.db.sql(f"delete from `tab{table.options}` where parenttype = %s and parent = %s", (doctype, name))
	frappe.db.sql("delete from `__Auth` where doctype = %s and name = %s", (doctype, name))
	frappe.db.sql(f"delete from `tab{doctype}` where name = %s", (name,))


def _remove_file(frappe, url: str | None) -> None:
	if not url or frappe.db.exists("File", {"file_url": url}):  # Frappe shares identical files between rows
		return
	if url.startswith("/private/files/"):
		path = frappe.get_site_path("private", "files", url.rsplit("/", 1)[1])
	elif url.startswith("/files/"):
		path = frappe.get_site_path("public", "files", url.rsplit("/", 1)[1])
	else:
		return
	with contextlib.suppress(OSError):
		os.remove(path)


def delete_new_contacts(frappe, addresses: set[str], since: datetime) -> int:
	"""Contacts created during the run for the run's own (non-seeded) addresses, e.g. by the built-in's
	"Create Contacts from Incoming Emails"."""
	if not addresses:
		return 0
	names: set[str] = set()
	for chunk in _chunks(sorted(addresses)):
		names.update(
			frappe.db.sql_list(
				"select parent from `tabContact Email` where parenttype = 'Contact' and email_id in %(e)s",
				{"e": chunk},
			)
		)
		names.update(frappe.db.sql_list("select name from tabContact where email_id in %(e)s", {"e": chunk}))
	if not names:
		return 0
	names = set(
		frappe.db.sql_list(
			"select name from tabContact where name in %(n)s and creation >= %(since)s",
			{"n": list(names), "since": since},
		)
	)
	for chunk in _chunks(sorted(names)):
		for child in ("Contact Email", "Contact Phone", "Dynamic Link"):
			frappe.db.sql(f"delete from `tab{child}` where parenttype = 'Contact' and parent in %(n)s", {"n": chunk})
		frappe.db.sql("delete from `tabCommunication Link` where link_doctype = 'Contact' and link_name in %(n)s", {"n": chunk})
		frappe.db.sql("delete from tabVersion where ref_doctype = 'Contact' and docname in %(n)s", {"n": chunk})
		frappe.db.sql("delete from tabComment where reference_doctype = 'Contact' and reference_name in %(n)s", {"n": chunk})
		frappe.db.sql("delete from tabContact where name in %(n)s", {"n": chunk})
	return len(names)


def cleanup_email_sync(frappe, account: str, addresses: set[str], since: datetime) -> list[str]:
	rows = frappe.db.sql(
		"select communication, issue from `tabSynced Email` where account = %s", (account,), as_dict=True
	)
	delete_communications(frappe, [r.communication for r in rows if r.communication])
	delete_issues(frappe, [r.issue for r in rows if r.issue])
	frappe.db.sql(
		"""delete from `tabEmail Sync Attachment` where parenttype = 'Synced Email'
		and parent in (select name from `tabSynced Email` where account = %s)""",
		(account,),
	)
	frappe.db.sql("delete from `tabSynced Email` where account = %s", (account,))
	frappe.db.sql("delete from `tabEmail Sync Log` where account = %s", (account,))
	delete_new_contacts(frappe, addresses, since)
	delete_account(frappe, "Email Sync Account", account)
	frappe.db.commit()
	return [r.communication for r in rows if r.communication]


def cleanup_builtin(frappe, account: str, addresses: set[str], since: datetime) -> list[str]:
	comms = frappe.db.sql(
		"select name, reference_doctype, reference_name from tabCommunication where email_account = %s",
		(account,),
		as_dict=True,
	)
	issues = {c.reference_name for c in comms if c.reference_doctype == "Issue" and c.reference_name}
	delete_communications(frappe, [c.name for c in comms])
	delete_issues(frappe, list(issues))
	frappe.db.sql("delete from `tabUnhandled Email` where email_account = %s", (account,))
	delete_new_contacts(frappe, addresses, since)
	frappe.db.sql("delete from `tabUser Email` where email_account = %s", (account,))  # as its on_trash does
	delete_account(frappe, "Email Account", account)
	frappe.db.commit()
	return [c.name for c in comms]


def now_datetime() -> datetime:
	from frappe.utils import now_datetime as site_now

	return site_now()


def cleanup_stale(frappe) -> None:
	"""Leftovers of runs that were killed before their own cleanup (no Contacts: their addresses are unknown)."""
	stale_es = frappe.db.sql_list("select name from `tabEmail Sync Account` where name like %s", (ACCOUNT_PREFIX + "%",))
	stale_ea = frappe.db.sql_list("select name from `tabEmail Account` where name like %s", (EA_NAME_PREFIX + "%",))
	for name in stale_es:
		cleanup_email_sync(frappe, name, set(), now_datetime())
	for name in stale_ea:
		cleanup_builtin(frappe, name, set(), now_datetime())
	if stale_es or stale_ea:
		print(f"removed leftovers of earlier runs: {len(stale_es) + len(stale_ea)} accounts")


def leftovers(
	frappe, run: str, doctype: str, account: str, comms: list[str], addresses: set[str], everyone: set[str], since
) -> dict:
	"""What of this run is still on the site after its cleanup (should be nothing). Counted by the run's own
	markers, not by table totals: other people may be using the site meanwhile."""
	left = {
		"Communication": frappe.db.sql(
			"select count(*) from tabCommunication where message_id like %s", (f"{run}.%",)
		)[0][0],
		doctype: frappe.db.count(doctype, {"name": account}),
		"Synced Email": frappe.db.count("Synced Email", {"account": account}) if doctype == "Email Sync Account" else 0,
		"Email Sync Log": frappe.db.count("Email Sync Log", {"account": account}) if doctype == "Email Sync Account" else 0,
		"Unhandled Email": frappe.db.count("Unhandled Email", {"email_account": account}) if doctype == "Email Account" else 0,
	}
	for table, column, where in (
		("Communication Link", "parent", ""),
		("File", "attached_to_name", "attached_to_doctype = 'Communication' and"),
		("Version", "docname", "ref_doctype = 'Communication' and"),
		("Comment", "reference_name", "reference_doctype = 'Communication' and"),
		("Email Queue", "communication", ""),
	):
		left[table] = sum(
			frappe.db.sql(f"select count(*) from `tab{table}` where {where} {column} in %(c)s", {"c": chunk})[0][0]
			for chunk in _chunks(sorted(set(comms)))
		)
	left["Contact"] = sum(
		frappe.db.sql(
			"select count(distinct c.name) from tabContact c join `tabContact Email` e on e.parent = c.name "
			"where e.email_id in %(e)s and c.creation >= %(since)s",
			{"e": chunk, "since": since},
		)[0][0]
		for chunk in _chunks(sorted(addresses))
	)
	left["Issue"] = sum(
		frappe.db.sql(
			"select count(*) from tabIssue where raised_by in %(e)s and creation >= %(since)s", {"e": chunk, "since": since}
		)[0][0]
		for chunk in _chunks(sorted(everyone))
	)
	return {k: v for k, v in left.items() if v}


# -- the measured subprocess -------------------------------------------------------------------------------------


def maxrss_mb() -> float:
	"""This process's peak RSS in MB. Linux carries ru_maxrss over an exec from the process that forked us (the
	parent, which holds all generated mail), so the memory map's own high-water mark (VmHWM) is read instead
	where /proc has it."""
	with contextlib.suppress(OSError, ValueError):
		for line in Path("/proc/self/status").read_text().splitlines():
			if line.startswith("VmHWM:"):
				return round(int(line.split()[1]) / 1024, 1)
	return ru_maxrss_mb()


def cpu_seconds() -> float:
	usage = resource.getrusage(resource.RUSAGE_SELF)
	return usage.ru_utime + usage.ru_stime


def ru_maxrss_mb() -> float:
	return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)  # kB on Linux


def status_value(frappe, name: str, scope: str = "session") -> int:
	return int(frappe.db.sql(f"show {scope} status like %s", (name,))[0][1])


def child_main(args) -> None:
	import frappe

	frappe.init(args.site, sites_path=".")
	frappe.connect()
	frappe.set_user("Administrator")
	frappe.db.commit()
	# Each `show session status` is itself a statement: measure what two in a row count, and subtract it.
	a = status_value(frappe, "Questions")
	overhead = status_value(frappe, "Questions") - a
	baseline_rss = maxrss_mb()
	profiler = None
	if args.profile:
		import cProfile

		profiler = cProfile.Profile()
	g_questions = status_value(frappe, "Questions", "global")
	g_connections = status_value(frappe, "Connections", "global")
	if args.child == "email-sync":
		result = run_email_sync(frappe, args.account, overhead, profiler)
	else:
		result = run_builtin(frappe, args, overhead, profiler)
	result["global_queries"] = status_value(frappe, "Questions", "global") - g_questions
	result["connections_opened"] = status_value(frappe, "Connections", "global") - g_connections
	result["baseline_rss_mb"] = baseline_rss
	result["maxrss_mb"] = maxrss_mb()
	result["ru_maxrss_mb"] = ru_maxrss_mb()  # for reference: includes the parent's peak, see maxrss_mb()
	result["messages"] = args.n
	if profiler is not None:
		import io
		import pstats

		stream = io.StringIO()
		stats = pstats.Stats(profiler, stream=stream)
		stats.sort_stats("cumulative").print_stats(35)
		stats.sort_stats("tottime").print_stats(25)
		print(f"--- cProfile of {args.child} ---\n{stream.getvalue()}", file=sys.stderr)
	print(RESULT_MARK + json.dumps(result, default=str), flush=True)
	frappe.destroy()


def run_email_sync(frappe, account: str, overhead: int, profiler) -> dict:
	from email_sync.sync.runner import sync_account

	q0 = status_value(frappe, "Questions")
	c0 = cpu_seconds()
	t0 = time.perf_counter()
	if profiler:
		profiler.enable()
	counts = sync_account(account, trigger="Manual")
	if profiler:
		profiler.disable()
	seconds = time.perf_counter() - t0
	cpu = cpu_seconds() - c0
	queries = status_value(frappe, "Questions") - q0 - overhead
	statuses = dict(
		frappe.db.sql("select status, count(*) from `tabSynced Email` where account = %s group by status", (account,))
	)
	communications = frappe.db.sql(
		"select count(*) from tabCommunication where name in "
		"(select communication from `tabSynced Email` where account = %s)",
		(account,),
	)[0][0]
	log = frappe.db.get_value(
		"Email Sync Log", {"account": account}, ["status", "error_code", "error", "fetched", "duration"], as_dict=True
	)
	return {
		"tool": "email-sync",
		"seconds": round(seconds, 3),
		"cpu_seconds": round(cpu, 3),
		"queries": queries,
		"communications_created": statuses.get("Filed", 0),
		"communications_found": communications,
		"statuses": statuses,
		"run_counts": counts,
		"log": log,
	}


def run_builtin(frappe, args, overhead: int, profiler) -> dict:
	from frappe.email.doctype.email_account.email_account import pull_from_email_account

	account = args.account
	password = os.environ.get("BENCH_IMAP_PASSWORD", "")
	seconds = 0.0
	cpu = 0.0
	queries = 0
	pulls = []
	previous = 0
	idle = 0
	started = time.perf_counter()
	max_pulls = args.n // 100 + 30
	while len(pulls) < max_pulls:
		q0 = status_value(frappe, "Questions")
		c0 = cpu_seconds()
		t0 = time.perf_counter()
		if profiler:
			profiler.enable()
		error = None
		# What the scheduler's `pull` job does in a worker: the job body, then commit (rollback on error).
		try:
			pull_from_email_account(account)
		except Exception as e:  # noqa: BLE001 - the worker logs and goes on; so do we, visibly
			frappe.db.rollback()
			error = repr(e)[:300]
		else:
			frappe.db.commit()
		if profiler:
			profiler.disable()
		seconds += time.perf_counter() - t0
		cpu += cpu_seconds() - c0
		queries += status_value(frappe, "Questions") - q0 - overhead
		# Bookkeeping, not measured: how far did it get?
		count = frappe.db.count("Communication", {"email_account": account})
		unseen = imap_unseen(args.imap_host, args.imap_port, args.imap_user, password)
		pulls.append({"new": count - previous, "unseen_left": unseen, **({"error": error} if error else {})})
		print(f"  built-in pull {len(pulls)}: +{count - previous} Communications, {unseen} unseen left", file=sys.stderr, flush=True)
		idle = idle + 1 if count == previous else 0
		previous = count
		if unseen == 0 or idle >= 3:
			break
	return {
		"tool": "builtin",
		"seconds": round(seconds, 3),
		"cpu_seconds": round(cpu, 3),
		"wall_seconds": round(time.perf_counter() - started, 3),
		"queries": queries,
		"communications_created": previous,
		"pulls": len(pulls),
		"pull_log": pulls,
	}


def imap_unseen(host: str, port: int, user: str, password: str) -> int:
	imap = imaplib.IMAP4(host, port, timeout=30)
	try:
		imap.login(user, password)
		_, data = imap.status("INBOX", "(UNSEEN)")
		return int(data[0].decode().rsplit("UNSEEN", 1)[1].strip(" )"))
	finally:
		with contextlib.suppress(Exception):
			imap.logout()


def run_child(args, tool: str, account: str, n: int, user=None, server=None) -> dict:
	cmd = [sys.executable, str(Path(__file__).resolve()), "--site", args.site, "--child", tool, "--account", account,
	       "--n", str(n)]  # fmt: skip
	env = dict(os.environ)
	if server is not None:
		cmd += ["--imap-host", server.host, "--imap-port", str(server.port), "--imap-user", user.name]
		env["BENCH_IMAP_PASSWORD"] = user.password
	if args.profile:
		cmd.append("--profile")
	proc = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, env=env, check=False)  # stderr passes through
	for line in reversed(proc.stdout.splitlines()):
		if line.startswith(RESULT_MARK):
			return json.loads(line[len(RESULT_MARK) :])
	raise RuntimeError(f"{tool} run failed (exit {proc.returncode}):\n{proc.stdout[-3000:]}")


# -- orchestration -----------------------------------------------------------------------------------------------


def bench_one(frappe, server, args, n: int, people: list[dict], internal: str, tools: list[str]) -> dict:
	from dovecot import fill_mailbox

	run = f"{datetime.now():%m%d%H%M%S}{os.urandom(2).hex()}"
	mailbox = f"{ACCOUNT_PREFIX}{run}@{internal}"
	print(f"\n== {n:,} messages, run {run}, mailbox {mailbox} ==", flush=True)
	t0 = time.perf_counter()
	gen = Generator(args.seed, run, mailbox, internal, people)
	raws = gen.messages(n)
	mb = sum(map(len, raws)) / 1e6
	print(
		f"generated in {time.perf_counter() - t0:.1f} s: {mb:.1f} MB; kinds {gen.kinds}; replies {gen.replies}, "
		f"non-ASCII {gen.non_ascii}, HTML {gen.html}, attachments {gen.attachments}",
		flush=True,
	)
	seeded = {e for p in people for e in p["emails"]}
	run_addresses = gen.addresses - seeded
	users = {}
	t0 = time.perf_counter()
	for tool in tools:
		users[tool] = server.add_user(name=f"{tool}-{run}", password=f"pw-{run}-{tool}")
		fill_mailbox(server.host, server.port, users[tool].name, users[tool].password, "INBOX", raws)
	print(f"filled {len(tools)} mailboxes in {time.perf_counter() - t0:.1f} s", flush=True)
	del raws

	results = {}
	for tool in tools:
		since = now_datetime() - timedelta(seconds=1)  # site time, as `creation` is
		account = None
		try:
			if tool.startswith("email-sync"):
				account = create_email_sync_account(
					frappe, mailbox, server, users[tool], args.batch_size, issues=tool == "email-sync-issue",
					files=tool != "email-sync-no-files",
				)
			else:
				account = create_email_account(
					frappe, mailbox, server, users[tool], run, "Issue" if tool == "builtin-issue" else None
				)
			print(f"running {tool} ...", flush=True)
			kind = "email-sync" if tool.startswith("email-sync") else "builtin"
			load_before = os.getloadavg()[0]
			result = run_child(args, kind, account, n, users[tool], server)
			result["load_avg"] = f"{load_before:.1f} -> {os.getloadavg()[0]:.1f}"
			result.update(inspect_run(frappe, tool, account, run_addresses, since))
			results[tool] = result
			print(f"{tool}: {json.dumps(summary(result), default=str)}", flush=True)
		except Exception as e:  # noqa: BLE001 - report it, clean up, go on with the other tools
			print(f"{tool} FAILED: {e}", flush=True)
			results[tool] = {"error": str(e)}
		finally:
			if account and not args.keep:
				frappe.db.rollback()
				cleanup = cleanup_email_sync if tool.startswith("email-sync") else cleanup_builtin
				comms = cleanup(frappe, account, run_addresses, since)
				doctype = "Email Sync Account" if tool.startswith("email-sync") else "Email Account"
				left = leftovers(frappe, run, doctype, account, comms, run_addresses, gen.addresses, since)
				results[tool]["left_after_cleanup"] = left or "nothing"
	print_table(n, results)
	return results


def inspect_run(frappe, tool: str, account: str, addresses: set[str], since: datetime) -> dict:
	"""What the run left on the site, counted by the parent after the measured subprocess ended."""
	frappe.db.commit()  # a fresh snapshot
	out: dict = {}
	if tool.startswith("email-sync"):
		out["issues_created"] = frappe.db.sql(
			"select count(distinct issue) from `tabSynced Email` where account = %s and ifnull(issue, '') != ''",
			(account,),
		)[0][0]
		comms = frappe.db.sql_list(
			"select communication from `tabSynced Email` where account = %s and ifnull(communication, '') != ''",
			(account,),
		)
		out["decision_rules"] = dict(
			frappe.db.sql(
				"select concat(status, ': ', decision_rule), count(*) from `tabSynced Email` where account = %s "
				"group by status, decision_rule",
				(account,),
			)
		)
	else:
		comms = frappe.db.sql_list("select name from tabCommunication where email_account = %s", (account,))
		out["distinct_message_ids"] = frappe.db.sql(
			"select count(distinct message_id) from tabCommunication where email_account = %s", (account,)
		)[0][0]
		out["unhandled_emails"] = frappe.db.count("Unhandled Email", {"email_account": account})
		out["issues_created"] = frappe.db.sql(
			"select count(distinct reference_name) from tabCommunication where email_account = %s "
			"and reference_doctype = 'Issue'",
			(account,),
		)[0][0]
	out["communication_links"] = (
		frappe.db.sql("select count(*) from `tabCommunication Link` where parent in %(c)s", {"c": comms})[0][0]
		if comms
		else 0
	)
	out["files_created"] = (
		frappe.db.sql(
			"select count(*) from tabFile where attached_to_doctype = 'Communication' and attached_to_name in %(c)s",
			{"c": comms},
		)[0][0]
		if comms
		else 0
	)
	out["contacts_created"] = (
		frappe.db.sql(
			"select count(distinct c.name) from tabContact c join `tabContact Email` e on e.parent = c.name "
			"where e.email_id in %(e)s and c.creation >= %(since)s",
			{"e": sorted(addresses), "since": since},
		)[0][0]
		if addresses
		else 0
	)
	out["error_logs_on_site_meanwhile"] = frappe.db.sql_list(
		"select concat(method, ' x', count(*)) from `tabError Log` where creation >= %s group by method", (since,)
	)
	return out


def summary(result: dict) -> dict:
	keep = ("seconds", "messages", "communications_created", "queries", "maxrss_mb")
	return {k: result.get(k) for k in keep}


def rate(result: dict | None) -> float | None:
	if not result or "seconds" not in result or not result["seconds"]:
		return None
	return result["messages"] / result["seconds"]


def print_table(n: int, results: dict) -> None:
	columns = [t for t in TOOLS if t in results]
	titles = {"email-sync": "Email Sync", "builtin": "Built-in pull", "email-sync-issue": "Email Sync + Issues",
	          "builtin-issue": "Built-in -> Issue", "email-sync-no-files": "Email Sync, no files"}  # fmt: skip

	def fmt(value, spec=",.0f"):
		return "-" if value is None else format(value, spec)

	rows = [
		("seconds", lambda r: fmt(r.get("seconds"), ",.1f")),
		("messages/s", lambda r: fmt(rate(r), ",.1f")),
		("CPU s of the sync process", lambda r: fmt(r.get("cpu_seconds"), ",.1f")),
		("queries", lambda r: fmt(r.get("queries"))),
		("queries/message", lambda r: fmt(r["queries"] / r["messages"], ".2f") if "queries" in r else "-"),
		("peak RSS MB", lambda r: fmt(r.get("maxrss_mb"), ",.1f")),
		("  RSS after init MB", lambda r: fmt(r.get("baseline_rss_mb"), ",.1f")),
		("communications created", lambda r: fmt(r.get("communications_created"))),
		("Communication rows written", lambda r: fmt(r.get("communications_found", r.get("communications_created")))),
		("Issues created", lambda r: fmt(r.get("issues_created"))),
		("communication links", lambda r: fmt(r.get("communication_links"))),
		("contacts auto-created", lambda r: fmt(r.get("contacts_created"))),
		("attachment files saved", lambda r: fmt(r.get("files_created"))),
		("messages not filed", lambda r: fmt(r["messages"] - r["communications_created"]) if "messages" in r else "-"),
		# Server-wide counters: include any other client of this MariaDB during the run.
		("other clients' queries", lambda r: fmt(r["global_queries"] - r["queries"]) if "global_queries" in r else "-"),
		("new DB connections", lambda r: fmt(r.get("connections_opened"))),
		("load average (1 min)", lambda r: r.get("load_avg", "-")),
	]
	print(f"\n--- {n:,} messages ---")
	print(f"{'':28}" + "".join(f"{titles[c]:>20}" for c in columns))
	for label, get in rows:
		print(f"{label:28}" + "".join(f"{get(results[c]):>20}" for c in columns))
	es, builtin = rate(results.get("email-sync")), rate(results.get("builtin"))
	if es and builtin:
		ratio = es / builtin
		print(f"ratio messages/s (Email Sync / built-in): {ratio:.1f}x")
		print(f"target: >= {TARGET_RATIO:g}x the built-in's messages/s: {'PASS' if ratio >= TARGET_RATIO else 'FAIL'}")
	else:
		print(f"target: >= {TARGET_RATIO:g}x the built-in's messages/s: not measured (both tools must run)")
	with_files, without = results.get("email-sync") or {}, results.get("email-sync-no-files") or {}
	if with_files.get("files_created") and without.get("seconds"):
		extra = with_files["seconds"] - without["seconds"]
		print(
			f"cost of storing attachments: {extra:.1f} s for {with_files['files_created']:,} files = "
			f"{1000 * extra / with_files['files_created']:.1f} ms per file"
		)
	es_issue, builtin_issue = rate(results.get("email-sync-issue")), rate(results.get("builtin-issue"))
	if es_issue and builtin_issue:
		print(f"ratio messages/s with Issues (Email Sync + Issues / built-in -> Issue): {es_issue / builtin_issue:.1f}x")
	for tool in columns:
		r = results[tool]
		extra = {k: r.get(k) for k in ("statuses", "log", "decision_rules", "pulls", "distinct_message_ids",
		                               "unhandled_emails", "issues_created", "error_logs_on_site_meanwhile",
		                               "left_after_cleanup", "error") if k in r}  # fmt: skip
		print(f"{titles[tool]}: {json.dumps(extra, default=str, ensure_ascii=False)}")
	sys.stdout.flush()


def parent_main(args) -> None:
	sys.path.insert(0, str(REPO / "tests" / "providers"))
	import frappe
	from dovecot import Dovecot

	counts = [int(c) for c in args.messages.split(",") if c.strip()]
	if args.only == "all":
		tools = ["builtin", "email-sync"] + (["builtin-issue", "email-sync-issue"] if args.issue else [])
	else:
		tools = [t.strip() for t in args.only.split(",") if t.strip()]
		if args.issue:
			tools += [f"{t}-issue" for t in tools if t in ("builtin", "email-sync")]
		unknown = set(tools) - set(TOOLS)
		if unknown:
			sys.exit(f"--only: unknown tool(s) {', '.join(sorted(unknown))}; choose from {', '.join(TOOLS)}")

	frappe.init(args.site, sites_path=".")
	frappe.connect()
	frappe.set_user("Administrator")
	try:
		cleanup_stale(frappe)
		people = people_spec()
		t0 = time.perf_counter()
		seed_site(frappe, people)
		print(f"site seeded/checked in {time.perf_counter() - t0:.1f} s", flush=True)
		internal = next(
			iter(
				d.strip().lstrip("@").lower()
				for d in (frappe.db.get_single_value("Email Sync Settings", "internal_domains") or "")
				.replace(",", "\n")
				.splitlines()
				if d.strip()
			),
			None,
		)
		if not internal:
			sys.exit("Set an Internal Domain in Email Sync Settings first: the internal mail needs one.")
		server = Dovecot.start()
		try:
			all_results = {n: bench_one(frappe, server, args, n, people, internal, tools) for n in counts}
		finally:
			server.cleanup()
	finally:
		frappe.destroy()
	if args.json:
		Path(args.json).write_text(json.dumps({str(k): v for k, v in all_results.items()}, indent=1, default=str))


def main() -> None:
	parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
	parser.add_argument("--site", required=True)
	parser.add_argument("--messages", default="2000", help="message count(s), comma-separated: 2000,10000")
	parser.add_argument(
		"--only", default="all", help=f"comma-separated tools to run, of: {', '.join(TOOLS)} (default: all)"
	)
	parser.add_argument(
		"--issue", action="store_true", help="also time both tools making Issues (append_to Issue / create_issues)"
	)
	parser.add_argument("--seed", type=int, default=1, help="message generator seed")
	parser.add_argument("--batch-size", type=int, default=200, help="Email Sync batch size")
	parser.add_argument("--profile", action="store_true", help="print a cProfile of each measured sync")
	parser.add_argument("--keep", action="store_true", help="leave the accounts and their records (debugging)")
	parser.add_argument("--json", help="also write all results to this file")
	# used by the measured subprocess
	parser.add_argument("--child", choices=("email-sync", "builtin"), help=argparse.SUPPRESS)
	parser.add_argument("--account", help=argparse.SUPPRESS)
	parser.add_argument("--n", type=int, default=0, help=argparse.SUPPRESS)
	parser.add_argument("--imap-host", help=argparse.SUPPRESS)
	parser.add_argument("--imap-port", type=int, help=argparse.SUPPRESS)
	parser.add_argument("--imap-user", help=argparse.SUPPRESS)
	args = parser.parse_args()
	if args.child:
		child_main(args)
	else:
		parent_main(args)


if __name__ == "__main__":
	main()
