"""Log lines as text or as one JSON object each (`LOG_FORMAT`), with the id of the request they belong to.

Standard library logging with a small formatter: uvicorn logs through it too (its `log_config`,
petition.server), and nothing else in the process needs more. The request id comes from the
reverse proxy (`X-Request-ID`, only from a proxy in PROXY_IPS and only when well-formed), else it
is made here; it is returned in the response's `X-Request-ID` and added to every log line written
while the request is handled. Log messages name no address or token (tests/journeys/
test_logs_hold_no_personal_data.py): the JSON carries the same message, never the request.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import re
import sys
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from petition.randomness import random_bytes

request_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("petition_request_id", default=None)

#: What a proxy's request id may look like (nginx's $request_id is 32 hex digits): nothing that
#: could forge a log line or carry more than an id.
_WELL_FORMED = re.compile(r"[A-Za-z0-9._:-]{8,128}")
#: Set in the scope by petition.server when the request came through a proxy of PROXY_IPS.
FROM_PROXY = "petition.from_proxy"

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RequestIdFilter(logging.Filter):
    """Adds `request_id` (None outside a request) to every record a handler writes."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC), level, logger, message, request_id, exception."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None) or request_id.get()
        if rid:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def formatter(log_format: str) -> logging.Formatter:
    return JsonFormatter() if log_format == "json" else logging.Formatter(TEXT_FORMAT)


def configure(log_format: str, level: int = logging.INFO) -> None:
    """The root logger's one handler (stderr), in the format the settings ask for."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(log_format))
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=level, handlers=[handler], force=True)


def uvicorn_log_config(log_format: str) -> dict[str, Any] | None:
    """uvicorn's `log_config` for `json`: its loggers write through the same formatter; None keeps
    uvicorn's own (text)."""
    if log_format != "json":
        return None
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": JsonFormatter}},
        "filters": {"request_id": {"()": RequestIdFilter}},
        "handlers": {
            "default": {
                "class": "logging.StreamHandler",
                "formatter": "json",
                "filters": ["request_id"],
                "stream": "ext://sys.stderr",
            }
        },
        "loggers": {
            "uvicorn": {"handlers": ["default"], "level": "INFO", "propagate": False},
            "uvicorn.error": {"level": "INFO"},
            "uvicorn.access": {"handlers": ["default"], "level": "INFO", "propagate": False},
        },
    }


def request_id_for(scope: Scope) -> str:
    """The request's id: the trusted proxy's X-Request-ID if well-formed, else a new one
    (32 random hex digits, as random as uuid4().hex)."""
    if scope.get(FROM_PROXY):
        rid = None
        for name, value in scope["headers"]:
            if name == b"x-request-id":
                given = value.decode("latin-1")
                rid = given if _WELL_FORMED.fullmatch(given) else None
        if rid:
            return rid
    return random_bytes(16).hex()


class RequestIdMiddleware:
    """Gives each request an id (`request_id_for`), returned in X-Request-ID and set in every
    log line written meanwhile."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = request_id_for(scope)
        header = (b"x-request-id", rid.encode("ascii"))

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), header]}
            await send(message)

        token = request_id.set(rid)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id.reset(token)
