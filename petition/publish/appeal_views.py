"""The public appeal pages: the list at /, an appeal with its form, the endorse POST, "check your email".

The POST lives next to the page because a form with errors comes back as that page;
what it submits is taken in by the endorsements domain (`endorsements.forms` validates,
`endorsements.intake` records and queues the email).
"""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from petition import countries, i18n
from petition.appeals.queries import current_text, current_titles, get_appeal, list_appeals
from petition.appeals.states import AppealStatus
from petition.db import Row
from petition.endorsements.forms import HONEYPOT_FIELD, parse_endorsement_form
from petition.endorsements.lifecycle import SubmitOutcome
from petition.endorsements.vocabulary import ORGANISATION_TYPE_LABELS
from petition.publish.cache import public_cache
from petition.publish.cached import appeal_by_slug, appeal_text, listed_counts, newest_named
from petition.publish.chart import country_chart
from petition.publish.pages import CachedRoute, cached_page
from petition.templating import page_url
from petition.web import client_ip, read_form, render, services


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
        return RedirectResponse(check_email, status_code=303)
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
    return RedirectResponse(check_email, status_code=303)


async def check_email(request: Request) -> Response:
    appeal = await public_appeal(request)
    context: dict[str, Any] = {
        "appeal": appeal,
        "text": await current_text(services(request).db, appeal=appeal, language=i18n.get_language()),
    }
    return render(request, "appeals/check_email.html", context)


routes = [
    Route("/", home, name="home"),
    Route(APPEAL_PAGE.path, show, name="appeal"),
    Route("/appeals/{slug}/endorse", endorse, methods=["POST"], name="endorse"),
    Route("/appeals/{slug}/check-email", check_email, name="check_email"),
]
