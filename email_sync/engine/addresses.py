"""Address knowledge: reading address headers as real mail writes them, free-mail domains, and when two
addresses are near variants."""

from __future__ import annotations

import re

# Free-mail and ISP domains: an address there says nothing about which company the sender works for,
# so these never map to a Customer by domain. Admins extend the list in Email Sync Settings.
FREE_MAIL_DOMAINS = frozenset(
	"""
	gmail.com googlemail.com yahoo.com yahoo.co.uk yahoo.co.in yahoo.fr yahoo.de ymail.com rocketmail.com
	hotmail.com hotmail.co.uk hotmail.fr hotmail.de hotmail.it outlook.com outlook.fr outlook.de live.com
	live.co.uk live.fr msn.com passport.com aol.com aim.com icloud.com me.com mac.com mail.com email.com
	gmx.com gmx.de gmx.net gmx.at gmx.ch web.de t-online.de freenet.de arcor.de posteo.de mailbox.org
	protonmail.com proton.me pm.me tutanota.com tuta.io zoho.com zohomail.com yandex.com yandex.ru ya.ru
	mail.ru bk.ru inbox.ru list.ru rambler.ru qq.com 163.com 126.com sina.com sohu.com naver.com daum.net
	hanmail.net orange.fr wanadoo.fr free.fr laposte.net sfr.fr libero.it virgilio.it alice.it tin.it
	btinternet.com sky.com virginmedia.com ntlworld.com talktalk.net comcast.net verizon.net att.net
	sbcglobal.net bellsouth.net cox.net charter.net earthlink.net optonline.net rediffmail.com
	seznam.cz wp.pl o2.pl interia.pl onet.pl bigpond.com optusnet.com.au shaw.ca rogers.com sympatico.ca
	telus.net uol.com.br bol.com.br terra.com.br hushmail.com fastmail.com fastmail.fm hey.com
	""".split()
)

# Providers that ignore dots in the local part (so j.doe@ and jdoe@ are one mailbox).
DOTS_IGNORED = frozenset({"gmail.com", "googlemail.com"})


def canonical(email: str) -> str:
	"""The mailbox an address delivers to, as far as can be told: no +tag, no dots where the provider
	ignores them, googlemail.com as gmail.com. Used only to find *variants*, never as an exact match."""
	local, _, domain = email.lower().rpartition("@")
	if not local:
		return email.lower()
	local = local.split("+", 1)[0]
	if domain in DOTS_IGNORED:
		local = local.replace(".", "")
		domain = "gmail.com"
	return f"{local}@{domain}"


def within_one_edit(a: str, b: str) -> bool:
	"""True when b is a one-letter typo of a (one insertion, deletion, substitution or transposition)."""
	if a == b:
		return False
	la, lb = len(a), len(b)
	if abs(la - lb) > 1:
		return False
	if la == lb:
		diff = [i for i in range(la) if a[i] != b[i]]
		if len(diff) == 1:
			return True
		return len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]]
	if la > lb:
		a, b = b, a
	i = 0
	while i < len(a) and a[i] == b[i]:
		i += 1
	return a[i:] == b[i + 1 :]


# Address headers as real mail writes them: quoted or not, with comments, groups, stray commas and missing
# brackets. One tokenizer, linear on any input: a quoted string or comment ends at the next quote or
# parenthesis (escaped ones are not honoured: supporting them lets crafted input rescan the rest of the
# header from every quote), and a strict check of the result: an address either is a plain addr-spec
# or is not returned at all.
_ADDRESS_TOKEN = re.compile(r'"[^"]*"|\([^()]*\)|[<>,;:"()]|[^"()<>,;:]+')
_QUOTED_PAIR = re.compile(r"\\(.)", re.S)
_LOCAL_FORBIDDEN = frozenset('"(),:;<>@[\\]')


def parse_address_list(value: str) -> tuple[list[tuple[str, str]], list[str]]:
	"""([(display name, addr-spec)], [entries that held no usable address]) for one header value.

	Names are returned raw (RFC 2047 words still encoded); addresses lower-cased and checked by
	`clean_address`. Several addresses in one entry (`a@x.com b@y.com`, separated by spaces) all count.
	"""
	found: list[tuple[str, str]] = []
	unusable: list[str] = []
	entry = _Entry()
	for token in _ADDRESS_TOKEN.findall(value or ""):
		if entry.angle is not None and entry.in_angle:
			if token == ">":
				entry.in_angle = False
			elif token == "<":
				entry.angle = []
			elif token in ",;" and "@" in "".join(entry.angle):  # a missing ">"
				entry.finish(found, unusable)
				entry = _Entry()
			elif not (token.startswith("(") and token.endswith(")") and len(token) > 1):
				entry.angle.append(token)  # comments inside the brackets are not part of the address
		elif token == "<":
			entry.angle, entry.in_angle = [], True
		elif token in ",;":
			entry.finish(found, unusable)
			entry = _Entry()
		elif token == ":" and entry.angle is None and not any("@" in w for _, w in entry.words):
			entry.words = []  # "group name:" or "mailto:"
		elif token.startswith("(") and token.endswith(")") and len(token) > 1:
			entry.comments.append(_QUOTED_PAIR.sub(r"\1", token[1:-1]))
		elif token.startswith('"') and token.endswith('"') and len(token) > 1:
			entry.words.append(("quoted", token))
		elif token not in "<>()":
			entry.words.append(("text", token))  # a stray quote included: it makes an address unusable
	entry.finish(found, unusable)
	return found, unusable


class _Entry:
	__slots__ = ("words", "comments", "angle", "in_angle")

	def __init__(self):
		self.words: list[tuple[str, str]] = []
		self.comments: list[str] = []
		self.angle: list[str] | None = None
		self.in_angle = False

	def finish(self, found: list[tuple[str, str]], unusable: list[str]) -> None:
		if self.angle is not None:
			raw = "".join(self.angle).strip()
			if raw.startswith("@") and ":" in raw:  # an obsolete source route: <@relay:user@host>
				raw = raw.split(":", 1)[1]
			addr = clean_address(raw)
			# Unquoted words holding an @ are leftovers ("a@b.com <a@b.com>"), not a name.
			name = " ".join(
				_unquote(w) if kind == "quoted" else _unbracketed_name(w)
				for kind, w in self.words
			)
			_keep(addr, name or " ".join(self.comments), raw or _joined(self.words), found, unusable)
			return
		# No brackets: the words holding an @ are addresses, the others the name.
		text = "".join(w for _, w in self.words)
		words = text.split()
		if not any("@" in w for w in words):
			# "Name (a@b.com)": the old "a@b.com (Name)" form the wrong way round, the address in the comment.
			in_comments = list(dict.fromkeys(a for a in map(clean_address, self.comments) if a))
			if len(in_comments) == 1:
				_keep(in_comments[0], " ".join(_unquote(w) for w in words), text, found, unusable)
			else:
				_keep("", "", " ".join(words), found, unusable)
			return
		name = " ".join(_unquote(w) for w in words if "@" not in w and w != '"') or " ".join(self.comments)
		for word in words:
			if "@" in word:
				addr = clean_address(word)
				if not addr and len(word) > 2 and word[0] == word[-1] == '"':
					addr = clean_address(word[1:-1])  # the address alone, quoted as if it were a name
				_keep(addr, name, " ".join(words), found, unusable)


def _keep(addr: str, name: str, raw: str, found: list[tuple[str, str]], unusable: list[str]) -> None:
	if not addr:
		if raw.strip():
			unusable.append(raw.strip())
		return
	name = " ".join(name.split()).strip()
	if len(name) > 1 and name[0] == name[-1] and name[0] in "'\"":
		name = name[1:-1].strip()
	if clean_address(name) == addr or name.lower() == f"<{addr}>":
		name = ""  # "a@b.com <a@b.com>": the address is no name
	found.append((name, addr))


def _unbracketed_name(text: str) -> str:
	return " ".join(x for x in text.replace('"', " ").split() if "@" not in x)


def _unquote(word: str) -> str:
	if len(word) > 1 and word[0] == word[-1] == '"':
		return _QUOTED_PAIR.sub(r"\1", word[1:-1])
	return word


def _joined(words: list[tuple[str, str]]) -> str:
	return " ".join(w for _, w in words)


def clean_address(addr: str) -> str:
	"""The lower-cased addr-spec, or "" unless it is one: one @, no spaces, no control characters, no
	quotes (a quoted local part is unquoted when it needs no quoting), a domain of letters, digits, -, _."""
	addr = (addr or "").strip().strip("<>").strip()
	if addr[:7].lower() == "mailto:":
		addr = addr[7:].split("?", 1)[0]
	addr = addr.rstrip(".").lower()
	if addr.count("@") != 1 or len(addr) > 320:
		return ""
	local, _, domain = addr.partition("@")
	if len(local) > 2 and local[0] == local[-1] == '"':
		local = local[1:-1]
	if not local or not domain or local[0] == "." or domain[0] == ".":
		return ""
	if any(ch in _LOCAL_FORBIDDEN or ch.isspace() or not ch.isprintable() for ch in local):
		return ""
	if domain[0] == "[" and domain[-1] == "]":
		ok = all(ch.isalnum() or ch in ".:" for ch in domain[1:-1]) and len(domain) > 2
	else:
		labels = domain.split(".")
		ok = all(label and all(ch.isalnum() or ch in "-_" for ch in label) for label in labels)
	return f"{local}@{domain}" if ok else ""
