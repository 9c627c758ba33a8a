"""The public log over HTTP (the contract in DESIGN.md): its key, its latest checkpoint, its
entries, and inclusion and consistency proofs. Anyone may fetch them; nothing here is secret.

Bad parameters get a 400 with a JSON error; a size beyond the latest checkpoint is refused,
so every proof is against a tree some signed checkpoint names.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from petition.transparency import store, trusted_time
from petition.web import services

_NO_STORE = {"Cache-Control": "no-cache"}


def _error(status: int, message: str) -> JSONResponse:
    headers = {"Retry-After": "10"} if status == 503 else None
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _ints(request: Request, *names: str) -> list[int] | JSONResponse:
    values = []
    for name in names:
        raw = request.query_params.get(name, "")
        if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
            return _error(400, f"{name} must be a whole number of 0 or more")
        values.append(int(raw))
    return values


async def _published(request: Request) -> store.Published | JSONResponse:
    checkpoint = await store.latest(services(request).db)
    if checkpoint is None:
        return _error(503, "the log has no checkpoint yet")
    return checkpoint


async def key(request: Request) -> Response:
    checkpoint = await _published(request)
    if isinstance(checkpoint, JSONResponse):
        return checkpoint
    return PlainTextResponse(checkpoint.key + "\n")


async def checkpoint(request: Request) -> Response:
    """The latest checkpoint; with `?size=N`, the one of that size (what a timestamp stamps)."""
    if "size" in request.query_params:
        values = _ints(request, "size")
        if isinstance(values, JSONResponse):
            return values
        earlier = await store.checkpoint_of(services(request).db, values[0])
        if earlier is None:
            return _error(404, "no checkpoint of that size")
        return PlainTextResponse(earlier.note)
    published = await _published(request)
    if isinstance(published, JSONResponse):
        return published
    return PlainTextResponse(published.note, headers=_NO_STORE)


async def entries(request: Request) -> Response:
    bounds = _ints(request, "start", "end")
    if isinstance(bounds, JSONResponse):
        return bounds
    start, end = bounds
    if end <= start or end - start > store.MAX_ENTRIES:
        return _error(400, f"end must be above start, by {store.MAX_ENTRIES} at most")
    published = await _published(request)
    if isinstance(published, JSONResponse):
        return published
    if end > published.size:
        return _error(400, f"the latest checkpoint holds {published.size} entries")
    rows = await store.entries(services(request).db, start, end)
    return JSONResponse({"entries": [{"index": index, "leaf": leaf} for index, leaf in rows]})


async def inclusion(request: Request) -> Response:
    values = _ints(request, "index", "size")
    if isinstance(values, JSONResponse):
        return values
    index, size = values
    published = await _published(request)
    if isinstance(published, JSONResponse):
        return published
    if not index < size <= published.size:
        return _error(400, f"index must be below size, and size at most {published.size}")
    hashes = await store.inclusion_proof(services(request).db, index, size)
    return JSONResponse({"hashes": store.encode(hashes)})


async def consistency(request: Request) -> Response:
    values = _ints(request, "first", "second")
    if isinstance(values, JSONResponse):
        return values
    first, second = values
    published = await _published(request)
    if isinstance(published, JSONResponse):
        return published
    if not first <= second <= published.size:
        return _error(400, f"first must be at most second, and second at most {published.size}")
    hashes = await store.consistency_proof(services(request).db, first, second)
    return JSONResponse({"hashes": store.encode(hashes)})


async def checkpoint_timestamp(request: Request) -> Response:
    """The RFC 3161 reply (a granted TimeStampResp, DER) over SHA-256 of checkpoint `size`'s note."""
    values = _ints(request, "size")
    if isinstance(values, JSONResponse):
        return values
    [size] = values
    db = services(request).db
    published = await store.checkpoint_of(db, size)
    if published is None:
        return _error(404, "no checkpoint of that size")
    token = await store.timestamp_token(db, size)
    if token is None:
        return _error(404, "that checkpoint has no timestamp (yet)")
    return Response(
        trusted_time.reply_of(token),
        media_type="application/timestamp-reply",
        headers={"Content-Disposition": f'attachment; filename="checkpoint-{size}.tsr"'},
    )


routes = [
    Route("/log/key", key, name="log_key"),
    Route("/log/checkpoint", checkpoint, name="log_checkpoint"),
    Route("/log/checkpoint/timestamp", checkpoint_timestamp, name="log_checkpoint_timestamp"),
    Route("/log/entries", entries, name="log_entries"),
    Route("/log/proof/inclusion", inclusion, name="log_inclusion"),
    Route("/log/proof/consistency", consistency, name="log_consistency"),
]
