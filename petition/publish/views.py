"""Public lists, open data (JSON, CSV), the OpenAPI description and the health check."""

from __future__ import annotations

import asyncio
import csv
import io
import unicodedata
from collections.abc import AsyncIterator, Iterable, Sequence
from typing import Any
from urllib.parse import quote, urlencode

from starlette.datastructures import QueryParams
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from petition import countries, i18n
from petition.abuse.limits import EXPORT_WINDOW, export_allowed
from petition.appeals.queries import current_titles, list_appeals
from petition.appeals.states import AppealStatus
from petition.collation import sort_key
from petition.db import Row
from petition.endorsements.states import ORGANISATION_TYPES
from petition.endorsements.vocabulary import ORGANISATION_TYPE_LABELS
from petition.identity.countersign import is_countersigned
from petition.identity.proofs import SHOWN, ProofState
from petition.publish.cache import public_cache
from petition.publish.cached import appeal_by_slug, appeal_deliveries, appeal_text, list_version, listed_counts
from petition.publish.http import Download, PublicJSONResponse, etag_of, not_modified, revalidatable, tagged
from petition.publish.openapi import openapi_document
from petition.publish.pages import CachedRoute, cached_page
from petition.publish.queries import (
    Counts,
    ListVersion,
    aware_utc,
    count_named,
    list_named,
    named_total,
    stream_named,
)
from petition.publish.share import share_meta
from petition.settings import Settings
from petition.web import client_ip, render, services

API_PAGE_SIZE = 100
HTML_PAGE_SIZE = 50
#: Cells a spreadsheet would run as a formula (OWASP, CSV injection), checked after NFKC folding, which
#: turns the full-width and small forms (＝ ＋ － ＠, ﹦ ﹢ ﹣ ﹫) into these.
CSV_FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
_FORMULA_FIRST = frozenset(CSV_FORMULA_PREFIXES)
CSV_COLUMNS = (
    "organisation_name",
    "country",
    "city",
    "organisation_type",
    "website",
    "endorsed_at",
    # After the contract's columns: a proved domain (petition.identity).
    "domain_verified",
    "domain_verified_at",
    "domain_proof",
    # Then the EU Transparency Register number an organisation gave.
    "transparency_register",
    # Then whether a second officer countersigned (petition.identity.countersign): true or false.
    "confirmed_by_two_officers",
)
#: `?format=spreadsheet`, the CSV the signatory list links to for people: a UTF-8 byte-order mark
#: (without it spreadsheets on Windows read Cyrillic as Latin-1) and, after the columns above,
#: the country's and the type's names in the reader's language. The plain CSV stays as machines read it.
SPREADSHEET_COLUMNS = (*CSV_COLUMNS, "country_name", "organisation_type_name")
UTF8_BOM = b"\xef\xbb\xbf"
#: A CSV of at most this many rows costs about what a few JSON pages do: its downloads are not
#: counted against RATE_LIMIT_EXPORT (which would cost a write each).
UNLIMITED_DOWNLOAD_ROWS = 1000
#: Part of every open-data ETag: a change of what the bytes look like must change the tags.
OPEN_DATA_FORMAT = 4
#: Rows encoded between two turns of the event loop while a CSV streams (a slice is well under a
#: millisecond of work, so /healthz and the pages wait for little however many downloads run).
ENCODE_SLICE = 50
#: Query parameters of the signatory list that may be served from the page cache (not searches).
LIST_PAGE_PARAMS = frozenset({"lang", "page", "country", "type"})


async def _appeal_or_404(request: Request) -> Row:
    appeal = await appeal_by_slug(public_cache(request), services(request).db, slug=request.path_params["slug"])
    if appeal is None or appeal["status"] == AppealStatus.DRAFT:
        raise HTTPException(404, "no such appeal")
    return appeal


def _page_number(query: QueryParams) -> int:
    raw = query.get("page", "1")
    try:
        page = int(raw)
    except ValueError as exc:
        raise HTTPException(400, "page must be a positive whole number") from exc
    if page < 1 or page > 1_000_000:
        raise HTTPException(400, "page must be a positive whole number")
    return page


def _country_filter(query: QueryParams) -> str | None:
    country = query.get("country", "").strip().upper() or None
    if country is not None and not countries.is_country(country):
        raise HTTPException(400, "country must be an ISO 3166-1 alpha-2 code")
    return country


def _type_filter(query: QueryParams) -> str | None:
    kind = query.get("type", "").strip() or None
    if kind is not None and kind not in ORGANISATION_TYPES:
        raise HTTPException(400, "unknown organisation type")
    return kind


def page_numbers(page: int, pages: int, *, around: int = 2) -> list[int | None]:
    """The pages a pager links to: the first, the last, and `around` either side of `page`;
    None where pages are left out (shown as "…")."""
    shown = sorted({1, pages, *range(max(1, page - around), min(pages, page + around) + 1)})
    numbers: list[int | None] = []
    for number in shown:
        if numbers and number - (numbers[-1] or 0) > 1:
            numbers.append(None if number - (numbers[-1] or 0) > 2 else number - 1)
        numbers.append(number)
    return numbers


def country_options(counts: Counts, language: str) -> list[tuple[str, str, int]]:
    """The country filter's options: (code, name, organisations), by name as the reader sorts,
    whatever the count (a label's "(29)" never sorts before "(3)")."""
    options = [(code, countries.name(code, language), n) for code, n in counts.by_country.items()]
    return sorted(options, key=lambda option: (sort_key(option[1], language), option[0]))


def public_item(row: Row) -> dict[str, Any]:
    listed_at = row["listed_at"]
    return {
        "organisation_name": row["organisation_name"],
        "country": row["country"],
        "city": row["city"],
        "organisation_type": row["organisation_type"],
        "website": row["website"],
        # UTC with its "Z" on both backends (PostgreSQL's came back naive, and went out without one).
        "endorsed_at": aware_utc(listed_at).isoformat().replace("+00:00", "Z") if listed_at else None,
        **domain_fields(row),
        # As the organisation gave it (petition.endorsements.forms), or null; never looked up.
        "transparency_register": row["transparency_register"],
        # A second officer countersigned the public record as it is (petition.identity.countersign).
        "confirmed_by_two_officers": is_countersigned(row),
    }


def domain_fields(row: Row) -> dict[str, Any]:
    """`domain_verified` (the proved domain, or null), when, and the proof's state: `verified`,
    `lapsed` (proved once, no longer found: the domain is then null) or null (never proved)."""
    state = row["proof_state"]
    if state not in SHOWN:
        return {"domain_verified": None, "domain_verified_at": None, "domain_proof": None}
    verified = state == ProofState.VERIFIED
    at = row["proof_verified_at"]
    return {
        "domain_verified": row["proof_domain"] if verified else None,
        "domain_verified_at": aware_utc(at).isoformat().replace("+00:00", "Z") if verified and at else None,
        "domain_proof": state,
    }


def _list_filters(query: QueryParams) -> tuple[str | None, str | None, int]:
    """The signatory list's country, type and page: what tells its cached pages apart."""
    return _country_filter(query), _type_filter(query), _page_number(query)


#: The signatory list, served from the page cache (petition.publish.pages) unless searched.
SIGNATORY_LIST = CachedRoute(
    "/appeals/{slug}/signatories", params=LIST_PAGE_PARAMS, variant=_list_filters, revalidate=True
)


async def signatories(request: Request) -> Response:
    appeal = await _appeal_or_404(request)
    country, kind, page = _list_filters(request.query_params)
    search = request.query_params.get("q", "").strip()[:100] or None

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
            rows = await list_named(
                db,
                appeal=appeal,
                country=country,
                organisation_type=kind,
                search=search,
                offset=(page - 1) * HTML_PAGE_SIZE,
                limit=HTML_PAGE_SIZE,
                newest_first=False,
            )
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
        text = await appeal_text(cache, db, appeal=appeal, language=language)
        settings = services(request).settings
        return render(
            request,
            "publish/signatories.html",
            {
                "appeal": appeal,
                "text": text,
                "share": share_meta(settings=settings, appeal=appeal, text=text, language=language, total=counts.total)
                if text
                else None,
                "groups": ordered_groups,
                "countersigned": is_countersigned,
                "counts": counts,
                "anonymous": anonymous,
                "unattributed": unattributed,
                "total": total,
                "page": page,
                "pages": pages,
                "filters": {"country": country or "", "type": kind or "", "q": search or ""},
                "countries": country_options(counts, language),
                "page_numbers": page_numbers(min(page, pages), pages),
                "organisation_types": ORGANISATION_TYPE_LABELS,
                **({"csrf_token": csrf_token} if csrf_token is not None else {}),
            },
        )

    response = await cached_page(request, route=SIGNATORY_LIST, appeal_id=appeal["id"], build=build)
    return revalidatable(request, response)


async def api_appeals(request: Request) -> Response:
    db = services(request).db
    titles = await current_titles(db, language=i18n.get_language())
    response = PublicJSONResponse(
        [
            {"slug": a["slug"], "title": titles.get(a["id"], a["slug"]), "status": a["status"]}
            for a in await list_appeals(db)
        ],
        headers={"Vary": "Accept-Language"},
    )
    return revalidatable(request, response)


#: The counts JSON: what a live counter polls, served from the page cache as the pages are.
API_APPEAL = CachedRoute("/api/appeals/{slug}", params=frozenset({"lang"}), variant=lambda query: (), revalidate=True)


async def api_appeal(request: Request) -> Response:
    appeal = await _appeal_or_404(request)

    async def build(_csrf_token: str | None) -> Response:
        db = services(request).db
        cache = public_cache(request)
        text = await appeal_text(cache, db, appeal=appeal, language=i18n.get_language())
        counts = await listed_counts(cache, db, appeal=appeal)
        return PublicJSONResponse(
            {
                "slug": appeal["slug"],
                "title": text["title"] if text else appeal["slug"],
                "status": appeal["status"],
                "moderation": appeal["moderation"],
                "counts": {"total": counts.total, "by_country": counts.by_country, "unattributed": counts.unattributed},
            },
            headers={"Vary": "Accept-Language"},
        )

    response = await cached_page(request, route=API_APPEAL, appeal_id=appeal["id"], build=build)
    return revalidatable(request, response)


async def api_deliveries(request: Request) -> Response:
    """Per country: when its signed dossier was delivered, to how many offices, and the answers."""
    appeal = await _appeal_or_404(request)
    found = await appeal_deliveries(public_cache(request), services(request).db, appeal=appeal)
    response = PublicJSONResponse(
        [
            {
                "country": d.country,
                "delivered_at": aware_utc(d.delivered_at).isoformat().replace("+00:00", "Z"),
                "offices": d.offices,
                "dossier_sha256": d.pdf_sha256,
                "answers": [
                    {
                        "author": a.author,
                        "answered_on": a.answered_on.isoformat(),
                        "summary": a.summary,
                        "document_url": a.document_url or None,
                    }
                    for a in d.answers
                ],
            }
            for d in found
        ]
    )
    return revalidatable(request, response)


async def _open_data_version(
    request: Request, appeal: Row, *parts: object, country: str | None, kind: str | None
) -> tuple[str, ListVersion]:
    """The ETag of a named list as JSON or CSV (and the list's version it is made from): no row is read."""
    version = await list_version(
        public_cache(request), services(request).db, appeal=appeal, country=country, organisation_type=kind
    )
    return etag_of(OPEN_DATA_FORMAT, appeal["id"], country, kind, version, *parts), version


def _api_page_url(settings: Settings, appeal: Row, *, country: str | None, kind: str | None, page: int) -> str:
    """A page of the JSON list under BASE_URL: a public cache keeps the answer for everyone,
    whatever Host header the request that filled it carried."""
    query = urlencode(
        {name: value for name, value in (("country", country), ("type", kind), ("page", page)) if value is not None}
    )
    return settings.url_for_path(f"/api/appeals/{quote(appeal['slug'])}/endorsements?{query}")


async def api_endorsements(request: Request) -> Response:
    appeal = await _appeal_or_404(request)
    country = _country_filter(request.query_params)
    kind = _type_filter(request.query_params)
    page = _page_number(request.query_params)
    settings = services(request).settings
    etag, _version = await _open_data_version(
        request, appeal, "json", page, settings.base_url, country=country, kind=kind
    )
    if (unchanged := not_modified(request, etag)) is not None:
        return unchanged
    rows = await list_named(
        services(request).db,
        appeal=appeal,
        country=country,
        organisation_type=kind,
        offset=(page - 1) * API_PAGE_SIZE,
        limit=API_PAGE_SIZE + 1,
    )
    next_url = None
    if len(rows) > API_PAGE_SIZE:
        next_url = _api_page_url(settings, appeal, country=country, kind=kind, page=page + 1)
    return tagged(PublicJSONResponse({"items": [public_item(r) for r in rows[:API_PAGE_SIZE]], "next": next_url}), etag)


def _looks_like_formula(text: str) -> bool:
    first = text[:1]
    if first in _FORMULA_FIRST:
        return True
    if first.isascii() and not first.isspace():
        return False  # most cells (and empty ones): folding cannot turn a letter or digit into a prefix
    # Only the start matters. NFKC folds the look-alikes (＝ to =), and a spreadsheet that
    # trims leading spaces on import would still see the = behind them.
    folded = unicodedata.normalize("NFKC", text[:32])
    return any(start.startswith(CSV_FORMULA_PREFIXES) for start in (folded, folded.lstrip(), text.lstrip()))


def _csv_cell(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"  # as the JSON says it
    text = "" if value is None else str(value)
    # Spreadsheets run cells that start like formulas; a leading ' makes them text.
    return "'" + text if _looks_like_formula(text) else text


def _csv_records(rows: Iterable[Sequence[object]]) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerows(rows)
    return buffer.getvalue().encode("utf-8")


def _named_item(row: Row, language: str) -> dict[str, Any]:
    item = public_item(row)
    item["country_name"] = countries.name(row["country"], language)
    label = ORGANISATION_TYPE_LABELS.get(row["organisation_type"])
    item["organisation_type_name"] = str(label) if label is not None else row["organisation_type"]
    return item


async def _csv_body(
    request: Request, appeal: Row, *, country: str | None, kind: str | None, names_in: str | None = None
) -> AsyncIterator[bytes]:
    """The header, then one chunk of records per query: never the whole list in memory.

    `names_in`, a language: the spreadsheet's form (a byte-order mark, and the names in that language).
    """
    columns = CSV_COLUMNS if names_in is None else SPREADSHEET_COLUMNS
    header = _csv_records([columns])
    yield header if names_in is None else UTF8_BOM + header
    async for rows in stream_named(services(request).db, appeal=appeal, country=country, organisation_type=kind):
        parts = []
        for first in range(0, len(rows), ENCODE_SLICE):
            chunk = rows[first : first + ENCODE_SLICE]
            items: Iterable[dict[str, Any]]
            if names_in is None:
                items = (public_item(row) for row in chunk)
            else:
                with i18n.language(names_in):
                    items = [_named_item(row, names_in) for row in chunk]
            parts.append(_csv_records([_csv_cell(item[c]) for c in columns] for item in items))
            await asyncio.sleep(0)  # other requests run between slices, whatever the network's pace
        yield b"".join(parts)


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield b""  # pragma: no cover - makes this an async generator


async def endorsements_csv(request: Request) -> Response:
    appeal = await _appeal_or_404(request)
    country = _country_filter(request.query_params)
    kind = _type_filter(request.query_params)
    form = request.query_params.get("format", "")
    if form not in ("", "spreadsheet"):
        raise HTTPException(400, "format must be spreadsheet, or left out")
    names_in = i18n.get_language() if form else None
    etag, version = await _open_data_version(
        request, appeal, *(("csv",) if names_in is None else ("csv", names_in)), country=country, kind=kind
    )
    if (unchanged := not_modified(request, etag)) is not None:
        return unchanged  # a revalidation: no row read, no download counted
    filename = f"{appeal['slug']}-endorsements{'-' + country if country else ''}.csv"
    headers = {"Content-Disposition": f'attachment; filename="{filename}"'}
    if names_in is not None:
        headers["Vary"] = "Accept-Language"
    media_type = "text/csv; charset=utf-8; header=present"
    if request.method == "HEAD":
        return tagged(Download(_nothing(), headers=headers, media_type=media_type), etag)
    svc = services(request)
    large = version.count > UNLIMITED_DOWNLOAD_ROWS
    if large and not await export_allowed(svc.db, svc.settings, ip=client_ip(request)):
        return PlainTextResponse(
            "Too many downloads of this list from your address: please wait a minute. "
            "A client that sends If-None-Match with the ETag it holds is answered 304 without limit.\n",
            status_code=429,
            headers={"Retry-After": str(int(EXPORT_WINDOW)), "Cache-Control": "no-store"},
        )
    return tagged(
        Download(
            _csv_body(request, appeal, country=country, kind=kind, names_in=names_in),
            headers=headers,
            media_type=media_type,
        ),
        etag,
    )


async def openapi(request: Request) -> Response:
    return revalidatable(
        request, PublicJSONResponse(openapi_document(services(request).settings.base_url)), max_age=3600
    )


async def healthz(request: Request) -> Response:
    if await services(request).db.ping():
        return JSONResponse({"status": "ok"})
    return JSONResponse({"status": "unavailable", "database": "not answering"}, status_code=503)


routes = [
    Route(SIGNATORY_LIST.path, signatories, name="signatories"),
    Route("/appeals/{slug}/endorsements.csv", endorsements_csv, name="endorsements_csv"),
    Route("/api/appeals", api_appeals, name="api_appeals"),
    Route("/api/appeals/{slug}", api_appeal, name="api_appeal"),
    Route("/api/appeals/{slug}/endorsements", api_endorsements, name="api_endorsements"),
    Route("/api/appeals/{slug}/deliveries", api_deliveries, name="api_deliveries"),
    Route("/api/openapi.json", openapi, name="openapi"),
    Route("/healthz", healthz, name="healthz"),
]
