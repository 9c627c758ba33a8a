"""The endorsement form: parse, clean and validate, one message per field."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from email_validator import EmailNotValidError, validate_email

from petition import countries
from petition.endorsements.states import ORGANISATION_TYPES, Visibility
from petition.i18n import gettext as _
from petition.i18n import lazy_gettext as _l

#: The current consent statement's version; stored with each endorsement.
CONSENT_VERSION = "2026-11"

FIELDS = (
    "organisation_name", "country", "city", "organisation_type", "website",
    "contact_name", "contact_role", "contact_email", "authorised", "consent",
    "visibility", "comment",
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
}

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

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u200b-\u200f\u2028-\u202e\u2066-\u2069\ufeff]")
_SPACES = re.compile(r"\s+")
_HOST = re.compile(r"^(?=.{1,253}$)([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$")


def clean_line(value: str) -> str:
    """One line of text: NFC, no control or bidi-override characters, spaces folded."""
    value = unicodedata.normalize("NFC", value)
    value = _CONTROL.sub("", value)
    return _SPACES.sub(" ", value).strip()


def clean_text(value: str) -> str:
    """Several lines: as `clean_line`, but newlines kept (at most one blank line)."""
    value = unicodedata.normalize("NFC", value.replace("\r\n", "\n").replace("\r", "\n"))
    value = _CONTROL.sub("", value)
    lines = [_SPACES.sub(" ", line).strip() for line in value.split("\n")]
    return re.sub(r"\n{3,}", "\n\n", "\n".join(lines)).strip()


def normalise_name(value: str) -> str:
    """Casefolded letters and digits only: 'Amnesty  International e.V.' ~ 'amnesty international ev'."""
    folded = unicodedata.normalize("NFKD", value.casefold())
    kept = "".join(ch if ch.isalnum() else " " for ch in folded if not unicodedata.combining(ch))
    return _SPACES.sub(" ", kept).strip()[:200]


#: Mail providers known to ignore dots in the local part.
_DOTLESS_DOMAINS = frozenset({"gmail.com", "googlemail.com"})


def canonical_email(value: str) -> str:
    """One spelling per mailbox, for duplicate checks and rate limits (never for sending).

    Case folded, the domain in its IDNA form, a "+tag" dropped (every large provider
    delivers name+tag@ to name@), and dots dropped where the provider ignores them:
    "Office+Petition@Example.ORG" and "office@example.org" are one mailbox.
    """
    local, _, domain = value.strip().rpartition("@")
    if not local:
        return value.strip().lower()
    domain = domain.rstrip(".").lower()
    try:
        domain = domain.encode("idna").decode("ascii")
    except UnicodeError:
        pass
    local = local.lower()
    if "+" in local[1:]:
        local = local[0] + local[1:].split("+", 1)[0]
    if domain in _DOTLESS_DOMAINS:
        local = local.replace(".", "")
        domain = "gmail.com"
    return f"{local}@{domain}"


class WebsiteError(ValueError):
    pass


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
    host = parts.hostname.rstrip(".")
    try:
        ascii_host = host.encode("idna").decode("ascii").lower()
    except UnicodeError as exc:
        raise WebsiteError from exc
    # A host name, not an address: the last label of 10.0.0.12 is all digits.
    if not _HOST.match(ascii_host) or ascii_host.rpartition(".")[2].isdigit() or " " in value:
        raise WebsiteError
    try:
        port = parts.port
    except ValueError as exc:
        raise WebsiteError from exc
    netloc = host.lower() + (f":{port}" if port and port != 443 else "")
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
    raw = {name: _text(form.get(name)) for name in FIELDS}
    result.honeypot_filled = bool(_text(form.get(HONEYPOT_FIELD)).strip())
    values = {
        name: (clean_text(value) if name == "comment" else clean_line(value))
        for name, value in raw.items()
    }
    # Keep what the user typed for the re-rendered form, but never a megabyte of it.
    result.values = {name: value[:2000] for name, value in values.items()}
    errors = result.errors
    data = result.data

    for name, limit in MAX_LENGTHS.items():
        if len(values[name]) > limit:
            errors[name] = _("Please use at most %(limit)d characters.", limit=limit)

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
        except WebsiteError:
            errors["website"] = _("Please enter a web address such as https://example.org, or leave it empty.")

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
                checked = validate_email(values["contact_email"], check_deliverability=False)
            except EmailNotValidError:
                errors["contact_email"] = _("Please enter a valid email address, such as name@example.org.")
            else:
                data["contact_email"] = checked.normalized
                data["email_canonical"] = canonical_email(checked.normalized)

    if not values["authorised"]:
        errors["authorised"] = _("Please confirm that you are authorised to sign for your organisation.")
    data["authorised"] = bool(values["authorised"])

    if not values["consent"]:
        errors["consent"] = _("Please agree to how we use your data, or we cannot record your endorsement.")
    data["consent_version"] = CONSENT_VERSION

    visibility = values["visibility"] or Visibility.PUBLIC.value
    if visibility not in (Visibility.PUBLIC.value, Visibility.ANONYMOUS.value):
        errors["visibility"] = _("Please choose whether your organisation may be named publicly.")
    data["visibility"] = visibility
    result.values["visibility"] = visibility[:2000]
    return result
