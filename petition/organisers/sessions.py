"""Organiser sessions: a signed cookie, no server-side session store.

The cookie holds [organiser id, session version, issued-at]. Its signature time
is refreshed while the organiser is active (idle expiry); the issued-at time
never changes (absolute expiry). Bumping `organisers.session_version` ends every
session of that organiser in every web process at once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import HTTPConnection
from starlette.responses import Response

from petition.settings import Settings

COOKIE_NAME = "petition_admin"
COOKIE_PATH = "/admin"
IDLE_SECONDS = 8 * 3600
ABSOLUTE_SECONDS = 24 * 3600
#: Re-sign the cookie at most this often, so not every response carries a Set-Cookie.
REFRESH_AFTER = 300


@dataclass(frozen=True)
class SessionClaims:
    organiser_id: int
    version: int
    issued_at: int
    signed_at: int

    @property
    def needs_refresh(self) -> bool:
        return time.time() - self.signed_at > REFRESH_AFTER


class Sessions:
    def __init__(self, settings: Settings) -> None:
        self._serializer = URLSafeTimedSerializer(str(settings.secret_key), salt="petition.organiser-session")
        self._secure = settings.https

    def read(self, conn: HTTPConnection) -> SessionClaims | None:
        raw = conn.cookies.get(COOKIE_NAME)
        if not raw or len(raw) > 512:
            return None
        try:
            payload, signed = self._serializer.loads(raw, max_age=IDLE_SECONDS, return_timestamp=True)
        except (SignatureExpired, BadSignature, UnicodeError, ValueError):
            return None
        if not (isinstance(payload, list) and len(payload) == 3 and all(type(v) is int for v in payload)):
            return None
        organiser_id, version, issued_at = payload
        now = time.time()
        if issued_at > now + 60 or now - issued_at > ABSOLUTE_SECONDS:
            return None
        return SessionClaims(organiser_id, version, issued_at, int(signed.timestamp()))

    def set(self, response: Response, *, organiser_id: int, version: int, issued_at: int | None = None) -> None:
        issued = int(time.time()) if issued_at is None else issued_at
        value = self._serializer.dumps([organiser_id, version, issued])
        remaining = max(0, min(IDLE_SECONDS, issued + ABSOLUTE_SECONDS - int(time.time())))
        response.set_cookie(
            COOKIE_NAME, value, max_age=remaining, path=COOKIE_PATH, secure=self._secure, httponly=True, samesite="lax"
        )

    def clear(self, response: Response) -> None:
        response.delete_cookie(COOKIE_NAME, path=COOKIE_PATH, secure=self._secure, httponly=True, samesite="lax")


#: Seconds between a right password and the second-factor code it waits for.
PENDING_SECONDS = 300


@dataclass(frozen=True)
class PendingLogin:
    organiser_id: int
    version: int
    next_url: str


class PendingLogins:
    """The second step of a login: a short-lived signed token in the code form, never the password.

    It names the organiser whose password was right and their session version, so a password
    change or a reset of the second factor in between voids it. Holding it is worth nothing
    without a code, and every code tried counts against the login throttle.
    """

    def __init__(self, settings: Settings) -> None:
        self._serializer = URLSafeTimedSerializer(str(settings.secret_key), salt="petition.organiser-login-pending")

    def make(self, *, organiser_id: int, version: int, next_url: str) -> str:
        return self._serializer.dumps([organiser_id, version, next_url])

    def read(self, token: object) -> PendingLogin | None:
        if not isinstance(token, str) or not token or len(token) > 1000:
            return None
        try:
            payload = self._serializer.loads(token, max_age=PENDING_SECONDS)
        except (SignatureExpired, BadSignature, UnicodeError, ValueError):
            return None
        if not (
            isinstance(payload, list)
            and len(payload) == 3
            and type(payload[0]) is int
            and type(payload[1]) is int
            and isinstance(payload[2], str)
        ):
            return None
        return PendingLogin(payload[0], payload[1], payload[2])
