"""How `petition serve` runs uvicorn, in one place: read deadlines and the reverse proxy.

uvicorn closes idle keep-alive connections, but waits without end for a request's
headers that trickle in a byte at a time (slowloris): a few hundred such connections
hold a process's sockets. The protocols here (httptools by default, h11 on request) give
every request's headers a deadline (`REQUEST_READ_TIMEOUT`); `security.BodySizeLimitMiddleware`
gives its body the same.

Behind a reverse proxy every visitor arrives from the proxy's address, so rate limits
would count them all as one. `PROXY_IPS` names the proxies whose `X-Forwarded-For`
is believed; nothing else turns proxy headers on.
"""

from __future__ import annotations

import asyncio
import functools
import ipaddress
import logging
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware
from uvicorn.protocols.http.h11_impl import H11Protocol

from petition.logs import FROM_PROXY, uvicorn_log_config
from petition.settings import Settings

log = logging.getLogger("petition.server")


class _HeaderDeadline:
    """A deadline for each request's headers, shared by both HTTP protocols below: armed when a
    connection opens and when the first bytes of a request arrive, disarmed when its headers are
    complete; when it passes, the client gets a 408 and the connection is closed."""

    header_timeout: float = 10.0
    _deadline: asyncio.TimerHandle | None = None
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport

    def _arm(self) -> None:
        self._disarm()
        self._deadline = self.loop.call_later(self.header_timeout, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            self.transport.close()


class TimedH11Protocol(_HeaderDeadline, H11Protocol):
    """uvicorn's h11 protocol (pure Python) with a deadline for each request's headers."""

    _timed_cycle: object | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._deadline is None and (self.cycle is None or self.cycle.response_complete):
            self._arm()  # the first bytes of the next request on a kept-alive connection
        super().data_received(data)
        if self.cycle is not None and self.cycle is not self._timed_cycle:
            # A new request's headers are complete: the body has the application's deadline.
            self._timed_cycle = self.cycle
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)


def _httptools_protocol() -> type[asyncio.Protocol] | None:
    """uvicorn's httptools protocol (the C parser of uvicorn[standard]) with the same deadline."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:
        return None

    class TimedHttpToolsProtocol(_HeaderDeadline, HttpToolsProtocol):
        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def on_message_begin(self) -> None:
            # The first bytes of a request, on a new or a kept-alive connection.
            if self._deadline is None:
                self._arm()
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            self._disarm()  # the body has the application's deadline
            super().on_headers_complete()

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            super().connection_lost(exc)

    return TimedHttpToolsProtocol


def protocol_class(settings: Settings, http: str = "auto") -> type[asyncio.Protocol]:
    """The HTTP protocol class with the request read deadline of `settings`."""
    base: type[asyncio.Protocol] | None = TimedH11Protocol if http == "h11" else _httptools_protocol()
    if base is None:
        if http == "httptools":
            raise RuntimeError("--http httptools needs the httptools package (pip install 'uvicorn[standard]')")
        base = TimedH11Protocol
    return type(f"Petition{base.__name__}", (base,), {"header_timeout": settings.request_read_timeout})


class FromProxy:
    """Notes in the scope that a request came from a proxy of PROXY_IPS, before uvicorn's
    ProxyHeadersMiddleware puts the visitor's address in the proxy's place: only such a request's
    X-Request-ID is believed (petition.logs)."""

    def __init__(self, app: Any, settings: Settings) -> None:
        self.app: ASGIApp = app  # uvicorn's middleware, typed with uvicorn's own scope types
        self.proxies = settings.proxy_ips
        # The peer is the proxy itself on nearly every request: its verdict is kept, not parsed again.
        self.is_proxy = functools.lru_cache(maxsize=256)(self._is_proxy)

    def _is_proxy(self, host: str) -> bool:
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.proxies)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and client:
            scope[FROM_PROXY] = self.is_proxy(client[0])
        await self.app(scope, receive, send)


def uvicorn_config(
    app: Any, settings: Settings, *, host: str, port: int, http: str = "auto", loop: str = "auto", **extra: Any
) -> uvicorn.Config:
    """The one uvicorn configuration, for `petition serve` and the tests' live servers.

    By default the C parts of `uvicorn[standard]`: httptools parses HTTP and uvloop runs the
    event loop (docs/benchmarks.md measures them against h11 and asyncio); `http="h11"` and
    `loop="asyncio"` choose the pure-Python ones.
    """
    proxies = ",".join(str(network) for network in settings.proxy_ips)
    if proxies:
        # What uvicorn's proxy_headers would do, with FromProxy in front of it.
        app = FromProxy(ProxyHeadersMiddleware(app, trusted_hosts=proxies), settings)
    log_config = uvicorn_log_config(settings.log_format)
    if log_config is not None:
        extra["log_config"] = log_config
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        http=protocol_class(settings, http),
        loop=loop,
        access_log=False,
        server_header=False,
        proxy_headers=False,
        **extra,
    )


_hinted = False


def hint_proxy_setting(settings: Settings, ip: str | None) -> None:
    """Say once, when a limit holds back many submissions from one private or loopback address
    and PROXY_IPS is unset, that a reverse proxy is probably making every visitor look alike."""
    global _hinted
    if _hinted or settings.proxy_ips or not ip:
        return
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return
    if address.is_private or address.is_loopback:
        _hinted = True
        log.warning(
            "Many submissions arrive from one private or loopback address and are held back by the "
            "per-address limits. If petition runs behind a reverse proxy, set PROXY_IPS to the "
            "proxy's address (comma-separated addresses or networks), so that each visitor is "
            "counted on their own."
        )
