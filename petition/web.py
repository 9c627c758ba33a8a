"""What every HTML handler shares: the services, rendering with CSRF and language, forms."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote

from starlette.datastructures import FormData, UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from petition import i18n
from petition.db import Database
from petition.metrics import Metrics
from petition.security import CSRF
from petition.settings import Settings
from petition.templating import switch_language_url
from petition.tokens import Tokens

if TYPE_CHECKING:
    from petition.dossiers.jobs import DossierWorker
    from petition.dossiers.verify_pool import VerifyPool
    from petition.endorsements.intake import Intake
    from petition.endorsements.lifecycle import Lifecycle
    from petition.identity.worker import DomainProofWorker
    from petition.organisers.devices import DeviceCookies
    from petition.organisers.sessions import PendingLogins, Sessions
    from petition.outbox.messages import Mailer
    from petition.outbox.worker import OutboxWorker
    from petition.publish.cache import PublicCache


@dataclass
class Services:
    settings: Settings
    db: Database
    templates: Jinja2Templates
    mailer: Mailer
    tokens: Tokens
    csrf: CSRF
    intake: Intake
    #: What every public page reads, kept for a few seconds (petition.publish.cache).
    public_cache: PublicCache
    #: The organiser area's signed cookies and login tokens (petition.organisers.auth).
    organiser_sessions: Sessions
    organiser_devices: DeviceCookies
    pending_logins: PendingLogins
    #: Every change of an endorsement's state (petition.endorsements.lifecycle).
    lifecycle: Lifecycle
    #: This process's counters for /metrics (petition.metrics).
    metrics: Metrics
    # Set while the application runs (its lifespan starts and stops them).
    worker: OutboxWorker | None = None
    dossier_worker: DossierWorker | None = None
    domain_proof_worker: DomainProofWorker | None = None
    verify_pool: VerifyPool | None = None


def services(request: Request) -> Services:
    # What `request.state.services` reads, without making a `State` for each `Request` (a request
    # makes several; the sign path asks for its services a dozen times).
    return request.scope["state"]["services"]  # type: ignore[no-any-return]


class _LazyCSRFToken:
    """The CSRF token, made only when a template prints it.

    A page without a form then sets no cookie, so public pages stay cacheable.
    """

    __slots__ = ("_csrf", "_request", "_value")

    def __init__(self, csrf: CSRF, request: Request) -> None:
        self._csrf = csrf
        self._request = request
        self._value: str | None = None

    def __str__(self) -> str:
        if self._value is None:
            self._value = self._csrf.token_for(self._request)
        return self._value

    def __html__(self) -> str:
        return str(self)  # URL-safe base64: nothing to escape


def client_ip(request: Request) -> str | None:
    """The visitor's address (behind a proxy listed in PROXY_IPS, the one it forwards: petition.server)."""
    return request.client.host if request.client else None


#: Cache-Control of a public page without a form (docs/reach.md, "Web basics").
PUBLIC_PAGE_CACHE = "public, max-age=60"


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status: int = 200,
    private: bool = False,
    token_page: bool = False,
) -> Response:
    """Render an HTML page; `private` pages are never cached, `token_page`s leak no Referer.

    Cache-Control: `no-store` for `private` and `token_page`s; `private, no-cache` for a page
    whose form carries the visitor's CSRF token; `public, max-age=60` for any other public GET.
    """
    svc = services(request)
    ctx = {
        "csrf_token": _LazyCSRFToken(svc.csrf, request),
        "lang": i18n.get_language(),
        "language_links": [
            (code, i18n.LANGUAGE_NAMES[code], switch_language_url(request, code)) for code in i18n.LANGUAGES
        ],
        **(context or {}),
    }
    response = svc.templates.TemplateResponse(request, name, ctx, status_code=status)
    response.headers["Content-Language"] = i18n.get_language()
    response.headers.setdefault("Vary", "Accept-Language, Cookie")
    if private or token_page:
        response.headers["Cache-Control"] = "no-store"
    elif "csrf_token" in (context or {}) or request.scope.get("state", {}).get("csrf_used"):
        # A form's token is the visitor's own (their cookie's HMAC): no shared cache may keep it,
        # and their browser asks again before reusing it (the cookie may have gone with a restart).
        response.headers["Cache-Control"] = "private, no-cache"
    elif request.method == "GET" and status == 200 and not request.url.path.startswith("/admin"):
        # The same for every visitor of a language (Vary): a proxy or browser may keep it briefly.
        response.headers["Cache-Control"] = PUBLIC_PAGE_CACHE
    if token_page:
        response.headers["Referrer-Policy"] = "no-referrer"
    return response


#: No per-field limit below the body limit (BodySizeLimitMiddleware): an overlong field gets
#: its own message in the re-rendered form rather than a bare 400.
MAX_FIELD_BYTES = 1024 * 1024


URLENCODED = "application/x-www-form-urlencoded"


def parse_urlencoded(body: bytes, *, max_fields: int) -> FormData:
    """An urlencoded body as form data, strictly UTF-8 (ValueError or UnicodeDecodeError otherwise).

    Starlette would decode bytes that are not UTF-8 as U+FFFD and store mojibake as an
    organisation's name. The pairs are what the standard library's `parse_qsl` gives
    (`keep_blank_values`, strict UTF-8, `max_num_fields`; tests/test_web.py holds
    them to it), in a loop that decodes only the pieces that carry a `%` or a `+`: the sign
    path parses every form, and most of its values need neither.
    """
    text = body.decode("utf-8")
    pieces = text.split("&") if text else []
    if len(pieces) > max_fields:
        raise ValueError("Max number of fields exceeded")
    pairs: list[tuple[str, str | UploadFile]] = []
    for piece in pieces:
        if not piece:
            continue
        name, _, value = piece.partition("=")
        if "+" in name:
            name = name.replace("+", " ")
        if "%" in name:
            name = unquote(name, errors="strict")
        if "+" in value:
            value = value.replace("+", " ")
        if "%" in value:
            value = unquote(value, errors="strict")
        pairs.append((name, value))
    return FormData(pairs)


async def read_form(request: Request, *, check_csrf: bool = True, max_fields: int = 60) -> FormData:
    """The submitted form, CSRF-checked; malformed bodies are a 400, not a 500.

    `max_fields` is raised only by forms that carry many values (bulk moderation).
    """
    # Read (and size-check) the body first; the parsers then read this copy.
    body = await request.body()
    content_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    try:
        if content_type == URLENCODED:
            form = parse_urlencoded(body, max_fields=max_fields)
        else:
            if content_type.startswith("multipart/"):
                # No file uploads are accepted, so every byte of a well-formed body is UTF-8 text
                # (Starlette would read other bytes as Latin-1).
                body.decode("utf-8")
            form = await request.form(max_files=0, max_fields=max_fields, max_part_size=MAX_FIELD_BYTES)
    except (MultiPartException, UnicodeDecodeError, ValueError) as exc:
        raise HTTPException(400, "malformed form") from exc
    if check_csrf:
        services(request).csrf.check(request, form.get("csrf_token"))
    return form
