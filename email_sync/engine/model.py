"""The one message model every provider's mail is read into, and the plan the engine makes of it.

Plain dataclasses, no Frappe: the engine, the providers and the tests share them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from datetime import datetime


@dataclass(frozen=True)
class Address:
	email: str  # lower-cased addr-spec; "" when the header held no usable address
	name: str = ""

	@property
	def domain(self) -> str:
		return self.email.rpartition("@")[2]


@dataclass(frozen=True)
class Attachment:
	"""One attachment and its bytes. `content` never takes part in comparing, printing or serialising a
	message (to_json gives its size), so a key or a log line never depends on, nor holds, what was sent."""

	filename: str  # safe to store as a file name (see attachments.safe_filename)
	content_type: str
	size: int  # bytes of content
	content_id: str = ""  # without angle brackets
	inline: bool = False  # shown in the body: disposition inline, or referenced as cid: by the HTML
	is_forwarded_message: bool = False  # a message/rfc822 part: kept as an attachment, never as the body
	original_filename: str = ""  # the name as decoded from the mail, for display; "" when it gave none
	content: bytes = field(default=b"", repr=False, compare=False)

	def to_json(self) -> dict:
		data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "content"}
		data["has_content"] = bool(self.content)
		return data


@dataclass
class AutoSubmitted:
	"""Whether a machine sent the message (RFC 3834 and its folk variants), and the header that said so."""

	is_auto: bool = False
	kind: str = ""  # auto-reply, bulk, list, bounce, noreply
	reason: str = ""


@dataclass
class Message:
	key: str  # identity used to file the same mail once, whatever mailbox it came from
	message_id: str = ""  # without angle brackets; "" when the header is missing
	in_reply_to: str = ""
	references: list[str] = field(default_factory=list)
	subject: str = ""
	sender: Address | None = None
	reply_to: list[Address] = field(default_factory=list)
	to: list[Address] = field(default_factory=list)
	cc: list[Address] = field(default_factory=list)
	bcc: list[Address] = field(default_factory=list)
	date: datetime | None = None  # naive UTC
	text: str = ""  # plain-text body (from text/plain, else converted from HTML)
	html: str = ""  # HTML body as sent (never rendered without sanitising)
	attachments: list[Attachment] = field(default_factory=list)
	auto: AutoSubmitted = field(default_factory=AutoSubmitted)
	headers: dict[str, str] = field(default_factory=dict)  # the few headers rules look at, decoded
	size: int = 0
	defects: list[str] = field(default_factory=list)
	unreadable: str = ""  # set when the bytes could not be read as a message at all

	@property
	def recipients(self) -> list[Address]:
		return [*self.to, *self.cc, *self.bcc]

	@property
	def participants(self) -> list[Address]:
		return [*([self.sender] if self.sender else []), *self.recipients]

	def snippet(self, length: int = 200) -> str:
		return " ".join(self.text.split())[:length]

	def to_json(self) -> dict:
		# Attachments' bytes stay out: asdict would copy them, and JSON cannot hold them.
		data = asdict(replace(self, attachments=[]))
		data["attachments"] = [a.to_json() for a in self.attachments]
		data["date"] = self.date.isoformat() if self.date else None
		data["recipients"] = [a.email for a in self.recipients]
		data.pop("html")
		data["has_html"] = bool(self.html)
		return data


# What the engine decides for one message.
FILED = "Filed"
SKIPPED = "Skipped"
NEEDS_REVIEW = "Needs Review"
ERROR = "Error"

INBOUND = "Inbound"
OUTBOUND = "Outbound"


@dataclass(frozen=True)
class NewContact:
	"""A Contact to create for an unknown address at a domain that one Customer claims."""

	email: str
	name: str
	customer: str


@dataclass(frozen=True)
class AddedAddress:
	"""An unknown address at a Customer's domain that goes onto the Customer's Contact of the same name."""

	email: str
	name: str
	customer: str
	contact: str


@dataclass
class Plan:
	"""What to do with one message and why. The Frappe side carries it out, nothing more."""

	message: Message
	status: str
	reason: str  # one sentence a user can read
	rule: str = ""  # the rule that decided, e.g. "blacklist:acme.com", "auto-submitted", "matched"
	direction: str = INBOUND
	contacts: list[str] = field(default_factory=list)
	customers: list[str] = field(default_factory=list)
	confidence: int = 0  # 100 for exact address matches, 80 for near variants
	new_contacts: list[NewContact] = field(default_factory=list)
	added_addresses: list[AddedAddress] = field(default_factory=list)  # onto Contacts of the same name

	@property
	def files(self) -> bool:
		return self.status == FILED

	def to_json(self) -> dict:
		return {
			"key": self.message.key,
			"status": self.status,
			"reason": self.reason,
			"rule": self.rule,
			"direction": self.direction,
			"contacts": self.contacts,
			"customers": self.customers,
			"confidence": self.confidence,
			"new_contacts": [asdict(c) for c in self.new_contacts],
			"added_addresses": [asdict(a) for a in self.added_addresses],
		}
