"""The dispatcher's rules: frequency, skip times (also across midnight), cool-off after failures."""

from datetime import datetime, timedelta

import pytest

from email_sync.engine.schedule import ScheduleError, is_due, parse_skip_times

NOW = datetime(2026, 11, 24, 10, 0)


@pytest.mark.parametrize(
	"frequency,minutes_ago,due",
	[
		("Real-time", 1, True),
		("Every 5 minutes", 3, False),
		("Every 5 minutes", 5, True),
		("Every 15 minutes", 14, False),
		("Every 15 minutes", 15, True),
		("Hourly", 59, False),
		("Hourly", 61, True),
		("Manual only", 600, False),
	],
)
def test_frequency(frequency, minutes_ago, due):
	assert is_due(NOW, frequency, NOW - timedelta(minutes=minutes_ago))[0] is due


def test_never_synced_is_due():
	assert is_due(NOW, "Hourly", None) == (True, "due")


def test_cool_off_after_failure():
	due, why = is_due(NOW, "Real-time", None, next_sync_after=NOW + timedelta(minutes=3))
	assert not due and "cooling off" in why
	assert is_due(NOW, "Real-time", None, next_sync_after=NOW - timedelta(seconds=1))[0]


@pytest.mark.parametrize(
	"skip,hour,skipped",
	[
		("02:00-04:00", 3, True),
		("02:00-04:00", 4, False),
		("23:30-00:30, 09:00-10:30", 10, True),
		("23:30-00:30", 0, True),
		("23:30-00:30", 1, False),
	],
)
def test_skip_times(skip, hour, skipped):
	due, why = is_due(NOW.replace(hour=hour), "Real-time", None, skip_times=skip)
	assert due is not skipped
	if skipped:
		assert why == "inside a skip time"


@pytest.mark.parametrize("bad", ["2-4", "25:00-01:00", "02:00 to 04:00", "10:61-11:00"])
def test_bad_skip_times_are_refused_clearly(bad):
	with pytest.raises(ScheduleError, match="02:00-04:00|valid time"):
		parse_skip_times(bad)
	due, why = is_due(NOW, "Real-time", None, skip_times=bad)
	assert not due and "cannot be read" in why


@pytest.mark.parametrize(
	"status,failures,last_ok,light",
	[
		("Active", 0, NOW - timedelta(minutes=2), "green"),
		("Active", 1, NOW - timedelta(minutes=2), "yellow"),
		("Active", 0, None, "yellow"),
		("Active", 0, NOW - timedelta(hours=5), "yellow"),  # stalled: scheduler or workers down
		("Error", 3, NOW - timedelta(days=1), "red"),
		("Disconnected", 0, None, "red"),
		("Paused", 0, NOW, "yellow"),
	],
)
def test_health_light(status, failures, last_ok, light):
	from email_sync.engine.schedule import health

	color, reason, _fix = health(status, failures, last_ok, "Every 5 minutes", NOW, "boom", "do this")
	assert color == light and reason
