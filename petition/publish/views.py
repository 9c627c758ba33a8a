"""Public lists, open data (JSON, CSV), the OpenAPI description and the health check."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from petition import countries, i18n
from petition.appeals.queries import current_titles, list_appeals
from petition.appeals.states import AppealStatus
from petition.db import Row
from petition.endorsements.forms import ORGANISATION_TYPE_LABELS
from petition.endorsements.states import ORGANISATION_TYPES
from petition.publish.cache import public_cache
from petition.publish.cached import appeal_by_slug, appeal_text, listed_counts
from petition.publish.http import PublicJSONResponse, revalidatable
from petition.publish.openapi import openapi_document
from petition.publish.pages import cached_page
from petition.publish.queries import count_named, list_named, named_total
from petition.web import render, services

API_PAGE_SIZE = 100
HTML_PAGE_SIZE = 50
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
#: Query parameters of the signatory list that may be served from the page cache (not searches).
LIST_PAGE_PARAMS = frozenset({"lang", "page", "country", "type"})


async def _appeal_or_404(request: Request) -> Row:
    appeal = await appeal_by_slug(public_cache(request), services(request).db, slug=request.path_params["slug"])
    if appeal is None or appeal["status"] == AppealStatus.DRAFT:
        raise HTTPException(404, "no such appeal")
    return appeal


def _page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    try:
        page = int(raw)
    except ValueError as exc:
        raise HTTPException(400, "page must be a positive whole number") from exc
    if page < 1 or page > 1_000_000:
        raise HTTPException(400, "page must be a positive whole number")
    return page


def _country_filter(request: Request) -> str | None:
    country = request.query_params.get("country", "").strip().upper() or None
    if country is not None and not countries.is_country(country):
        raise HTTPException(400, "country must be an ISO 3166-1 alpha-2 code")
    return country


def _type_filter(request: Request) -> str | None:
    kind = request.query_params.get("type", "").strip() or None
    if kind is not None and kind not in ORGANISATION_TYPES:
        raise HTTPException(400, "unknown organisation type")
    return kind


def public_item(row: Row) -> dict[str, Any]:
    return {
        "organisation_name": row["organisation_name"],
        "country": row["country"],
        "city": row["city"],
        "organisation_type": row["organisation_type"],
        "website": row["website"],
        "endorsed_at": row["listed_at"].isoformat().replace("+00:00", "Z") if row["listed_at"] else None,
    }


async def signatories(request: Request) -> Response:
    appeal = await _appeal_or_404(request)
    country = _country_filter(request)
    kind = _type_filter(request)
    search = request.query_params.get("q", "").strip()[:100] or None
    page = _page_number(request)

    async def build(csrf_token: str | None) -> Response:
        db = services(request).db
        cache = public_cache(request)
        language = i18n.get_language()
        counts = await listed_counts(cache, db, appeal=appeal)
        if kind or search:
            total = await count_named(db, appeal=appeal, country=country, organisation_type=kind, search=search)
        else:
            total = named_total(counts, country=country)
        pages = max(1, -(-total // HTML_PAGE_SIZE))
        rows: Sequence[Row] = []
        if page <= pages:
            rows = await list_named(db, appeal=appeal, country=country, organisation_type=kind, search=search,
                                    offset=(page - 1) * HTML_PAGE_SIZE, limit=HTML_PAGE_SIZE,
                                    newest_first=False)
        groups: dict[str, list[Row]] = {}
        for row in rows:
            groups.setdefault(row["country"], []).append(row)
        ordered_groups = sorted(groups.items(), key=lambda kv: countries.name(kv[0], language))
        # Counted, never named: per country where there are enough of them, else "other countries".
        anonymous: list[tuple[str, int]] = []
        unattributed = 0
        if not kind and not search:
            anonymous = [(code, n) for code, n in counts.anonymous_by_country.items() if country in (None, code)]
            unattributed = counts.unattributed if country is None else 0
        return render(request, "publish/signatories.html", {
            "appeal": appeal,
            "text": await appeal_text(cache, db, appeal=appeal, language=language),
            "groups": ordered_groups,
            "counts": counts,
            "anonymous": anonymous,
            "unattributed": unattributed,
            "total": total,
            "page": page,
            "pages": pages,
            "filters": {"country": country or "", "type": kind or "", "q": search or ""},
            "countries": [(code, name) for code, name in countries.choices(language)
                          if code in counts.by_country],
            "organisation_types": ORGANISATION_TYPE_LABELS,
            **({"csrf_token": csrf_token} if csrf_token is not None else {}),
        })

    response = await cached_page(request, appeal_id=appeal["id"], params=LIST_PAGE_PARAMS, build=build)
    return revalidatable(request, response)


async def api_appeals(request: Request) -> Response:
    db = services(request).db
    titles = await current_titles(db, language=i18n.get_language())
    response = PublicJSONResponse([
        {"slug": a["slug"], "title": titles.get(a["id"], a["slug"]), "status": a["status"]}
        for a in await list_appeals(db)
    ], headers={"Vary": "Accept-Language"})
    return revalidatable(request, response)


async def api_appeal(request: Request) -> Response:
    appeal = await _appeal_or_404(request)
    db = services(request).db
    cache = public_cache(request)
    text = await appeal_text(cache, db, appeal=appeal, language=i18n.get_language())
    counts = await listed_counts(cache, db, appeal=appeal)
    response = PublicJSONResponse({
        "slug": appeal["slug"],
        "title": text["title"] if text else appeal["slug"],
        "status": appeal["status"],
        "moderation": appeal["moderation"],
        "counts": {"total": counts.total, "by_country": counts.by_country, "unattributed": counts.unattributed},
    }, headers={"Vary": "Accept-Language"})
    return revalidatable(request, response)


async def api_endorsements(request: Request) -> Response:
    appeal = await _appeal_or_404(request)
    country = _country_filter(request)
    kind = _type_filter(request)
    page = _page_number(request)
    rows = await list_named(services(request).db, appeal=appeal, country=country, organisation_type=kind,
                            offset=(page - 1) * API_PAGE_SIZE, limit=API_PAGE_SIZE + 1)
    next_url = None
    if len(rows) > API_PAGE_SIZE:
        params = dict(request.query_params)
        params["page"] = str(page + 1)
        next_url = str(request.url.include_query_params(**params))
    response = PublicJSONResponse({"items": [public_item(r) for r in rows[:API_PAGE_SIZE]], "next": next_url})
    return revalidatable(request, response)


def _csv_cell(value: object) -> str:
    text = "" if value is None else str(value)
    # Spreadsheets run cells that start like formulas; a leading ' makes them text.
    return "'" + text if text.startswith(CSV_FORMULA_PREFIXES) else text


async def endorsements_csv(request: Request) -> Response:
    appeal = await _appeal_or_404(request)
    country = _country_filter(request)
    kind = _type_filter(request)
    rows = await list_named(services(request).db, appeal=appeal, country=country, organisation_type=kind,
                            offset=0, limit=10_000_000, newest_first=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    columns = ["organisation_name", "country", "city", "organisation_type", "website", "endorsed_at"]
    writer.writerow(columns)
    for row in rows:
        item = public_item(row)
        writer.writerow([_csv_cell(item[c]) for c in columns])
    filename = f"{appeal['slug']}-endorsements{'-' + country if country else ''}.csv"
    response = Response(buffer.getvalue(), media_type="text/csv; charset=utf-8; header=present",
                        headers={"Content-Disposition": f'attachment; filename="{filename}"'})
    return revalidatable(request, response)


async def openapi(request: Request) -> Response:
    return revalidatable(request, PublicJSONResponse(openapi_document(services(request).settings.base_url)),
                         max_age=3600)


async def healthz(request: Request) -> Response:
    if await services(request).db.ping():
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable", "database": "not answering"}, status_code=503)


routes = [
    Route("/appeals/{slug}/signatories", signatories, name="signatories"),
    Route("/appeals/{slug}/endorsements.csv", endorsements_csv, name="endorsements_csv"),
    Route("/api/appeals", api_appeals, name="api_appeals"),
    Route("/api/appeals/{slug}", api_appeal, name="api_appeal"),
    Route("/api/appeals/{slug}/endorsements", api_endorsements, name="api_endorsements"),
    Route("/api/openapi.json", openapi, name="openapi"),
    Route("/healthz", healthz, name="healthz"),
]
