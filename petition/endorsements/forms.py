"""The endorsement form: parse, clean and validate, one message per field.

What other packages share about the fields (type labels, consent version, canonical
forms) is in `endorsements.vocabulary`.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import email_validator
import idna
from email_validator import EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES
from publicsuffixlist import PublicSuffixList

from petition import countries
from petition.endorsements.states import ORGANISATION_TYPES, Visibility
from petition.endorsements.vocabulary import (
    CONSENT_VERSION,
    LDH_NAME,
    NEWS_CONSENT_VERSION,
    canonical_email,
    normalise_name,
)
from petition.i18n import gettext as _
from petition.i18n import lazy_gettext as _l

FIELDS = (
    "organisation_name",
    "country",
    "city",
    "organisation_type",
    "website",
    "contact_name",
    "contact_role",
    "contact_email",
    "authorised",
    "consent",
    "visibility",
    "comment",
    "news",
    "transparency_register",
)
HONEYPOT_FIELD = "fax_number"

MAX_LENGTHS = {
    "organisation_name": 200,
    "city": 100,
    "website": 300,
    "contact_name": 150,
    "contact_role": 150,
    "contact_email": 254,
    "comment": 1000,
    "transparency_register": 40,
}

#: The labels of the form's text fields (the template's msgids): a message that a field is too long names it.
FIELD_LABELS = {
    "organisation_name": _l("Name of the organisation"),
    "city": _l("City"),
    "website": _l("Website"),
    "contact_name": _l("Your name"),
    "contact_role": _l("Your role in the organisation"),
    "contact_email": _l("Your email address"),
    "comment": _l("Public comment (optional)"),
    "transparency_register": _l("EU Transparency Register number (optional)"),
}

#: An EU Transparency Register identification number as the register prints it: 9 to 12 digits
#: (12 since 2008, shorter in older entries), a hyphen and two check digits. Shown as given,
#: never looked up: the register's own page says whether it belongs to this organisation.
TRANSPARENCY_REGISTER = re.compile(r"\d{9,12}-\d{2}")


def normalise_transparency_register(raw: str) -> str | None:
    """The number without the spaces people copy with it, or None when left empty; ValueError
    when it is not shaped like one."""
    compact = "".join(raw.split())
    if not compact:
        return None
    if not TRANSPARENCY_REGISTER.fullmatch(compact):
        raise ValueError(compact)
    return compact


#: Top-level domains that are not public but may stand in a website: RFC 2606's for documentation
#: (the README's, the tests'), which resolves nowhere.
DOCUMENTATION_TLDS = frozenset({"example"})

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
_SPACES = re.compile(r"\s+")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


def clean_line(value: str) -> str:
    """One line of text: NFC, no control or bidi-override characters, spaces folded."""
    if value.isascii() and value.isprintable():
        # Most fields: NFC already, nothing to remove, and the only white space is the space.
        return " ".join(value.split())
    value = unicodedata.normalize("NFC", value)
    value = _CONTROL.sub("", value)
    return _SPACES.sub(" ", value).strip()


def clean_text(value: str) -> str:
    """Several lines: as `clean_line`, but newlines kept (at most one blank line)."""
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    value = _CONTROL.sub("", value)
    lines = [_SPACES.sub(" ", line).strip() for line in value.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


#: An address email_validator takes as it is, but for the domain's letter case: a dot-atom of
#: ASCII before the @, a plain host name of two labels or more after it (tests/endorsements/
#: test_forms.py compares the result with email_validator's).
_PLAIN_EMAIL = re.compile(
    r"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,64}(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*)@(" + LDH_NAME.pattern + ")",
    re.ASCII | re.IGNORECASE,
)


def normalised_email(value: str) -> str:
    """`validate_email(value).normalized` (deliverability unchecked), EmailNotValidError as it raises.

    email_validator takes some 45 µs per address, mostly in Unicode checks of the domain;
    plain addresses skip them.
    """
    match = _PLAIN_EMAIL.fullmatch(value)
    if match is not None:
        local, domain = match.group(1), match.group(2).lower()
        _, dot, tld = domain.rpartition(".")
        if (
            dot
            and len(local) <= 64
            and len(value) <= 254
            and tld
            and tld[-1].isalpha()
            and local.lower() not in CASE_INSENSITIVE_MAILBOX_NAMES
            and not any(domain == d or domain.endswith("." + d) for d in email_validator.SPECIAL_USE_DOMAIN_NAMES)
        ):
            return f"{local}@{domain}"
    return validate_email(value, check_deliverability=False).normalized


class WebsiteError(ValueError):
    pass


class UnknownDomainError(WebsiteError):
    """A host name whose last label is no public top-level domain (`www.friedensnetz`)."""


@cache
def _public_suffixes() -> PublicSuffixList:
    # ICANN's part of the Public Suffix List, read once (some 60 ms); an unknown ending is None.
    return PublicSuffixList(accept_unknown=False, only_icann=True)


def has_public_tld(ascii_host: str) -> bool:
    """Whether the host name (IDNA, lower case) ends in a top-level domain in ICANN's root zone."""
    tld = ascii_host.rstrip(".").rpartition(".")[2]
    return tld in DOCUMENTATION_TLDS or _public_suffixes().publicsuffix(tld) is not None


def normalise_website(raw: str) -> str:
    """An https:// URL with a real host name, or "" when none was given."""
    value = raw.strip()
    if not value:
        return ""
    if "://" not in value:
        value = "https://" + value.lstrip("/")
    try:
        parts = urlsplit(value)
    except ValueError as exc:  # e.g. an unbalanced "[" reads as a broken IPv6 address
        raise WebsiteError from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise WebsiteError
    if parts.username or parts.password or not parts.hostname:
        raise WebsiteError
    # The host as typed: `parts.hostname` lowercases with str.lower, which makes a final
    # capital Σ "ς" where UTS 46 (and so every browser) makes it "σ": another domain.
    host = parts.netloc.rpartition("@")[2]
    if host.startswith("["):  # an IPv6 address, not a host name
        raise WebsiteError
    host = host.partition(":")[0]
    if len(host) <= 253 and LDH_NAME.fullmatch(host):
        # Letters, digits and inner hyphens, no "xn--" or other "??--" label: UTS 46 and
        # IDNA 2008 only lower its case (the idna package takes some 20 µs to say so).
        ascii_host = host = host.lower()
    else:
        try:
            # IDNA 2008 / UTS 46 as browsers resolve it; the standard library's codec is IDNA 2003.
            ascii_host = idna.encode(host, uts46=True, transitional=False).decode("ascii").rstrip(".")
            host = idna.uts46_remap(host, std3_rules=False, transitional=False).rstrip(".")
        except UnicodeError as exc:
            raise WebsiteError from exc
    # A host name, not an address: the last label of 10.0.0.12 is all digits.
    if not _HOST.match(ascii_host) or ascii_host.rpartition(".")[2].isdigit() or " " in value:
        raise WebsiteError
    try:
        port = parts.port
    except ValueError as exc:
        raise WebsiteError from exc
    if not has_public_tld(ascii_host):
        raise UnknownDomainError
    netloc = host + (f":{port}" if port and port != 443 else "")  # lower case already (UTS 46)
    path = parts.path if parts.path not in ("", "/") else ""
    return urlunsplit(("https", netloc, path, parts.query, ""))


@dataclass
class EndorsementForm:
    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    data: dict[str, Any] = field(default_factory=dict)
    honeypot_filled: bool = False

    @property
    def ok(self) -> bool:
        return not self.errors


def _text(raw: object) -> str:
    return raw if isinstance(raw, str) else ""


def parse_endorsement_form(form: Any) -> EndorsementForm:
    """Validate a submitted form (a Starlette FormData or a plain mapping)."""
    result = EndorsementForm()
    # A plain dict of the form's last value for each name, as FormData.get gives: its `get` is
    # collections.abc.Mapping's, in Python, and the sign path asks for 15 fields a submission.
    form = dict(form.items())
    raw = {name: _text(form.get(name)) for name in FIELDS}
    result.honeypot_filled = bool(_text(form.get(HONEYPOT_FIELD)).strip())
    values = {name: (clean_text(value) if name == "comment" else clean_line(value)) for name, value in raw.items()}
    # Keep what the user typed for the re-rendered form, but never a megabyte of it.
    result.values = {name: value[:2000] for name, value in values.items()}
    errors = result.errors
    data = result.data

    for name, limit in MAX_LENGTHS.items():
        if len(values[name]) > limit:
            errors[name] = _(
                "“%(field)s” is too long: please use at most %(limit)d characters.",
                field=str(FIELD_LABELS[name]),
                limit=limit,
            )

    if "organisation_name" not in errors:
        if len(values["organisation_name"]) < 2:
            errors["organisation_name"] = _("Please enter the name of your organisation.")
        data["organisation_name"] = values["organisation_name"]
        data["name_normalised"] = normalise_name(values["organisation_name"])

    country = values["country"].upper()
    if not countries.is_country(country):
        errors["country"] = _("Please choose the country where your organisation is based.")
    data["country"] = country

    if values["organisation_type"] not in ORGANISATION_TYPES:
        errors["organisation_type"] = _("Please choose the type of your organisation.")
    data["organisation_type"] = values["organisation_type"]

    if "website" not in errors:
        try:
            data["website"] = normalise_website(values["website"])
        except UnknownDomainError:
            errors["website"] = _(
                "This web address does not end in a known domain such as .org or .de: "
                "please check it, or leave it empty."
            )
        except WebsiteError:
            errors["website"] = _("Please enter a web address such as https://example.org, or leave it empty.")

    if "transparency_register" not in errors:
        try:
            data["transparency_register"] = normalise_transparency_register(values["transparency_register"])
        except ValueError:
            errors["transparency_register"] = _(
                "Please enter the EU Transparency Register number as the register shows it, "
                "such as 123456789012-34, or leave it empty."
            )

    if "contact_name" not in errors and not values["contact_name"]:
        errors["contact_name"] = _("Please enter your name.")
    data["contact_name"] = values["contact_name"]
    data["contact_role"] = values["contact_role"]
    data["city"] = values["city"]
    data["comment"] = values["comment"]

    if "contact_email" not in errors:
        if not values["contact_email"]:
            errors["contact_email"] = _("Please enter your email address.")
        else:
            try:
                email = normalised_email(values["contact_email"])
            except EmailNotValidError:
                errors["contact_email"] = _("Please enter a valid email address, such as name@example.org.")
            else:
                data["contact_email"] = email
                data["email_canonical"] = canonical_email(email)

    if not values["authorised"]:
        errors["authorised"] = _("Please confirm that you are authorised to sign for your organisation.")
    data["authorised"] = bool(values["authorised"])

    if not values["consent"]:
        errors["consent"] = _("Please agree to how we use your data, or we cannot record your endorsement.")
    data["consent_version"] = CONSENT_VERSION
    # Optional, its own consent: never ticked for anyone, never a condition of the endorsement.
    data["news_consent_version"] = NEWS_CONSENT_VERSION if values["news"] else None

    # No default, ever: naming an organisation that did not choose it can put people at risk.
    visibility = values["visibility"]
    if visibility not in (Visibility.PUBLIC.value, Visibility.ANONYMOUS.value):
        errors["visibility"] = _("Please choose whether your organisation may be named publicly.")
        visibility = ""
    data["visibility"] = visibility
    # The re-rendered form keeps a valid choice, and shows no option chosen otherwise.
    result.values["visibility"] = visibility
    return result
