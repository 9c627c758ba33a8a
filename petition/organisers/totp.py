"""Two-step login: time-based one-time codes (RFC 6238, `pyotp`) and one-time recovery codes.

- Enrolment: a secret is kept as *pending* on the organiser and shown as a QR code (an
  otpauth:// URI rendered here as SVG, in a data: image the CSP allows) and as text; a code
  from the app proves it, the secret becomes the organiser's, and ten recovery codes are shown
  once. Enrolling ends the organiser's other sessions.
- Login: after the password, a code within one step (30 s) either side of now. The time-step
  of every code used is stored and a code is accepted only for a later step, so a code seen
  over a shoulder or in a proxy cannot be used again.
- Recovery codes: 80 random bits each, stored as a SHA-256 (a slow hash adds nothing to that
  much randomness), each usable once.
- Required for admins when BASE_URL is https; an admin can reset anyone's second factor.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyotp
import sqlalchemy as sa

from petition.db import Database, Row
from petition.organisers.roles import Role
from petition.organisers.tables import organisers, recovery_codes
from petition.schema import utcnow
from petition.settings import Settings

INTERVAL = 30
DIGITS = 6
#: Steps either side of now whose code is accepted (clock drift, typing time).
VALID_WINDOW = 1
RECOVERY_CODE_COUNT = 10

_TOTP_RE = re.compile(r"[0-9]{6}")
_RECOVERY_RE = re.compile(r"[a-z2-7]{16}")


def second_factor_on(row: Row) -> bool:
    return row["totp_enabled_at"] is not None and bool(row["totp_secret"])


def second_factor_required(row: Row, settings: Settings) -> bool:
    """Admins on an https site must use two-step login; moderators may."""
    return row["role"] == Role.ADMIN.value and settings.https


def must_enrol(row: Row, settings: Settings) -> bool:
    return second_factor_required(row, settings) and not second_factor_on(row)


# --- codes -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Code:
    kind: str  # "totp" or "recovery"
    value: str


def parse_code(raw: object) -> Code | None:
    """What was typed into the code field: six digits, or a recovery code (case, spaces and
    dashes do not matter); None for anything else, which can never be right."""
    if not isinstance(raw, str) or len(raw) > 64:
        return None
    value = re.sub(r"[\s-]+", "", raw).lower()
    if _TOTP_RE.fullmatch(value):
        return Code("totp", value)
    if _RECOVERY_RE.fullmatch(value):
        return Code("recovery", value)
    return None


def new_secret() -> str:
    return pyotp.random_base32()  # 32 base32 characters: 160 bits, as RFC 4226 recommends


def issuer(settings: Settings) -> str:
    return urlsplit(settings.base_url).hostname or "petition"


def provisioning_uri(secret: str, *, email: str, settings: Settings) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL).provisioning_uri(
        name=email, issuer_name=issuer(settings)
    )


def qr_data_uri(uri: str) -> str:
    """The URI as a QR code: an SVG in a data: URI (`img-src 'self' data:`), dark on white."""
    import qrcode
    import qrcode.image.svg

    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathFillImage, box_size=10, border=4)
    svg = image.to_string(encoding="unicode")
    return "data:image/svg+xml;base64," + base64.b64encode(svg.encode("utf-8")).decode("ascii")


def grouped(value: str, size: int = 4) -> str:
    """ABCDEFGH… as ABCD EFGH …, for reading and typing."""
    return " ".join(value[i : i + size] for i in range(0, len(value), size))


def matching_step(secret: str, code: str, *, after: int | None, now: dt.datetime | None = None) -> int | None:
    """The time-step whose code this is, within the valid window and later than `after`; else None."""
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=INTERVAL)
    current = totp.timecode(now or utcnow())
    found = None
    # Every step of the window is compared, so the time taken says nothing about which matched.
    for step in range(current - VALID_WINDOW, current + VALID_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and (after is None or step > after) and found is None:
            found = step
    return found


def new_recovery_codes() -> list[str]:
    """Ten codes of 16 base32 characters (80 bits), shown as xxxx-xxxx-xxxx-xxxx."""
    codes: list[str] = []
    while len(codes) < RECOVERY_CODE_COUNT:
        code = base64.b32encode(secrets.token_bytes(10)).decode("ascii").lower()
        if code not in codes:
            codes.append(code)
    return codes


def shown(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))


def recovery_hash(organiser_id: int, code: str) -> str:
    return hashlib.sha256(f"petition.recovery-code:{organiser_id}:{code}".encode()).hexdigest()


# --- queries ------------------------------------------------------------------------------------


async def start_enrolment(db: Database, *, organiser_id: int) -> str:
    """The pending secret of this organiser, made now if there is none (a reload shows the same one)."""
    async with db.write():
        row = await db.fetch_one(sa.select(organisers.c.totp_pending_secret).where(organisers.c.id == organiser_id))
        if row is not None and row["totp_pending_secret"]:
            return str(row["totp_pending_secret"])
        secret = new_secret()
        await db.execute(organisers.update().where(organisers.c.id == organiser_id).values(totp_pending_secret=secret))
        return secret


async def finish_enrolment(db: Database, *, organiser_id: int, secret: str, step: int, codes: list[str]) -> bool:
    """Make the pending secret the organiser's, store the recovery codes' hashes and end the
    organiser's other sessions. False when it was not pending any more (another tab finished first)."""
    now = utcnow()
    async with db.write():
        done = await db.fetch_one(
            organisers.update()
            .where(
                organisers.c.id == organiser_id,
                organisers.c.totp_pending_secret == secret,
                organisers.c.totp_enabled_at.is_(None),
            )
            .values(
                totp_secret=secret,
                totp_pending_secret=None,
                totp_enabled_at=now,
                totp_last_step=step,
                session_version=organisers.c.session_version + 1,
            )
            .returning(organisers.c.id)
        )
        if done is None:
            return False
        await db.execute(recovery_codes.delete().where(recovery_codes.c.organiser_id == organiser_id))
        await db.execute(
            recovery_codes.insert().values(
                [
                    {"organiser_id": organiser_id, "code_hash": recovery_hash(organiser_id, code), "created_at": now}
                    for code in codes
                ]
            )
        )
    return True


async def use_totp_code(db: Database, *, organiser: Row, code: str) -> bool:
    """True when `code` is the organiser's current code and no code of its step or a later one was used."""
    if not second_factor_on(organiser):
        return False
    step = matching_step(organiser["totp_secret"], code, after=organiser["totp_last_step"])
    if step is None:
        return False
    # Compare-and-set: of two requests racing with one code, one wins.
    async with db.write():
        used = await db.fetch_one(
            organisers.update()
            .where(
                organisers.c.id == organiser["id"],
                organisers.c.totp_secret == organiser["totp_secret"],
                sa.or_(organisers.c.totp_last_step.is_(None), organisers.c.totp_last_step < step),
            )
            .values(totp_last_step=step)
            .returning(organisers.c.id)
        )
    return used is not None


async def use_recovery_code(db: Database, *, organiser_id: int, code: str) -> int | None:
    """Spend one recovery code; how many are left, or None when it is not an unused code of this organiser."""
    c = recovery_codes.c
    async with db.write():
        spent = await db.fetch_one(
            recovery_codes.update()
            .where(
                c.organiser_id == organiser_id, c.code_hash == recovery_hash(organiser_id, code), c.used_at.is_(None)
            )
            .values(used_at=utcnow())
            .returning(c.id)
        )
        if spent is None:
            return None
        return await count_recovery_codes(db, organiser_id=organiser_id)


async def count_recovery_codes(db: Database, *, organiser_id: int) -> int:
    c = recovery_codes.c
    return int(
        await db.fetch_val(
            sa.select(sa.func.count())
            .select_from(recovery_codes)
            .where(c.organiser_id == organiser_id, c.used_at.is_(None))
        )
        or 0
    )


async def reset_second_factor(db: Database, *, organiser_id: int) -> bool:
    """Turn the organiser's two-step login off (lost phone): secret, recovery codes and sessions
    end; at the next login they enrol again if they must. True when it was on."""
    async with db.write():
        was_on = await db.fetch_one(
            sa.select(organisers.c.id).where(organisers.c.id == organiser_id, organisers.c.totp_enabled_at.is_not(None))
        )
        values: dict[str, object] = {
            "totp_secret": None,
            "totp_pending_secret": None,
            "totp_enabled_at": None,
            "totp_last_step": None,
        }
        if was_on is not None:
            values["session_version"] = organisers.c.session_version + 1
        await db.execute(organisers.update().where(organisers.c.id == organiser_id).values(**values))
        await db.execute(recovery_codes.delete().where(recovery_codes.c.organiser_id == organiser_id))
    return was_on is not None
