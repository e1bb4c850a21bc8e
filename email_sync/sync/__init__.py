"""The Frappe side of a sync: read the account, run provider -> engine, persist with one writer.

Modules:
  context.py      account settings, directory, rules and settings read from the site, in bulk
  writer.py       the only place that persists a batch (Synced Emails, Communications, links, cursor)
  runner.py       one account's sync run: the background job; health, logs, cool-off
  dispatcher.py   the per-minute scheduler entry that finds due accounts
  tasks.py        the one place that enqueues sync jobs
"""
