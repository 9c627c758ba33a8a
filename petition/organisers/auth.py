"""Who is logged in, and a way to require a role on a route.

Every organiser route is built with `admin_route(...)`, which wraps the endpoint in
`require(role)`: no valid session → a GET goes to the login page and anything else
gets 403; a valid session without the role → 403. The role a route needs is kept
on the endpoint (`required_role`) so one test can check every route.

An organiser who must use two-step login and has not enrolled yet (an admin on an https
site) can open only the routes marked `during_enrolment` (enrolment itself, logout): any
other GET goes to the enrolment page, anything else gets 403.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable, Sequence
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from petition.db import Row
from petition.organisers.devices import DeviceCookies
from petition.organisers.pages import redirect, render
from petition.organisers.queries import get_organiser
from petition.organisers.roles import Role, has_role
from petition.organisers.sessions import COOKIE_NAME, PendingLogins, SessionClaims, Sessions
from petition.organisers.totp import must_enrol
from petition.web import services

Endpoint = Callable[[Request], Awaitable[Response]]

LOGIN_PATH = "/admin/login"
ENROL_PATH = "/admin/account/two-step"


def sessions(request: Request) -> Sessions:
    return services(request).organiser_sessions


def devices(request: Request) -> DeviceCookies:
    return services(request).organiser_devices


def pending_logins(request: Request) -> PendingLogins:
    return services(request).pending_logins


def organiser(request: Request) -> Row:
    """The organiser of this request (only inside a `require`d endpoint)."""
    return request.state.organiser  # type: ignore[no-any-return]


def safe_next(value: object) -> str:
    """Where to go after login: only a path inside the organiser area."""
    if (
        isinstance(value, str)
        and value.startswith("/admin/")
        and not value.startswith("//")
        and "\\" not in value
        and "\n" not in value
        and "\r" not in value
        and len(value) < 500
    ):
        return value
    return "/admin/"


async def session_organiser(request: Request) -> tuple[Row | None, SessionClaims | None]:
    claims = sessions(request).read(request)
    if claims is None:
        return None, None
    row = await get_organiser(services(request).db, organiser_id=claims.organiser_id)
    if row is None or not row["active"] or row["session_version"] != claims.version:
        return None, None
    return row, claims


def require(role: Role, *, during_enrolment: bool = False) -> Callable[[Endpoint], Endpoint]:
    def decorator(endpoint: Endpoint) -> Endpoint:
        @functools.wraps(endpoint)
        async def guarded(request: Request) -> Response:
            row, claims = await session_organiser(request)
            if row is None or claims is None:
                if request.method in ("GET", "HEAD"):
                    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    response: Response = redirect(request, LOGIN_PATH + "?" + urlencode({"next": safe_next(target)}))
                else:
                    response = render(request, "admin/forbidden.html", {"reason": "session"}, status=403, private=True)
                if request.cookies.get(COOKIE_NAME):
                    sessions(request).clear(response)
                return response
            request.state.organiser = row
            request.state.must_enrol = must_enrol(row, services(request).settings)
            if request.state.must_enrol and not during_enrolment:
                if request.method in ("GET", "HEAD"):
                    response = redirect(request, ENROL_PATH)
                else:
                    response = render(request, "admin/two_step_required.html", status=403, private=True)
                response.headers["Cache-Control"] = "no-store"
                return response
            if not has_role(row["role"], role):
                return render(request, "admin/forbidden.html", {"reason": "role"}, status=403, private=True)
            response = await endpoint(request)
            response.headers["Cache-Control"] = "no-store"
            sets_own_cookie = any(
                value.startswith(COOKIE_NAME + "=") for value in response.headers.getlist("set-cookie")
            )
            if claims.needs_refresh and not sets_own_cookie:
                sessions(request).set(
                    response, organiser_id=row["id"], version=row["session_version"], issued_at=claims.issued_at
                )
            return response

        guarded.required_role = role  # type: ignore[attr-defined]
        guarded.during_enrolment = during_enrolment  # type: ignore[attr-defined]
        return guarded

    return decorator


def admin_route(
    path: str,
    endpoint: Endpoint,
    *,
    role: Role,
    methods: Sequence[str] = ("GET",),
    name: str | None = None,
    during_enrolment: bool = False,
) -> Route:
    return Route(
        "/admin" + path, require(role, during_enrolment=during_enrolment)(endpoint), methods=list(methods), name=name
    )
