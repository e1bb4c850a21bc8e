"""Broken connections for the emulators: what a flaky network, a proxy or an overloaded server does to a request.

    faults = TransportFaults()
    faults.add(CUT, match="/$value")     # headers and half the body, then the connection closes
    faults.add(RESET, match="/token")    # the connection is reset (TCP RST) before any answer
    faults.add(STALL, match="/batch")    # nothing comes back until the client's timeout fires

A handler asks `faults.take(path)` for each request and, when it gets a mode, calls `break_request` instead of
answering normally (CUT needs the real answer, to send part of it).
"""

from __future__ import annotations

import socket
import struct
import threading
import time

RESET = "reset"
CUT = "cut"
STALL = "stall"


class TransportFaults:
	def __init__(self, stall_seconds: float = 2.0):
		self.stall_seconds = stall_seconds
		self._lock = threading.Lock()
		self._pending: list[list] = []  # [mode, match, remaining]
		self.used: list[tuple[str, str]] = []  # (mode, path) of every broken request

	def add(self, mode: str, match: str = "/", count: int = 1) -> None:
		"""The next `count` requests whose path contains `match` break with `mode`."""
		assert mode in (RESET, CUT, STALL), mode
		with self._lock:
			self._pending.append([mode, match, count])

	def take(self, path: str) -> str | None:
		with self._lock:
			for fault in self._pending:
				if fault[2] > 0 and fault[1] in path:
					fault[2] -= 1
					self.used.append((fault[0], path))
					return fault[0]
		return None


def break_request(handler, mode: str, status: int, headers: dict, payload: bytes, stall_seconds: float) -> None:
	"""Break the answer to `handler`'s request (a BaseHTTPRequestHandler) as `mode` says."""
	handler.close_connection = True
	if mode == STALL:
		time.sleep(stall_seconds)
		return
	if mode == RESET:
		# SO_LINGER 0: closing sends a TCP reset instead of an orderly close.
		handler.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
		return
	handler.send_response(status)
	for key, value in headers.items():
		handler.send_header(key, value)
	handler.send_header("Content-Length", str(len(payload)))
	handler.end_headers()
	handler.wfile.write(payload[: max(1, len(payload) // 2)])
	handler.wfile.flush()
