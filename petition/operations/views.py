"""`/readyz` for load balancers and monitoring, `/metrics` for Prometheus (docs/operations.md)."""

from __future__ import annotations

import hmac

import sqlalchemy as sa
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from petition.abuse.limits import is_trusted
from petition.dossiers.states import DossierState
from petition.dossiers.tables import dossiers
from petition.operations.heartbeats import latest_beats
from petition.operations.readiness import aware, outbox_summary, readiness
from petition.schema import utcnow
from petition.web import client_ip, services

NO_STORE = {"Cache-Control": "no-store"}


async def readyz(request: Request) -> Response:
    svc = services(request)
    result = await readiness(svc.db, svc.settings, svc.intake.health)
    return JSONResponse(result.as_json(), status_code=503 if result.status == "not ready" else 200, headers=NO_STORE)


def may_read_metrics(request: Request) -> bool:
    """A client in TRUSTED_IPS, or one that brings METRICS_TOKEN as a bearer token."""
    settings = services(request).settings
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    if settings.metrics_token is not None and scheme.lower() == "bearer":
        return hmac.compare_digest(given.strip().encode(), str(settings.metrics_token).encode())
    return is_trusted(settings, client_ip(request))


async def metrics(request: Request) -> Response:
    if not may_read_metrics(request):
        # The answer of a path that does not exist: nothing says there is something here.
        raise HTTPException(404)
    svc = services(request)
    m = svc.metrics
    now = utcnow()
    summary = await outbox_summary(svc.db, now)
    for state, n in summary.counts.items():
        m.outbox_emails.labels(state=state).set(n)
    m.outbox_oldest_queued.set(summary.oldest_queued_seconds)
    builds = dict.fromkeys((s.value for s in DossierState), 0)
    for row in await svc.db.fetch_all(
        sa.select(dossiers.c.state, sa.func.count().label("n")).group_by(dossiers.c.state)
    ):
        builds[row["state"]] = int(row["n"])
    for state, n in builds.items():
        m.dossier_builds.labels(state=state).set(n)
    freshest: dict[str, float] = {}
    for row in await latest_beats(svc.db):
        age = (now - aware(row["beat_at"])).total_seconds()
        freshest[row["worker"]] = min(age, freshest.get(row["worker"], age))
    m.worker_heartbeat_age.clear()
    for worker, age in freshest.items():
        m.worker_heartbeat_age.labels(worker=worker).set(age)
    pool = svc.db.pool_use()
    for state, n in (pool or {}).items():
        m.db_pool.labels(state=state).set(n)
    return Response(generate_latest(m.registry), media_type=CONTENT_TYPE_LATEST, headers=NO_STORE)


routes = [
    Route("/readyz", readyz, name="readyz"),
    Route("/metrics", metrics, name="metrics"),
]
