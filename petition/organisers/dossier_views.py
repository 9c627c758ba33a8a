"""Dossiers in the organiser area: build one country or all, watch progress, download (audited)."""

from __future__ import annotations

import asyncio
import io
import zipfile
from pathlib import Path

import sqlalchemy as sa
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from petition import countries
from petition.appeals.queries import current_titles, get_appeal_by_id, list_appeals
from petition.audit.actions import AuditAction
from petition.audit.queries import record
from petition.db import Database, Row
from petition.dossiers.content import countries_with_signatories
from petition.dossiers.jobs import get_dossier, list_dossiers, queue_build
from petition.dossiers.sign import certificate_fingerprint
from petition.dossiers.states import DossierState
from petition.dossiers.tables import dossiers
from petition.i18n import get_language
from petition.organisers.auth import admin_route, organiser
from petition.organisers.pages import redirect, render
from petition.organisers.params import text
from petition.organisers.roles import Role
from petition.organisers.tables import organisers
from petition.web import read_form, services

D = DossierState


def _notify_worker(request: Request) -> None:
    worker = services(request).dossier_worker
    if worker is not None:
        worker.notify()


async def _builders(db: Database, rows: list[Row]) -> dict[int, str]:
    ids = {r["created_by"] for r in rows if r["created_by"]}
    if not ids:
        return {}
    found = await db.fetch_all(sa.select(organisers.c.id, organisers.c.email).where(organisers.c.id.in_(ids)))
    return {r["id"]: r["email"] for r in found}


async def dossiers_page(request: Request) -> Response:
    svc = services(request)
    db = svc.db
    appeals = await list_appeals(db, public_only=False)
    titles = await current_titles(db, language=get_language())
    chosen = request.query_params.get("appeal", "")
    appeal = next((a for a in appeals if str(a["id"]) == chosen), appeals[0] if appeals else None)
    available = (
        await countries_with_signatories(
            db, appeal=appeal, anonymous_threshold=services(request).settings.anonymous_count_threshold
        )
        if appeal
        else []
    )
    history = await list_dossiers(db, appeal_id=appeal["id"] if appeal else None, limit=200)
    working = any(r["state"] in (D.QUEUED, D.BUILDING) for r in history)
    fingerprint = await asyncio.to_thread(certificate_fingerprint, svc.settings)
    latest_done = {r["country"] for r in history if r["state"] == D.DONE}
    return render(
        request,
        "admin/dossiers.html",
        {
            "appeals": appeals,
            "titles": titles,
            "appeal": appeal,
            "available": [(code, countries.name(code)) for code in available],
            "history": history,
            "builders": await _builders(db, history),
            "working": working,
            "fingerprint": fingerprint,
            "has_done": bool(latest_done),
            "message": request.query_params.get("queued"),
        },
        private=True,
    )


async def dossiers_build(request: Request) -> Response:
    form = await read_form(request)
    db = services(request).db
    raw_appeal = text(form, "appeal", 12)
    if not raw_appeal.isdigit():
        raise HTTPException(400, "appeal")
    appeal = await get_appeal_by_id(db, appeal_id=int(raw_appeal))
    if appeal is None:
        raise HTTPException(404, "no such appeal")
    wanted = text(form, "country", 3).upper()
    available = await countries_with_signatories(
        db, appeal=appeal, anonymous_threshold=services(request).settings.anonymous_count_threshold
    )
    if wanted == "ALL":
        chosen = available
    elif wanted in available:
        chosen = [wanted]
    else:
        raise HTTPException(400, "no listed endorsement from that country")
    me = organiser(request)["id"]
    for code in chosen:
        dossier_id = await queue_build(db, appeal_id=appeal["id"], country=code, created_by=me)
        await record(
            db,
            organiser_id=me,
            action=AuditAction.DOSSIER_BUILD,
            target_type="dossier",
            target_id=dossier_id,
            detail=f"appeal={appeal['id']} country={code}",
        )
    _notify_worker(request)
    return redirect(request, f"/admin/dossiers?appeal={appeal['id']}&queued={len(chosen)}")


async def _done_dossier(request: Request) -> Row:
    row = await get_dossier(services(request).db, dossier_id=request.path_params["dossier_id"])
    if row is None:
        raise HTTPException(404, "no such dossier")
    return row


async def dossier_page(request: Request) -> Response:
    row = await _done_dossier(request)
    appeal = await get_appeal_by_id(services(request).db, appeal_id=row["appeal_id"])
    return render(
        request,
        "admin/dossier.html",
        {"row": row, "appeal": appeal, "working": row["state"] in (D.QUEUED, D.BUILDING)},
        private=True,
    )


def _file_of(row: Row) -> Path:
    if row["state"] != D.DONE or not row["file_path"]:
        raise HTTPException(404, "this dossier has no file (yet)")
    path = Path(row["file_path"])
    if not path.is_file():
        raise HTTPException(410, "the file of this dossier is no longer stored")
    return path


async def dossier_download(request: Request) -> Response:
    row = await _done_dossier(request)
    path = await asyncio.to_thread(_file_of, row)
    appeal = await get_appeal_by_id(services(request).db, appeal_id=row["appeal_id"])
    data = await asyncio.to_thread(path.read_bytes)
    await record(
        services(request).db,
        organiser_id=organiser(request)["id"],
        action=AuditAction.DOSSIER_DOWNLOAD,
        target_type="dossier",
        target_id=row["id"],
        detail=f"country={row['country']}",
    )
    name = f"{appeal['slug'] if appeal else 'appeal'}-{row['country']}-{row['id']}.pdf"
    return Response(
        data,
        media_type="application/pdf",
        headers={"Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "no-store"},
    )


async def latest_done(db: Database, *, appeal_id: int) -> list[Row]:
    """The newest finished dossier of each country of an appeal."""
    rows = await db.fetch_all(
        dossiers.select()
        .where(dossiers.c.appeal_id == appeal_id, dossiers.c.state == D.DONE.value)
        .order_by(dossiers.c.country, dossiers.c.finished_at.desc(), dossiers.c.id.desc())
    )
    newest: dict[str, Row] = {}
    for row in rows:
        newest.setdefault(row["country"], row)
    return list(newest.values())


def _zip(files: list[tuple[str, Path]]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, path in files:
            archive.write(path, arcname=name)
    return buffer.getvalue()


async def dossiers_zip(request: Request) -> Response:
    db = services(request).db
    appeal = await get_appeal_by_id(db, appeal_id=request.path_params["appeal_id"])
    if appeal is None:
        raise HTTPException(404, "no such appeal")
    newest = await latest_done(db, appeal_id=appeal["id"])
    rows = await asyncio.to_thread(lambda: [r for r in newest if r["file_path"] and Path(r["file_path"]).is_file()])
    if not rows:
        raise HTTPException(404, "no finished dossier to download yet")
    files = [(f"{appeal['slug']}-{r['country']}-{r['id']}.pdf", Path(r["file_path"])) for r in rows]
    data = await asyncio.to_thread(_zip, files)
    await record(
        db,
        organiser_id=organiser(request)["id"],
        action=AuditAction.DOSSIER_DOWNLOAD,
        target_type="appeal",
        target_id=appeal["id"],
        detail="zip countries=" + ",".join(r["country"] for r in rows),
    )
    return Response(
        data,
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{appeal["slug"]}-dossiers.zip"',
            "Cache-Control": "no-store",
        },
    )


def routes(role: Role) -> list[Route]:
    return [
        admin_route("/dossiers", dossiers_page, role=role, name="admin_dossiers"),
        admin_route("/dossiers", dossiers_build, role=role, methods=["POST"]),
        admin_route("/dossiers/appeal/{appeal_id:int}.zip", dossiers_zip, role=role, name="admin_dossiers_zip"),
        admin_route("/dossiers/{dossier_id:int}", dossier_page, role=role, name="admin_dossier"),
        admin_route("/dossiers/{dossier_id:int}/download", dossier_download, role=role, name="admin_dossier_download"),
    ]
