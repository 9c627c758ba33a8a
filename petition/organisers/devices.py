"""Device cookies: a browser that logged in to an account before gets a login budget of its own.

After OWASP's "Slow Down Online Guessing Attacks with Device Cookies": a successful login
gives the browser a signed cookie naming the organiser and a random nonce. A later login to
that account from that browser counts its failures against the nonce
(`petition.organisers.throttle.DEVICE_LIMIT`), not against the account's budget for unknown
clients, which an attacker may have used up; nor against its address's. Each successful login
issues a fresh nonce. The cookie is HttpOnly, SameSite=Strict, Secure on https, and sent only
to /admin. It proves nothing on its own: the password (and code) are still needed.
"""

from __future__ import annotations

import secrets

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from starlette.requests import HTTPConnection
from starlette.responses import Response

from petition.organisers.sessions import COOKIE_PATH
from petition.organisers.throttle import device_key
from petition.settings import Settings

DEVICE_COOKIE = "petition_device"
MAX_AGE = 180 * 24 * 3600


class DeviceCookies:
    def __init__(self, settings: Settings) -> None:
        self._secret = str(settings.secret_key)
        self._serializer = URLSafeTimedSerializer(self._secret, salt="petition.organiser-device")
        self._secure = settings.https

    def key_for(self, conn: HTTPConnection, *, organiser_id: int | None) -> str | None:
        """The throttling key of this browser's device cookie if it is valid for this organiser, else None."""
        raw = conn.cookies.get(DEVICE_COOKIE)
        if organiser_id is None or not raw or len(raw) > 300:
            return None
        try:
            payload = self._serializer.loads(raw, max_age=MAX_AGE)
        except (SignatureExpired, BadSignature, UnicodeError, ValueError):
            return None
        if not (
            isinstance(payload, list)
            and len(payload) == 2
            and type(payload[0]) is int
            and isinstance(payload[1], str)
            and 16 <= len(payload[1]) <= 64
        ):
            return None
        if payload[0] != organiser_id:
            return None
        return device_key(self._secret, payload[1])

    def issue(self, response: Response, *, organiser_id: int) -> None:
        value = self._serializer.dumps([organiser_id, secrets.token_urlsafe(24)])
        response.set_cookie(
            DEVICE_COOKIE,
            value,
            max_age=MAX_AGE,
            path=COOKIE_PATH,
            secure=self._secure,
            httponly=True,
            samesite="strict",
        )
