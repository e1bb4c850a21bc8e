"""`python -m email_sync.engine FILE...`: show how Email Sync reads .eml and mbox files, one JSON line a message.

No site needed. Exit status 2 when a file cannot be opened (the others are still read).
"""

from __future__ import annotations

import argparse
import json
import mailbox
import sys
from collections.abc import Iterator

from email_sync.engine.parse import parse_message


def read_file(path: str) -> Iterator[tuple[int, bytes]]:
	"""(index, raw bytes) for each message: an mbox holds many, anything else is one .eml."""
	with open(path, "rb") as f:
		head = f.read(5)
	if head == b"From ":
		box = mailbox.mbox(path, create=False)
		try:
			for index, key in enumerate(box.iterkeys()):
				yield index, box.get_bytes(key)
		finally:
			box.close()
		return
	with open(path, "rb") as f:
		yield 0, f.read()


def main(argv: list[str] | None = None) -> int:
	parser = argparse.ArgumentParser(prog="python -m email_sync.engine", description=__doc__.splitlines()[0])
	parser.add_argument("files", nargs="+", metavar="FILE", help=".eml or mbox file")
	parser.add_argument("--text", action="store_true", help="include the whole text body, not a snippet")
	args = parser.parse_args(argv)

	status = 0
	for path in args.files:
		try:
			for index, raw in read_file(path):
				message = parse_message(raw)
				data = message.to_json()
				if not args.text:
					data["text"] = message.snippet(300)
				print(json.dumps({"file": path, "index": index, **data}, ensure_ascii=False, default=str))
		except OSError as e:
			print(f"{path}: cannot read: {e.strerror or e}", file=sys.stderr)
			status = 2
	return status


if __name__ == "__main__":
	sys.exit(main())
