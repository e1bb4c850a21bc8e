"""Checks that an error shows no secret: not in its text, not in its traceback's local variables."""

from __future__ import annotations

import os
import traceback

from email_sync.providers.base import ProviderError


def rendered(error: BaseException) -> str:
	"""Everything a log could show of `error`, from the first frame of the app's code down (the test's own
	frames, which hold the secrets to look for, are left out)."""
	tb = error.__traceback__
	while tb is not None and f"{os.sep}email_sync{os.sep}" not in tb.tb_frame.f_code.co_filename:
		tb = tb.tb_next
	parts = [str(error), repr(error), repr(error.args), str(getattr(error, "fix", ""))]
	parts += traceback.TracebackException(type(error), error, tb, capture_locals=True).format()
	return "".join(parts)


def failure(call) -> BaseException:
	"""The exception `call()` raises."""
	try:
		call()
	except BaseException as e:  # noqa: BLE001 - any escape is what is being tested
		return e
	raise AssertionError("no error was raised")


def assert_clean(error: BaseException, secrets: set[str]) -> None:
	assert isinstance(error, ProviderError), f"escaped the provider's error mapping: {error!r}"
	text = rendered(error)
	forms = {form for s in secrets if s for form in (s, repr(s.encode())[2:-1])}  # bytes show escaped
	leaked = sorted(form for form in forms if form in text)
	assert not leaked, f"{len(leaked)} secret(s) in the rendered error:\n{text}"
