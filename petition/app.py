"""The Starlette application: `create_app(settings)` wires routes, middleware and services."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from petition.appeals.about import about as appeal_about
from petition.appeals.queries import ensure_demo_appeal
from petition.assets import HashedStatic
from petition.compression import Compression
from petition.confirmation import views as confirmation_views
from petition.db import Database
from petition.dossiers import views as dossier_views
from petition.dossiers.jobs import DossierWorker
from petition.dossiers.render_pool import shutdown_pool as shutdown_render_pool
from petition.dossiers.verify_pool import VerifyPool
from petition.dossiers.views import UploadLimitMiddleware
from petition.endorsements.intake import Intake
from petition.endorsements.lifecycle import Lifecycle
from petition.i18n_middleware import LanguageMiddleware
from petition.identity import countersign_views
from petition.identity import views as identity_views
from petition.identity.worker import DomainProofWorker
from petition.logs import RequestIdMiddleware
from petition.metrics import Metrics
from petition.migrations.runner import upgrade_async
from petition.news import views as news_views
from petition.operations import views as operations_views
from petition.operations.heartbeats import Heartbeats
from petition.organisers import views as organiser_views
from petition.organisers.devices import DeviceCookies
from petition.organisers.sessions import PendingLogins, Sessions
from petition.outbox.messages import Mailer
from petition.outbox.transports import make_transport
from petition.outbox.worker import OutboxWorker
from petition.privacy import views as privacy_views
from petition.privacy.housekeeping import Housekeeper
from petition.publish import appeal_views
from petition.publish import views as publish_views
from petition.publish.cache import PublicCache
from petition.publish.pages import CachedPageMiddleware
from petition.reach import views as reach_views
from petition.resources import package_path
from petition.security import (
    CSRF,
    BodySizeLimitMiddleware,
    PathGuardMiddleware,
    SecurityHeaders,
    SecurityHeadersMiddleware,
)
from petition.settings import Settings, load_settings, private_directory
from petition.templating import make_templates
from petition.tokens import Tokens
from petition.transparency import receipt_views
from petition.transparency import views as log_views
from petition.transparency.worker import LogWorker
from petition.web import Services, render

log = logging.getLogger("petition")

MAX_BODY = 1024 * 1024


def _is_database_down(exc: BaseException) -> bool:
    """Connection-level failures: the database is restarting or unreachable."""
    names = {type(e).__name__ for e in _chain(exc)}
    return bool(
        names
        & {
            "ConnectionDoesNotExistError",
            "CannotConnectNowError",
            "ConnectionRefusedError",
            "InterfaceError",
            "ConnectionResetError",
            "TooManyConnectionsError",
            "AdminShutdownError",
            "OperationalError",
            "PostgresConnectionError",
        }
    )


def _chain(exc: BaseException | None) -> list[BaseException]:
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def _wants_json(request: Request) -> bool:
    return request.url.path.startswith("/api/") or request.url.path in ("/healthz", "/readyz")


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if _wants_json(request):
        return JSONResponse({"error": exc.detail}, status_code=exc.status_code, headers=exc.headers)
    if exc.status_code == 413:
        return Response("Request body too large", status_code=413, media_type="text/plain")
    return render(
        request, "errors/error.html", {"status": exc.status_code, "detail": exc.detail}, status=exc.status_code
    )


async def server_error(request: Request, exc: Exception) -> Response:
    status = 503 if _is_database_down(exc) else 500
    if status == 500:
        log.error("unhandled error on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    else:
        log.warning("database unavailable on %s %s", request.method, request.url.path)
    if _wants_json(request):
        return JSONResponse(
            {"error": "unavailable" if status == 503 else "internal error"},
            status_code=status,
            headers={"Retry-After": "10"} if status == 503 else None,
        )
    try:
        response = render(request, "errors/error.html", {"status": status, "detail": ""}, status=status)
    except Exception:  # noqa: BLE001 - the error page itself must not fail
        response = Response("Service unavailable" if status == 503 else "Internal error", status_code=status)
    if status == 503:
        response.headers["Retry-After"] = "10"
    return response


class _Application(Starlette):
    """Starlette, with `cached_pages` around its whole stack, its error layer too: serving a
    cached page costs a fraction of the way through it. An error there is answered 500 by the
    server, as by Starlette's error layer (which has no handler of ours)."""

    cached_pages: Callable[..., ASGIApp]
    #: gzip (petition.compression) for everything, cached pages included; GZIP=false: none.
    compress: bool = True

    def build_middleware_stack(self) -> ASGIApp:
        stack = super().build_middleware_stack()
        if not self.compress:
            return self.cached_pages(stack)
        # gzip inside the cached pages' layer, which sends its pages through it: a page a
        # client without gzip gets from the cache then costs nothing more for gzip's sake.
        compression = Compression(stack)
        return self.cached_pages(compression, compression=compression)


class ErrorPageMiddleware:
    """Turns an unhandled error into our own 500/503 page, inside the header middleware."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        except Exception as exc:
            if started:
                raise
            request = Request(scope, receive)
            response = await server_error(request, exc)
            await response(scope, receive, send)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or load_settings()
    templates = make_templates(settings.operator)
    templates.env.globals["appeal_about"] = appeal_about  # appeals/_about.html
    db = Database(settings.database_url, pool_size=settings.database_pool_size, application_name="petition-web")
    mailer = Mailer(settings)
    tokens = Tokens(str(settings.secret_key))
    # Made here, not on first use: the life cycle's one hook drops its entries after every change.
    cache = PublicCache(anonymous_count_threshold=settings.anonymous_count_threshold)
    csrf = CSRF(settings)
    metrics = Metrics()
    services = Services(
        settings=settings,
        db=db,
        templates=templates,
        mailer=mailer,
        tokens=tokens,
        csrf=csrf,
        intake=Intake(db, settings, mailer, metrics=metrics),
        public_cache=cache,
        organiser_sessions=Sessions(settings),
        organiser_devices=DeviceCookies(settings),
        pending_logins=PendingLogins(settings),
        lifecycle=Lifecycle(db, mailer, on_public_change=cache.invalidate),
        metrics=metrics,
    )

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, Services]]:
        if settings.is_sqlite:
            private_directory(settings.data_dir)
            await upgrade_async(settings.database_url)
        await services.db.connect()
        # Uploads to /verify are checked in a process of their own (started on first use).
        verify_pool = services.verify_pool = VerifyPool(timeout=settings.verify_timeout)
        if settings.create_demo:
            await ensure_demo_appeal(services.db)
        worker_task = None
        housekeeper = Housekeeper(services.db, settings)
        housekeeping_task = None
        dossier_task = None
        log_worker = log_task = None
        proof_task = None
        heartbeats = heartbeat_task = None
        if settings.run_worker:
            services.worker = OutboxWorker(services.db, settings, metrics.timed(make_transport(settings)))
            services.mailer.on_queued(services.worker.notify)
            worker_task = asyncio.create_task(services.worker.run(), name="outbox-worker")
            housekeeping_task = asyncio.create_task(housekeeper.run(), name="housekeeping")
            services.dossier_worker = DossierWorker(services.db, settings)
            dossier_task = asyncio.create_task(services.dossier_worker.run(), name="dossier-worker")
            log_worker = LogWorker(services.db, settings)
            log_task = asyncio.create_task(log_worker.run(), name="log-worker")
            services.domain_proof_worker = DomainProofWorker(services.db, settings)
            proof_task = asyncio.create_task(services.domain_proof_worker.run(), name="domain-proof-worker")
            heartbeats = Heartbeats(
                services.db, [services.worker, services.dossier_worker, log_worker, services.domain_proof_worker]
            )
            heartbeat_task = asyncio.create_task(heartbeats.run(), name="heartbeats")
        try:
            yield {"services": services}
        finally:
            if heartbeats is not None and heartbeat_task is not None:
                heartbeats.stop()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(heartbeat_task, 10)
            if services.domain_proof_worker is not None and proof_task is not None:
                services.domain_proof_worker.stop()
                services.domain_proof_worker = None
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(proof_task, 10)
            if log_worker is not None and log_task is not None:
                log_worker.stop()
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(log_task, 10)
            if housekeeping_task is not None:
                housekeeper.stop()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(housekeeping_task, 10)
            if services.worker is not None and worker_task is not None:
                services.worker.stop()
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.wait_for(worker_task, 10)
            if services.dossier_worker is not None and dossier_task is not None:
                services.dossier_worker.stop()
                services.dossier_worker = None
                with contextlib.suppress(asyncio.CancelledError, TimeoutError):
                    await asyncio.wait_for(dossier_task, 30)
            # Both process pools end with the app: none of their processes outlives it.
            services.verify_pool = None
            for failed in await asyncio.gather(
                asyncio.to_thread(verify_pool.close), asyncio.to_thread(shutdown_render_pool), return_exceptions=True
            ):
                if failed is not None:
                    log.error("stopping a process pool failed: %r", failed)
            await services.db.disconnect()

    static = HashedStatic(directory=package_path("static"))
    templates.env.globals["static_url"] = static.url

    async def favicon(request: Request) -> Response:
        # Browsers ask for /favicon.ico whatever the page says.
        return await static.get_response("favicon.ico", request.scope)

    routes = [
        *appeal_views.routes,
        *confirmation_views.routes,
        *publish_views.routes,
        *organiser_views.routes,
        *privacy_views.routes,
        *dossier_views.routes,
        *operations_views.routes,
        *log_views.routes,
        *receipt_views.routes,
        *identity_views.routes,
        *countersign_views.routes,
        *news_views.routes,
        *reach_views.routes,
        Route("/favicon.ico", favicon, name="favicon"),
        Mount("/static", app=static, name="static"),
    ]
    security_headers = SecurityHeaders(settings)
    middleware = [
        Middleware(RequestIdMiddleware),
        Middleware(SecurityHeadersMiddleware, headers=security_headers),
        Middleware(PathGuardMiddleware),
        Middleware(UploadLimitMiddleware),
        Middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY, read_timeout=settings.request_read_timeout),
        Middleware(LanguageMiddleware),
        Middleware(ErrorPageMiddleware),
    ]
    app = _Application(
        routes=routes,
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={HTTPException: http_error},
    )
    # Cached public pages are answered first, with the request id, security headers and cookie
    # the middleware above adds to every other response (petition.publish.pages).
    app.cached_pages = functools.partial(
        CachedPageMiddleware,
        cache=cache,
        csrf=csrf,
        headers=security_headers,
        routes=[appeal_views.APPEAL_PAGE, publish_views.SIGNATORY_LIST, publish_views.API_APPEAL],
    )
    app.compress = settings.gzip
    app.state.services = services
    return app
