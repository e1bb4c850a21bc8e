"""When is an account due for an automatic sync? Pure functions, so the dispatcher's rules are testable."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta

FREQUENCY_MINUTES = {
	"Real-time": 1,  # polled every minute until a provider delivers push notifications
	"Every 5 minutes": 5,
	"Every 15 minutes": 15,
	"Hourly": 60,
}
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


class ScheduleError(ValueError):
	pass


def parse_skip_times(value: str | None) -> list[tuple[time, time]]:
	"""'02:00-04:00, 23:30-00:30' -> [(02:00, 04:00), (23:30, 00:30)]; a range may wrap midnight."""
	ranges = []
	for part in re.split(r"[,;\n]+", value or ""):
		if not part.strip():
			continue
		m = _RANGE.match(part)
		if not m:
			raise ScheduleError(f"{part.strip()!r} is not a time range like 02:00-04:00.")
		h1, m1, h2, m2 = map(int, m.groups())
		if h1 > 23 or h2 > 23 or m1 > 59 or m2 > 59:
			raise ScheduleError(f"{part.strip()!r} is not a valid time of day.")
		ranges.append((time(h1, m1), time(h2, m2)))
	return ranges


def in_skip_time(now: datetime, ranges: list[tuple[time, time]]) -> bool:
	t = now.time()
	for start, end in ranges:
		if start <= end and start <= t < end:
			return True
		if start > end and (t >= start or t < end):
			return True
	return False


def is_due(
	now: datetime,
	frequency: str,
	last_sync: datetime | None,
	next_sync_after: datetime | None = None,
	skip_times: str | None = None,
) -> tuple[bool, str]:
	"""(due, why) for an Active account. `next_sync_after` is the end of a cool-off after a failure."""
	minutes = FREQUENCY_MINUTES.get(frequency)
	if minutes is None:
		return False, f"frequency {frequency!r} has no automatic sync"
	try:
		if in_skip_time(now, parse_skip_times(skip_times)):
			return False, "inside a skip time"
	except ScheduleError as e:
		return False, f"skip times cannot be read: {e}"
	if next_sync_after and now < next_sync_after:
		return False, f"cooling off after a failure until {next_sync_after:%H:%M}"
	# A little slack, so a run that started a few seconds late does not push the next one a whole period.
	if last_sync and now - last_sync < timedelta(minutes=minutes) - timedelta(seconds=20):
		return False, "synced recently"
	return True, "due"


def health(
	status: str,
	consecutive_failures: int,
	last_success: datetime | None,
	frequency: str,
	now: datetime,
	last_error: str = "",
	fix: str = "",
) -> tuple[str, str, str]:
	"""(light, reason, what to do) for an account: green, yellow or red, as the account cards show it."""
	if status == "Disconnected":
		return "red", "Disconnected.", "Connect the account again to resume syncing."
	if status == "Error":
		return "red", last_error or "Automatic sync stopped after repeated failures.", fix or "Fix the cause, then click Sync Now."
	if status in ("Draft", "Paused"):
		return "yellow", f"{status}: not syncing.", "Set the status to Active to start syncing."
	if consecutive_failures:
		return "yellow", last_error or "The last sync failed.", fix or "It will be tried again after the cool-off."
	minutes = FREQUENCY_MINUTES.get(frequency)
	if last_success is None:
		return "yellow", "Not synced yet.", "Click Sync Now, or wait for the scheduler."
	if minutes and now - last_success > timedelta(minutes=max(3 * minutes, 30)):
		return "yellow", f"No successful sync since {last_success:%Y-%m-%d %H:%M}.", "Check that the scheduler and workers are running."
	return "green", "Healthy.", ""
