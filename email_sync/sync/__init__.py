"""The Frappe side of a sync: read the account, run provider -> engine, persist with one writer.

Modules:
  context.py      account settings, rules and settings read from the site, in bulk
  directory.py    who is who, for exactly the addresses and domains of a batch (indexed lookups)
  writer.py       the only place that persists a batch (Synced Emails, Communications, links, cursor)
  runner.py       one account's sync run: the background job; health, logs, cool-off
  dispatcher.py   the per-minute scheduler entry that finds due accounts
  tasks.py        the one place that enqueues sync jobs
  importer.py     mail from .eml, mbox and Maildir files through the same pipeline, as history
  doctor.py       what a site needs for syncs to run, checked one by one (bench email-sync doctor)
  listener.py     real-time for IMAP: IDLE connections that queue syncs (bench email-sync listen)
"""
