"""The public appeal pages: the list at /, an appeal with its form, the endorse POST, "check your email".

The POST lives next to the page because a form with errors comes back as that page;
what it submits is taken in by the endorsements domain (`endorsements.forms` validates,
`endorsements.intake` records and queues the email).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
import secrets
import time
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from markupsafe import escape
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from petition import countries, i18n
from petition.appeals.queries import current_titles, get_appeal, list_appeals
from petition.appeals.states import AppealStatus
from petition.db import Row
from petition.endorsements.forms import HONEYPOT_FIELD, parse_endorsement_form
from petition.endorsements.lifecycle import SubmitOutcome
from petition.endorsements.vocabulary import ORGANISATION_TYPE_LABELS
from petition.publish.cache import public_cache
from petition.publish.cached import appeal_by_slug, appeal_deliveries, appeal_text, listed_counts, newest_named
from petition.publish.chart import country_chart
from petition.publish.pages import CachedRoute, cached_page
from petition.publish.share import share_meta
from petition.randomness import random_bytes
from petition.templating import page_url
from petition.web import client_ip, read_form, render, services

#: The cookie that carries a submission to its "check your email" page: the address it went to
#: (shown there) and the values sent (so "send it again" can submit them again). Encrypted and
#: authenticated (AES-256-GCM, a key of its own derived from SECRET_KEY, a random 96-bit nonce
#: each): it names an organisation that may have asked not to be named, so a browser's cookie
#: store must not show it. HttpOnly, for that page's path only, gone when the browser closes and
#: refused an hour after it was sealed (the time sealed inside it); never in a URL. Every
#: submission seals one: Fernet (CBC, HMAC, a key object per request) cost the sign path about
#: 90 µs of its CPU, AES-GCM with the key kept costs about 10.
SENT_COOKIE = "petition_sent"
SENT_MAX_AGE = 3600
_SENT_SALT = "petition.check-email"
#: Above this, the cookie carries the address only (and no resend): browsers keep 4 kB a cookie.
_SENT_LIMIT = 3600
#: In the cookie of a submission that filled the honeypot: its page looks the same, its resend does nothing.
BOT_MARK = "_bot"


_NONCE = 12


@functools.lru_cache(maxsize=4)
def _cipher_for(secret: str) -> AESGCM:
    return AESGCM(hmac.new(secret.encode(), _SENT_SALT.encode(), hashlib.sha256).digest())


def _sent_cipher(request: Request) -> AESGCM:
    return _cipher_for(str(services(request).settings.secret_key))


def seal_sent(cipher: AESGCM, payload: dict[str, Any], *, now: float | None = None) -> str:
    """`payload` with the time sealed, encrypted: URL-safe base64 of nonce ‖ ciphertext ‖ tag."""
    nonce = random_bytes(_NONCE)
    data = json.dumps({**payload, "t": int(time.time() if now is None else now)}, separators=(",", ":"))
    sealed = cipher.encrypt(nonce, data.encode(), _SENT_SALT.encode())
    return base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")


def open_sent(cipher: AESGCM, raw: str, *, max_age: int = SENT_MAX_AGE) -> dict[str, Any] | None:
    """What `seal_sent` sealed, or None: forged, changed, under another key, or too old."""
    try:
        blob = base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4))
        data = json.loads(cipher.decrypt(blob[:_NONCE], blob[_NONCE:], _SENT_SALT.encode()))
    except (InvalidTag, ValueError, UnicodeError):  # binascii.Error is a ValueError
        return None
    sealed_at = data.get("t") if isinstance(data, dict) else None
    # A minute of grace for the clocks of several hosts; never from the future beyond that.
    if not isinstance(sealed_at, int) or not -60 <= time.time() - sealed_at <= max_age:
        return None
    return data


def _remember_sent(request: Request, response: Response, appeal: Row, values: dict[str, str]) -> None:
    """Put what was sent in the cookie of the 303 to "check your email"."""
    cipher = _sent_cipher(request)

    def sealed(carried: dict[str, str]) -> str:
        return seal_sent(cipher, {"a": appeal["id"], "v": carried})

    value = sealed(values)
    if len(value) > _SENT_LIMIT:  # a long comment: the address only
        value = sealed({"contact_email": values.get("contact_email", "")})
        # (a bot's long submission loses its mark here, and with it the resend's form: nothing to send)
    # Written out as the CSRF cookie is (petition.security): the value is URL-safe base64.
    secure = "; Secure" if services(request).settings.https else ""
    path = f"/appeals/{appeal['slug']}/check-email"  # the page and its resend; slugs are [a-z0-9-]
    response.headers.append("set-cookie", f"{SENT_COOKIE}={value}; HttpOnly; Path={path}; SameSite=Lax{secure}")


def _sent(request: Request, appeal: Row) -> dict[str, str] | None:
    """The values the cookie carries for this appeal, or None (none, expired, forged, another appeal)."""
    raw = request.cookies.get(SENT_COOKIE)
    if not raw or len(raw) > 4096:
        return None
    data = open_sent(_sent_cipher(request), raw)  # None: expired, forged, or not ours
    if data is None or data.get("a") != appeal["id"] or not isinstance(data.get("v"), dict):
        return None
    return {k: v for k, v in data["v"].items() if isinstance(k, str) and isinstance(v, str)}


async def public_appeal(request: Request) -> Row:
    appeal = await get_appeal(services(request).db, slug=request.path_params["slug"])
    if appeal is None or appeal["status"] == AppealStatus.DRAFT:
        raise HTTPException(404)
    return appeal


async def cached_public_appeal(request: Request) -> Row:
    """For reading only: the appeal as seen a few seconds ago at most (see petition.publish.cache)."""
    appeal = await appeal_by_slug(public_cache(request), services(request).db, slug=request.path_params["slug"])
    if appeal is None or appeal["status"] == AppealStatus.DRAFT:
        raise HTTPException(404)
    return appeal


async def appeal_page(
    request: Request,
    appeal: Row,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
    csrf_token: str | None = None,
) -> Response:
    db = services(request).db
    cache = public_cache(request)
    language = i18n.get_language()
    text = await appeal_text(cache, db, appeal=appeal, language=language)
    if text is None:
        raise HTTPException(404)
    if request.method != "GET":
        # The form came back with errors: switching language leads to the page, not to the POST URL.
        request.scope["state"]["language_switch_path"] = f"/appeals/{appeal['slug']}"
    form = {
        "values": values or {},
        "errors": errors or {},
        "countries": countries.choices(language),
        "organisation_types": ORGANISATION_TYPE_LABELS,
        "honeypot_field": HONEYPOT_FIELD,
        **({"csrf_token": csrf_token} if csrf_token is not None else {}),
    }
    if errors:
        # The form on its own, its errors first: on a phone they are in view, not screens down.
        return render(
            request, "appeals/endorse.html", {"appeal": appeal, "text": text, **form}, status=status, private=True
        )
    counts = await listed_counts(cache, db, appeal=appeal)
    return render(
        request,
        "appeals/show.html",
        {
            "appeal": appeal,
            "text": text,
            "counts": counts,
            "chart": country_chart(counts, language),
            "newest": await newest_named(cache, db, appeal=appeal),
            "deliveries": await appeal_deliveries(cache, db, appeal=appeal),
            "share": share_meta(
                settings=services(request).settings, appeal=appeal, text=text, language=language, total=counts.total
            ),
            **form,
        },
        status=status,
        private=values is not None,
    )


async def home(request: Request) -> Response:
    db = services(request).db
    appeals = await list_appeals(db)
    if len(appeals) == 1:
        return RedirectResponse(page_url(request, f"/appeals/{appeals[0]['slug']}"), status_code=302)
    titles = await current_titles(db, language=i18n.get_language())
    return render(request, "appeals/index.html", {"appeals": appeals, "titles": titles})


#: The appeal page, served from the page cache (petition.publish.pages): one per language.
APPEAL_PAGE = CachedRoute("/appeals/{slug}", params=frozenset({"lang"}), variant=lambda query: ())


async def show(request: Request) -> Response:
    appeal = await cached_public_appeal(request)
    return await cached_page(
        request,
        route=APPEAL_PAGE,
        appeal_id=appeal["id"],
        build=lambda token: appeal_page(request, appeal, csrf_token=token),
    )


def _intake_closed(request: Request, appeal: Row) -> Response | None:
    if appeal["status"] == AppealStatus.PAUSED or services(request).settings.intake_paused:
        response = render(request, "appeals/paused.html", {"appeal": appeal}, status=503)
        response.headers["Retry-After"] = "3600"
        return response
    if appeal["status"] == AppealStatus.CLOSED:
        return render(request, "appeals/closed.html", {"appeal": appeal}, status=410)
    return None


async def endorse(request: Request) -> Response:
    svc = services(request)
    # The appeal and its text as seen a few seconds ago at most: organiser changes in this
    # process show at once, in other processes within the cache's lifetime (petition.publish.cache).
    appeal = await cached_public_appeal(request)
    form = await read_form(request)
    closed = _intake_closed(request, appeal)
    if closed is not None:
        return closed
    check_email = page_url(request, f"/appeals/{appeal['slug']}/check-email")
    parsed = parse_endorsement_form(form)
    if parsed.honeypot_filled:
        # A bot: the same answer as a person gets, and nothing stored.
        bot = RedirectResponse(check_email, status_code=303)
        _remember_sent(request, bot, appeal, {**parsed.values, BOT_MARK: "1"})  # its resend sends nothing
        return bot
    if not parsed.ok:
        return await appeal_page(request, appeal, values=parsed.values, errors=parsed.errors, status=400)
    language = i18n.get_language()
    text = await appeal_text(public_cache(request), svc.db, appeal=appeal, language=language)
    if text is None:
        raise HTTPException(404)
    outcome = await svc.intake.take(
        appeal=appeal, text=text, data=parsed.data, language=language, ip=client_ip(request)
    )
    if outcome is SubmitOutcome.CLOSED:
        # Paused or closed (by another process) since the cached copy was read: nothing was stored.
        svc.lifecycle.public_changed()
        fresh = await public_appeal(request)
        closed = _intake_closed(request, fresh)
        if closed is not None:
            return closed
        # Open again already: take it as it is now.
        await svc.intake.take(appeal=fresh, text=text, data=parsed.data, language=language, ip=client_ip(request))
    # Whatever became of it (new, known, capped, held), the same answer and the same cookie.
    response = RedirectResponse(check_email, status_code=303)
    _remember_sent(request, response, appeal, parsed.values)
    return response


#: "Check your email" as cached (`check_email`): the same for every signer of a language but for
#: the address (and the token in its resend form).
CHECK_EMAIL_PAGE = CachedRoute(
    "/appeals/{slug}/check-email", params=frozenset({"lang", "resent"}), variant=lambda query: query.get("resent")
)
#: Where the address goes in a cached copy: random per process, so no address can contain it.
_ADDRESS_PLACEHOLDER = "address-" + secrets.token_urlsafe(24)
_ADDRESS_MARK = _ADDRESS_PLACEHOLDER.encode("ascii")


async def check_email(request: Request) -> Response:
    """Every signer's next request after the form. The appeal comes from the public cache, as
    the form's route reads it; the page is rendered once per language and kind of
    visit (address or none, whether it may be sent again, just sent again), and each visitor
    gets a copy with their address (escaped) and token put in."""
    appeal = await cached_public_appeal(request)
    sent = _sent(request, appeal)
    address = sent.get("contact_email") if sent else None
    # A resend submits the same values again: only when the cookie holds all of them.
    can_resend = bool(sent) and appeal["status"] == AppealStatus.OPEN and parse_endorsement_form(sent).ok
    resent = request.query_params.get("resent")

    async def build(csrf_token: str | None) -> Response:
        # A token means a copy to store (`cached_page`): the address's place is marked in it.
        context: dict[str, Any] = {
            "appeal": appeal,
            "address": (_ADDRESS_PLACEHOLDER if csrf_token is not None else address) if address else None,
            "can_resend": can_resend,
            "resent": resent == "1",
            # Only where the form is: a page without it stays public for caches (render).
            **({"csrf_token": csrf_token} if csrf_token is not None and can_resend else {}),
        }
        return render(request, "appeals/check_email.html", context, private=sent is not None)

    if resent not in (None, "1"):
        # The language links repeat the query as it came: not one copy per spelling of it.
        return await build(None)
    return await cached_page(
        request,
        route=CHECK_EMAIL_PAGE,
        appeal_id=appeal["id"],
        build=build,
        extra=(sent is not None, bool(address), can_resend),
        fill=(lambda body: body.replace(_ADDRESS_MARK, str(escape(address)).encode())) if address else None,
    )


async def resend(request: Request) -> Response:
    """Send the confirmation email again: the cookie's values submitted again, through the same
    intake, rate limits and mailbox cap as the form (a known address gets its own email, a capped
    one none), and the same answer whatever happened."""
    svc = services(request)
    appeal = await cached_public_appeal(request)
    await read_form(request)  # the CSRF check
    closed = _intake_closed(request, appeal)
    if closed is not None:
        return closed
    done = RedirectResponse(page_url(request, f"/appeals/{appeal['slug']}/check-email", resent="1"), status_code=303)
    sent = _sent(request, appeal)
    if sent is None:
        return done
    parsed = parse_endorsement_form(sent)
    if not parsed.ok or sent.get(BOT_MARK):
        return done
    language = i18n.get_language()
    text = await appeal_text(public_cache(request), svc.db, appeal=appeal, language=language)
    if text is None:
        raise HTTPException(404)
    await svc.intake.take(appeal=appeal, text=text, data=parsed.data, language=language, ip=client_ip(request))
    return done


routes = [
    Route("/", home, name="home"),
    Route(APPEAL_PAGE.path, show, name="appeal"),
    Route("/appeals/{slug}/endorse", endorse, methods=["POST"], name="endorse"),
    Route("/appeals/{slug}/check-email", check_email, name="check_email"),
    Route("/appeals/{slug}/check-email/resend", resend, methods=["POST"], name="resend"),
]
