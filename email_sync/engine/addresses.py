"""Address knowledge the matcher needs: free-mail domains, and when two addresses are near variants."""

from __future__ import annotations

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
