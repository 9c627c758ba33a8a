"""Logging in: the password, then (when the organiser uses two-step login) a code.

Each step is a list of guards: unusable input → 400; the throttle refuses → 429; then the one
slow check, whose attempt was reserved before it (petition.organisers.throttle). A right
password for an organiser with two-step login answers with the code form, which carries a
short-lived signed token (petition.organisers.sessions.PendingLogins) and never the password.
"""

from __future__ import annotations

import logging
import re

from starlette.requests import Request
from starlette.responses import Response

from petition.abuse.limits import is_trusted
from petition.audit.actions import AuditAction
from petition.audit.queries import record
from petition.db import Row
from petition.i18n import get_language
from petition.i18n import gettext as _
from petition.organisers.auth import ENROL_PATH, devices, pending_logins, safe_next, session_organiser, sessions
from petition.organisers.pages import redirect, render
from petition.organisers.params import text
from petition.organisers.passwords import hash_password_async, needs_rehash, verify_password_async
from petition.organisers.queries import find_organiser, get_organiser, mark_login, rehash_password
from petition.organisers.throttle import (
    Attempt,
    Refusal,
    Reservation,
    account_key,
    address_key,
    alert_if_guessed,
    attempt_succeeded,
    reserve_attempt,
)
from petition.organisers.totp import must_enrol, parse_code, second_factor_on, use_recovery_code, use_totp_code
from petition.web import client_ip, read_form, services

log = logging.getLogger("petition.organisers")

MAX_PASSWORD = 1024
#: Control characters can be neither typed nor stored (PostgreSQL refuses NUL in text).
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _password(form: object, name: str) -> str:
    value = form.get(name) if hasattr(form, "get") else None  # type: ignore[union-attr]
    return value[:MAX_PASSWORD] if isinstance(value, str) else ""


def _login_page(
    request: Request, *, email: str = "", next_url: str = "/admin/", error: str | None = None, status: int = 200
) -> Response:
    # A page answering a POST (either step) switches language to the login form, a GET.
    request.scope["state"]["language_switch_path"] = "/admin/login"
    return render(
        request,
        "admin/login.html",
        {"values": {"email": email}, "error": error, "next": next_url},
        status=status,
        private=True,
    )


def _code_page(request: Request, *, token: str, error: str | None = None, status: int = 200) -> Response:
    request.scope["state"]["language_switch_path"] = "/admin/login"
    return render(request, "admin/login_code.html", {"pending": token, "error": error}, status=status, private=True)


def _throttled(request: Request, *, email: str, next_url: str, refusal: Refusal) -> Response:
    # No audit row per throttled try: a flood must not flood the log too.
    log.warning("organiser login throttled (%s)", refusal.value)
    response = _login_page(
        request,
        email=email,
        next_url=next_url,
        status=429,
        error=_("Too many failed attempts. Please wait a quarter of an hour and try again."),
    )
    response.headers["Retry-After"] = "900"
    return response


def _attempt(request: Request, *, email: str, organiser_id: int | None) -> Attempt:
    settings = services(request).settings
    secret = str(settings.secret_key)
    # Behind a proxy in PROXY_IPS, uvicorn has put the forwarded address here (petition.server).
    ip = client_ip(request) or "unknown"
    return Attempt(
        account_key=account_key(secret, email),
        ip=address_key(secret, ip),
        device=devices(request).key_for(request, organiser_id=organiser_id),
        ip_exempt=is_trusted(settings, ip),
    )


async def _failed(request: Request, *, attempt: Attempt, row: Row | None, reason: str) -> None:
    svc = services(request)
    await record(
        svc.db,
        organiser_id=row["id"] if row is not None else None,
        action=AuditAction.LOGIN_FAILED,
        target_type="organiser" if row is not None else None,
        target_id=row["id"] if row is not None else None,
        detail=reason,
    )
    if row is not None and row["active"]:
        await alert_if_guessed(svc.db, mailer=svc.mailer, organiser=row, attempt=attempt)


async def _logged_in(request: Request, *, row: Row, next_url: str) -> Response:
    """Both steps passed: the session, a fresh device cookie, and on to the page asked for
    (or to enrolment, for an admin who must and has not)."""
    svc = services(request)
    await mark_login(svc.db, organiser_id=row["id"], language=get_language())
    await record(svc.db, organiser_id=row["id"], action=AuditAction.LOGIN, target_type="organiser", target_id=row["id"])
    target = ENROL_PATH if must_enrol(row, svc.settings) else next_url
    response = redirect(request, target)
    sessions(request).set(response, organiser_id=row["id"], version=row["session_version"])
    devices(request).issue(response, organiser_id=row["id"])
    response.headers["Cache-Control"] = "no-store"
    return response


async def login_page(request: Request) -> Response:
    next_url = safe_next(request.query_params.get("next"))
    row, _claims = await session_organiser(request)
    if row is not None:
        return redirect(request, next_url)
    return _login_page(request, next_url=next_url)


async def login(request: Request) -> Response:
    db = services(request).db
    form = await read_form(request)
    email = text(form, "email", 254)
    password = _password(form, "password")
    next_url = safe_next(form.get("next"))
    if _CONTROL.search(email) or "\x00" in password:
        return _login_page(
            request,
            email=_CONTROL.sub("", email),
            next_url=next_url,
            status=400,
            error=_("The email address or the password contains characters that cannot be used."),
        )
    row = await find_organiser(db, email=email) if email else None
    attempt = _attempt(request, email=email, organiser_id=row["id"] if row is not None else None)
    reservation = await reserve_attempt(db, attempt)
    if reservation.refused is not None:
        return _throttled(request, email=email, next_url=next_url, refusal=reservation.refused)
    usable = row is not None and row["active"]
    # An unknown or inactive account costs the same hashing as a wrong password.
    ok = await verify_password_async(row["password_hash"] if row is not None and usable else None, password)
    if not ok or row is None or not usable:
        reason = "unknown account" if row is None else ("inactive account" if not usable else "wrong password")
        await _failed(request, attempt=attempt, row=row, reason=reason)
        return _login_page(
            request,
            email=email,
            next_url=next_url,
            status=400,
            error=_("The email address or the password is not right."),
        )
    await attempt_succeeded(db, reservation, attempt)
    if needs_rehash(row["password_hash"]):
        await rehash_password(
            db, organiser_id=row["id"], old_hash=row["password_hash"], new_hash=await hash_password_async(password)
        )
    if second_factor_on(row):
        token = pending_logins(request).make(organiser_id=row["id"], version=row["session_version"], next_url=next_url)
        return _code_page(request, token=token)
    return await _logged_in(request, row=row, next_url=next_url)


async def login_code(request: Request) -> Response:
    """The second step: a code from the app, or a recovery code."""
    db = services(request).db
    form = await read_form(request)
    pending = pending_logins(request).read(form.get("pending"))
    row = await get_organiser(db, organiser_id=pending.organiser_id) if pending is not None else None
    if (
        pending is None
        or row is None
        or not row["active"]
        or row["session_version"] != pending.version
        or not second_factor_on(row)
    ):
        return _login_page(
            request, status=400, error=_("This login has expired or is no longer valid. Please log in again.")
        )
    token = str(form.get("pending"))
    code = parse_code(form.get("code"))
    if code is None:
        return _code_page(
            request,
            token=token,
            status=400,
            error=_("Enter the 6-digit code from your authenticator app, or one of your recovery codes."),
        )
    attempt = _attempt(request, email=row["email"], organiser_id=row["id"])
    reservation: Reservation = await reserve_attempt(db, attempt)
    if reservation.refused is not None:
        return _throttled(request, email=row["email"], next_url=pending.next_url, refusal=reservation.refused)
    left = None
    if code.kind == "totp":
        ok = await use_totp_code(db, organiser=row, code=code.value)
    else:
        left = await use_recovery_code(db, organiser_id=row["id"], code=code.value)
        ok = left is not None
    if not ok:
        await _failed(request, attempt=attempt, row=row, reason=f"wrong {code.kind} code")
        return _code_page(
            request,
            token=token,
            status=400,
            error=_("The code is not right, or it was used already. Enter the next code your app shows."),
        )
    await attempt_succeeded(db, reservation, attempt)
    if left is not None:
        await record(
            db,
            organiser_id=row["id"],
            action=AuditAction.LOGIN_RECOVERY_CODE,
            target_type="organiser",
            target_id=row["id"],
            detail=f"{left} left",
        )
    return await _logged_in(request, row=row, next_url=safe_next(pending.next_url))
