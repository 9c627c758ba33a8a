"""Moderation pages: the queue, search, one endorsement, decisions (single and bulk), corrections."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from urllib.parse import urlencode

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from petition import countries
from petition.appeals.queries import list_appeals
from petition.endorsements.lifecycle import MAX_BULK, Event, may
from petition.endorsements.states import HOLD_LABELS, EndorsementState
from petition.endorsements.vocabulary import ORGANISATION_TYPE_LABELS
from petition.i18n import get_language, ngettext
from petition.i18n import gettext as _
from petition.identity.countersign import is_countersigned
from petition.identity.domains import registrable_domain
from petition.organisers.auth import admin_route, organiser
from petition.organisers.moderation import (
    DECISIONS,
    DOMAIN_FILTERS,
    EDITABLE_FIELDS,
    OFFICER_FILTERS,
    Filters,
    correct_endorsement,
    count_endorsements,
    find_endorsements,
    get_for_moderation,
    hints_for,
)
from petition.organisers.pages import redirect, render
from petition.organisers.params import optional_id, page_number, text
from petition.organisers.roles import Role
from petition.schema import utcnow
from petition.web import read_form, services

S = EndorsementState
_RESULT_KEYS = {Event.APPROVE: "approved", Event.REJECT: "rejected", Event.RELEASE: "released"}
PAGE_SIZES = (50, 100, 500, 1000)
NEWEST = "newest"
OLDEST = "oldest"


def _seen_at(form: Mapping[str, object]) -> dt.datetime | None:
    """When the organiser's page was made (a hidden field): decisions skip what changed since."""
    raw = form.get("seen_at")
    if not isinstance(raw, str) or not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
    except ValueError:
        raise HTTPException(400, "seen_at") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _page_size(request: Request) -> int:
    raw = request.query_params.get("per_page", "")
    return int(raw) if raw in {str(n) for n in PAGE_SIZES} else PAGE_SIZES[1]


def _sort(request: Request) -> str:
    """`newest` (the default: what arrived last, spam among it, is on the first page) or `oldest`."""
    raw = request.query_params.get("sort", "")
    if raw not in ("", NEWEST, OLDEST):
        raise HTTPException(400, "unknown sort")
    return raw or NEWEST


def _filters(request: Request, *, queue: bool) -> Filters:
    params = request.query_params
    state = text(params, "state", 20) or None
    if state is not None and state not in set(S):
        raise HTTPException(400, "unknown state")
    country = text(params, "country", 2).upper() or None
    if country is not None and not countries.is_country(country):
        raise HTTPException(400, "unknown country")
    domain = text(params, "domain", 10) or None
    if domain is not None and domain not in DOMAIN_FILTERS:
        raise HTTPException(400, "unknown domain proof filter")
    officers = text(params, "officers", 10) or None
    if officers is not None and officers not in OFFICER_FILTERS:
        raise HTTPException(400, "unknown countersignature filter")
    return Filters(
        appeal_id=optional_id(params, "appeal"),
        state=state,
        country=country,
        search=text(params, "q", 100) or None,
        queue=queue,
        domain=domain,
        officers=officers,
    )


def _done_message(request: Request) -> str | None:
    params = request.query_params
    try:
        approved = int(params.get("approved", ""))
    except ValueError:
        approved = -1
    try:
        rejected = int(params.get("rejected", ""))
    except ValueError:
        rejected = -1
    try:
        released = int(params.get("released", ""))
    except ValueError:
        released = -1
    if released >= 0:
        return ngettext("%(num)s endorsement released.", "%(num)s endorsements released.", released)
    if approved >= 0:
        return ngettext("%(num)s endorsement approved.", "%(num)s endorsements approved.", approved)
    if rejected >= 0:
        return ngettext("%(num)s endorsement rejected.", "%(num)s endorsements rejected.", rejected)
    if params.get("saved") == "1":
        return _("The corrections were saved.")
    if params.get("saved") == "0":
        return _("Nothing was changed.")
    return None


async def _list(request: Request, *, queue: bool) -> Response:
    db = services(request).db
    filters = _filters(request, queue=queue)
    page = page_number(request.query_params)
    per_page = _page_size(request)
    sort = _sort(request)
    total = await count_endorsements(db, filters=filters)
    rows = await find_endorsements(
        db, filters=filters, offset=(page - 1) * per_page, limit=per_page, newest_first=sort == NEWEST
    )
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render(
        request,
        "admin/endorsements.html",
        {
            "queue": queue,
            "rows": rows,
            "hints": await hints_for(db, rows=rows),
            "total": total,
            "page": page,
            "pages": max(1, -(-total // per_page)),
            "per_page": per_page,
            "sort": sort,
            "page_sizes": PAGE_SIZES,
            "filters": {
                "appeal": filters.appeal_id or "",
                "state": filters.state or "",
                "country": filters.country or "",
                "q": filters.search or "",
                "domain": filters.domain or "",
                "officers": filters.officers or "",
            },
            "countersigned": is_countersigned,
            "appeals": await list_appeals(db, public_only=False),
            "states": [s.value for s in S],
            "countries": countries.choices(get_language()),
            "organisation_types": ORGANISATION_TYPE_LABELS,
            "hold_labels": HOLD_LABELS,
            "here": here,
            "message": _done_message(request),
            "seen_at": utcnow().isoformat(),
        },
        private=True,
    )


async def queue_page(request: Request) -> Response:
    return await _list(request, queue=True)


async def search_page(request: Request) -> Response:
    return await _list(request, queue=False)


def _back(value: object, fallback: str) -> str:
    if (
        isinstance(value, str)
        and value.startswith("/admin/")
        and not value.startswith("//")
        and "\\" not in value
        and len(value) < 1000
    ):
        return value
    return fallback


def _with(url: str, **params: object) -> str:
    base, _sep, query = url.partition("?")
    kept = [
        part
        for part in query.split("&")
        if part and part.split("=")[0] not in {"approved", "rejected", "released", "saved", *params}
    ]
    return base + "?" + "&".join([*kept, urlencode(params)])


async def bulk_decide(request: Request) -> Response:
    form = await read_form(request, max_fields=MAX_BULK + 10)
    decision = DECISIONS.get(text(form, "decision", 20))
    if decision is None:
        raise HTTPException(400, "unknown decision")
    ids: list[int] = []
    for raw in form.getlist("ids"):
        if not isinstance(raw, str) or not raw.isdigit() or len(raw) > 12:
            raise HTTPException(400, "ids must be whole numbers")
        ids.append(int(raw))
    changed = await services(request).lifecycle.decide(
        ids=ids, event=decision, organiser_id=organiser(request)["id"], seen_at=_seen_at(form)
    )
    key = _RESULT_KEYS[decision]
    return redirect(request, _with(_back(form.get("next"), "/admin/moderation"), **{key: len(changed)}))


async def _endorsement_or_404(request: Request) -> dict[str, object]:
    row = await get_for_moderation(services(request).db, endorsement_id=request.path_params["endorsement_id"])
    if row is None:
        raise HTTPException(404, "no such endorsement")
    return dict(row)


async def _detail(
    request: Request,
    row: dict[str, object],
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status: int = 200,
) -> Response:
    db = services(request).db
    hints = await hints_for(db, rows=[row])  # type: ignore[list-item]
    return render(
        request,
        "admin/endorsement.html",
        {
            "row": row,
            "hints": hints[row["id"]],  # type: ignore[index]
            "countersigned": is_countersigned,
            "officer_domain_match": row["cs_email_domain"] is not None
            and row["cs_email_domain"] == registrable_domain(str(row["website"] or "")),
            "values": values or {name: row[name] for name in EDITABLE_FIELDS},
            "errors": errors or {},
            **{
                f"can_{name}": may(event, str(row["state"]), mailbox_confirmed=row["confirmed_at"] is not None)
                for name, event in DECISIONS.items()
            },
            "hold_labels": HOLD_LABELS,
            "countries": countries.choices(get_language()),
            "organisation_types": ORGANISATION_TYPE_LABELS,
            "message": _done_message(request),
            "seen_at": utcnow().isoformat(),
        },
        status=status,
        private=True,
    )


async def endorsement_page(request: Request) -> Response:
    return await _detail(request, await _endorsement_or_404(request))


async def endorsement_edit(request: Request) -> Response:
    form = await read_form(request)
    row = await _endorsement_or_404(request)
    result = await correct_endorsement(
        services(request).db,
        row=row,
        submitted=form,  # type: ignore[arg-type]
        organiser_id=organiser(request)["id"],
        seen_at=_seen_at(form),
    )
    if result.errors:
        return await _detail(request, row, values=result.values, errors=result.errors, status=400)
    services(request).lifecycle.public_changed(int(str(row["appeal_id"])))
    saved = "1" if result.changed else "0"
    return redirect(request, f"/admin/endorsements/{row['id']}?saved={saved}")


async def endorsement_decide(request: Request) -> Response:
    form = await read_form(request)
    row = await _endorsement_or_404(request)
    decision = DECISIONS.get(text(form, "decision", 20))
    if decision is None:
        raise HTTPException(400, "unknown decision")
    changed = await services(request).lifecycle.decide(
        ids=[int(str(row["id"]))], event=decision, organiser_id=organiser(request)["id"], seen_at=_seen_at(form)
    )
    key = _RESULT_KEYS[decision]
    return redirect(request, f"/admin/endorsements/{row['id']}?{key}={len(changed)}")


def routes(role: Role) -> list[Route]:
    return [
        admin_route("/moderation", queue_page, role=role, name="admin_moderation"),
        admin_route("/endorsements", search_page, role=role, name="admin_endorsements"),
        admin_route("/endorsements/decisions", bulk_decide, role=role, methods=["POST"]),
        admin_route("/endorsements/{endorsement_id:int}", endorsement_page, role=role),
        admin_route("/endorsements/{endorsement_id:int}", endorsement_edit, role=role, methods=["POST"]),
        admin_route("/endorsements/{endorsement_id:int}/decision", endorsement_decide, role=role, methods=["POST"]),
    ]
