"""The domain an endorsement can prove: its website's registrable domain (Public Suffix List)."""

from __future__ import annotations

from functools import cache
from urllib.parse import urlsplit

import idna
from publicsuffixlist import PublicSuffixList

from petition.endorsements.forms import DOCUMENTATION_TLDS


@cache
def _suffixes() -> PublicSuffixList:
    # ICANN's and the private section: `someone.github.io` proves itself, never `github.io`.
    return PublicSuffixList(only_icann=False)


def registrable_domain(website: str) -> str | None:
    """`https://www.example.org/about` → `example.org` (IDNA, lower case); None without a website.

    The website was normalised by the form (an https:// URL with a real host name), so this
    only takes its host down to the label below the public suffix: proving `example.org`
    speaks for `www.example.org`, and a shared suffix (`github.io`) is never proved for all.
    """
    if not website:
        return None
    try:
        host = urlsplit(website).hostname
    except ValueError:
        return None
    if not host:
        return None
    try:
        ascii_host = idna.encode(host, uts46=True, transitional=False).decode("ascii").rstrip(".").lower()
    except UnicodeError:
        return None
    labels = ascii_host.split(".")
    if labels[-1] in DOCUMENTATION_TLDS:
        return ".".join(labels[-2:]) if len(labels) >= 2 else None
    return _suffixes().privatesuffix(ascii_host)


def is_within(host: str, domain: str) -> bool:
    """Whether `host` is `domain` or a name under it (for redirects the file check may follow)."""
    host = host.rstrip(".").lower()
    return host == domain or host.endswith("." + domain)
