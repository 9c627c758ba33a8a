"""The public verification page: is this dossier genuine, and did we issue it?"""

from __future__ import annotations

import asyncio
import math
import re
from pathlib import Path
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from petition import i18n
from petition.abuse.limits import verify_upload_wait
from petition.appeals.deliveries import delivered_sha256
from petition.appeals.queries import get_appeal
from petition.dossiers.sign import (
    fingerprint_hex,
    format_fingerprint,
    load_certificate_der,
    signing_config,
)
from petition.dossiers.tables import dossiers
from petition.dossiers.verify import (
    MAX_UPLOAD_BYTES,
    DigestAnswer,
    normalise_digest,
    verify_digest,
    verify_file,
)
from petition.dossiers.verify_pool import CheckerBusy
from petition.web import client_ip, render, services

VERIFY_PATH = "/verify"
#: Room for the form's other fields and the multipart framing around the file.
FORM_SLACK = 64 * 1024


class UploadLimitMiddleware:
    """Lets POST /verify carry a dossier (up to 20 MB) where other forms get 1 MB.

    A declared body over the limit is not read at all: the page answers 413 in the
    reader's language instead of the plain-text refusal other paths get.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == VERIFY_PATH and scope["method"] == "POST":
            state = scope.setdefault("state", {})
            limit = MAX_UPLOAD_BYTES + FORM_SLACK
            declared = _content_length(scope)
            if declared is not None and declared > limit:
                state["upload_too_large"] = True
                state["max_body"] = declared  # never read: the view answers 413 first
            else:
                state["max_body"] = limit
        await self.app(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def _certificate(request: Request) -> tuple[str, bytes]:
    settings = services(request).settings

    def load() -> tuple[str, bytes]:
        der = load_certificate_der(signing_config(settings))
        return fingerprint_hex(der), der

    return await asyncio.to_thread(load)


def _page(
    request: Request,
    *,
    fingerprint: str,
    status: int = 200,
    headers: dict[str, str] | None = None,
    **context: Any,
) -> Response:
    values: dict[str, Any] = {
        "fingerprint": format_fingerprint(fingerprint),
        "max_mb": MAX_UPLOAD_BYTES // (1024 * 1024),
        "verdict": None,
        "answer": None,
        "error": None,
        "digest": "",
        "filename": None,
        "format_fingerprint": format_fingerprint,
    }
    values.update(context)
    response = render(request, "dossiers/verify.html", values, status=status, private=True)
    response.headers.update(headers or {})
    return response


async def _answer(request: Request, digest: str) -> DigestAnswer:
    return await verify_digest(
        services(request).db,
        digest=digest,
        language=i18n.get_language(),
        anonymous_threshold=services(request).settings.anonymous_count_threshold,
    )


async def verify_page(request: Request) -> Response:
    fingerprint, _der = await _certificate(request)
    raw = request.query_params.get("digest", "")
    if not raw:
        return _page(request, fingerprint=fingerprint)
    digest = normalise_digest(raw)
    if digest is None:
        return _page(request, fingerprint=fingerprint, status=400, digest=raw[:200], error="digest")
    answer = await _answer(request, digest)
    return _page(request, fingerprint=fingerprint, answer=answer, digest=digest)


async def verify_submit(request: Request) -> Response:
    fingerprint, der = await _certificate(request)
    if request.scope.get("state", {}).get("upload_too_large"):
        return _page(request, fingerprint=fingerprint, status=413, error="too_large")
    try:
        form = await request.form(max_files=1, max_fields=10, max_part_size=64 * 1024)
    except HTTPException as exc:
        if exc.status_code == 413:
            return _page(request, fingerprint=fingerprint, status=413, error="too_large")
        raise
    except (MultiPartException, UnicodeDecodeError, ValueError):
        return _page(request, fingerprint=fingerprint, status=400, error="malformed")
    try:
        services(request).csrf.check(request, form.get("csrf_token"))
        upload = form.get("dossier")
        typed = str(form.get("digest") or "").strip()
        if isinstance(upload, UploadFile) and upload.filename:
            return await _check_upload(request, upload, fingerprint=fingerprint, der=der)
        if typed:
            digest = normalise_digest(typed)
            if digest is None:
                return _page(request, fingerprint=fingerprint, status=400, error="digest", digest=typed[:200])
            answer = await _answer(request, digest)
            return _page(request, fingerprint=fingerprint, answer=answer, digest=digest)
        return _page(request, fingerprint=fingerprint, status=400, error="nothing")
    finally:
        await form.close()


async def _check_upload(request: Request, upload: UploadFile, *, fingerprint: str, der: bytes) -> Response:
    """Guards, then the check in the verification pool, then the verdict."""
    svc = services(request)
    filename = (upload.filename or "")[:200]
    wait = await verify_upload_wait(svc.db, svc.settings, ip=client_ip(request))
    if wait is not None:
        return _page(
            request,
            fingerprint=fingerprint,
            status=429,
            error="too_many",
            retry_minutes=max(1, math.ceil(wait / 60)),
            headers={"Retry-After": str(wait)},
        )
    data = await upload.read(MAX_UPLOAD_BYTES + 1)
    if len(data) > MAX_UPLOAD_BYTES:
        return _page(request, fingerprint=fingerprint, status=413, error="too_large")
    if not data:
        return _page(request, fingerprint=fingerprint, status=400, error="empty")
    if not data.lstrip()[:5] == b"%PDF-":
        return _page(request, fingerprint=fingerprint, status=400, error="not_pdf", filename=filename)
    checker = svc.verify_pool
    busy_retry = str(math.ceil(svc.settings.verify_timeout) + 1)
    if checker is None:
        return _page(request, fingerprint=fingerprint, status=503, error="busy", headers={"Retry-After": busy_retry})
    try:
        check = await checker.check(data, der)
    except CheckerBusy:
        return _page(request, fingerprint=fingerprint, status=503, error="busy", headers={"Retry-After": busy_retry})
    verdict = await verify_file(
        svc.db,
        data=data,
        check=check,
        fingerprint=fingerprint,
        language=i18n.get_language(),
        anonymous_threshold=svc.settings.anonymous_count_threshold,
    )
    return _page(request, fingerprint=fingerprint, verdict=verdict, filename=filename)


#: A signed dossier's name on the site: the SHA-256 of its file, in lower-case hex.
_SHA256 = re.compile(r"[0-9a-f]{64}")


def _delivered_file(path: str) -> bytes | None:
    file = Path(path)
    return file.read_bytes() if file.is_file() else None


async def delivered_dossier(request: Request) -> Response:
    """A dossier that was delivered to parliamentarians (petition.delivery), by its SHA-256: the
    link in their emails. Only delivered ones: the others stay with the organisers."""
    sha256 = str(request.path_params["sha256"])
    if not _SHA256.fullmatch(sha256):
        raise HTTPException(404, "no such dossier")
    db = services(request).db
    appeal = await get_appeal(db, slug=request.path_params["slug"])
    if appeal is None or not await delivered_sha256(db, appeal_id=appeal["id"], sha256=sha256):
        raise HTTPException(404, "no such dossier")
    row = await db.fetch_one(
        dossiers.select().where(dossiers.c.appeal_id == appeal["id"], dossiers.c.pdf_sha256 == sha256).limit(1)
    )
    data = await asyncio.to_thread(_delivered_file, row["file_path"]) if row is not None and row["file_path"] else None
    if row is None or data is None:
        raise HTTPException(410, "the file of this dossier is no longer stored")
    name = f"{appeal['slug']}-{row['country']}.pdf"
    return Response(
        data,
        media_type="application/pdf",
        headers={
            "Content-Disposition": f'inline; filename="{name}"',
            # Named by its digest: these bytes never change.
            "Cache-Control": "public, max-age=31536000, immutable",
        },
    )


routes = [
    Route("/appeals/{slug}/dossiers/{sha256}.pdf", delivered_dossier, methods=["GET"], name="delivered_dossier"),
    Route(VERIFY_PATH, verify_page, methods=["GET"], name="verify"),
    Route(VERIFY_PATH, verify_submit, methods=["POST"], name="verify_submit"),
]
