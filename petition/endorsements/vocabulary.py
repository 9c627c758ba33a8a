"""What the rest of the platform shares about an endorsement's fields.

The organisation types as people read them, the version of the consent statement, and
the canonical forms that match a mailbox or an organisation's name across records
(duplicate hints, rate limits, data requests, searches). `forms` validates a submission
with them; the public pages, the organisers' area, privacy and dossiers use them without
the form.
"""

from __future__ import annotations

import re
import unicodedata

import idna

from petition.endorsements.states import ORGANISATION_TYPES
from petition.i18n import lazy_gettext as _l

#: A host name that IDNA 2008 and UTS 46 take as it is but for letter case: letters, digits and
#: inner hyphens, no "xn--" or other "??--" label (tests/endorsements/test_forms.py and
#: test_canonical_email.py compare the result with the idna package's).
LDH_NAME = re.compile(
    r"(?:(?!..--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*(?!..--)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?",
    re.ASCII | re.IGNORECASE,
)

#: The current consent statement's version; stored with each endorsement.
CONSENT_VERSION = "2026-12"
#: The version of the optional consent to news about the appeal (the form's `news` box); stored
#: with each endorsement that ticked it. A new wording of that box needs a new version.
NEWS_CONSENT_VERSION = "2026-12"

ORGANISATION_TYPE_LABELS = {
    "ngo": _l("Non-governmental organisation"),
    "human_rights": _l("Human rights organisation"),
    "peace": _l("Peace or anti-war group"),
    "union": _l("Trade union"),
    "religious": _l("Church or religious community"),
    "refugee_support": _l("Refugee or migrant support"),
    "legal": _l("Legal aid or lawyers' association"),
    "media": _l("Media or journalists' association"),
    "political": _l("Political party or youth organisation"),
    "academic": _l("Academic or research institution"),
    "other": _l("Other"),
}
assert set(ORGANISATION_TYPE_LABELS) == set(ORGANISATION_TYPES)

_SPACES = re.compile(r"\s+")


_NOT_ALNUM_ASCII = re.compile(r"[^a-z0-9]+")


def normalise_name(value: str) -> str:
    """Casefolded letters and digits only: 'Amnesty  International e.V.' ~ 'amnesty international ev'."""
    if value.isascii():
        # What the general way below gives ASCII (NFKD leaves it, nothing combines), a pass in C.
        return _NOT_ALNUM_ASCII.sub(" ", value.lower()).strip()[:200]
    folded = unicodedata.normalize("NFKD", value.casefold())
    kept = "".join(ch if ch.isalnum() else " " for ch in folded if not unicodedata.combining(ch))
    return _SPACES.sub(" ", kept).strip()[:200]


#: Mail providers known to ignore dots in the local part (as A-labels, which they are).
_DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def canonical_email(value: str) -> str:
    """One spelling per mailbox, for duplicate checks, rate limits and data requests (never for sending).

    Folds only what reaches the same mailbox (docs/canonical-email.md): letter case, a
    trailing dot, the domain's spellings (compared as IDNA 2008 / UTS 46 A-labels, so
    "Straße.de" and "xn--strae-oqa.de" are one domain and "strasse.de" another), a
    "+tag", and dots where the provider ignores them: "Office+Petition@Example.ORG" and
    "office@example.org" are one mailbox. Idempotent: canonical_email(canonical_email(x))
    == canonical_email(x).

    Pure and self-contained on purpose (only `re`, `idna` and `_DOTLESS_DOMAINS`): migrations that
    recompute the stored forms copy this function as it is; change their copy with it.
    """
    local, _, domain = value.strip().rpartition("@")
    if not local:
        return value.strip().lower()
    domain = re.sub(r"[\s.]+$", "", domain)  # "example.org." is example.org
    try:
        if len(domain) <= 253 and LDH_NAME.fullmatch(domain):
            # Letters, digits and inner hyphens only, no "xn--" or other "??--" label: what
            # UTS 46 and IDNA 2008 make of such a name is the name in lower case (the idna
            # package takes some 20 µs to say so; tests/endorsements/test_canonical_email.py).
            domain = domain.lower()
        else:
            # Never the standard library's "idna" codec: that is IDNA 2003, which maps ß to ss and
            # ς to σ and so merges different domains, and so different people's mailboxes.
            domain = idna.encode(domain, uts46=True, transitional=False).decode("ascii").rstrip(".")
    except UnicodeError:  # idna.IDNAError is one
        # No domain mail can reach (the form refuses it): kept as it is but for ASCII case.
        # UTS 46 folds ASCII case too, so this never equals the A-label of a real domain,
        # and a second pass fails the same way and changes nothing.
        domain = "".join(ch.lower() if ch.isascii() else ch for ch in domain)
    # str.lower, not casefold: casefold would make "ß" "ss" and "ς" "σ" here too.
    local = local.lower()
    if "+" in local[1:]:
        local = local[0] + local[1:].split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        local = local.replace(".", "").strip()  # strip: ". x" would lose its space on the next pass
        domain = "gmail.com"
    return f"{local}@{domain}"
