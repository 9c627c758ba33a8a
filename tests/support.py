"""Test helpers: a real SMTP server, the endorsement form, and waiting for things."""

from __future__ import annotations

import asyncio
import email
import email.policy
import os
import re
import socket
import threading
import time
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

#: The checkout the tests run from (the application itself never looks there).
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class MailSink:
    """aiosmtpd handler: keeps every message; can answer 4xx/5xx on demand."""

    def __init__(self) -> None:
        self.messages: list[EmailMessage] = []
        self.lock = threading.Lock()
        self.refuse_with: str | None = None  # e.g. "451 4.3.0 try later"
        self.delay = 0.0  # seconds a slow relay takes over each message before it answers
        #: Called with each message as it is accepted (in the server's thread), e.g. to inject a fault.
        self.on_accept: Callable[[EmailMessage], None] | None = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.refuse_with:
            return self.refuse_with
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self.lock:
            self.messages.append(message)  # type: ignore[arg-type]
        if self.on_accept is not None:
            self.on_accept(message)  # type: ignore[arg-type]
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]


class SMTPServer:
    """A real SMTP server on loopback that can be stopped and started again on its port."""

    def __init__(self, *, smtputf8: bool = False) -> None:
        self.sink = MailSink()
        self.port = free_port()
        self.controller: Controller | None = None
        #: Offer the SMTPUTF8 extension (most relays do; aiosmtpd does not by default).
        self.smtputf8 = smtputf8

    def start(self) -> None:
        self.controller = Controller(self.sink, hostname="127.0.0.1", port=self.port, enable_SMTPUTF8=self.smtputf8)
        self.controller.start()

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self) -> list[EmailMessage]:
        return self.sink.messages


def mailbox_key(address: str) -> str:
    """One spelling per address for finding its mail, whether the To header has U- or A-labels."""
    import idna

    local, _, domain = address.rpartition("@")
    return f"{local.lower()}@{idna.encode(domain, uts46=True).decode('ascii')}"


def mail_to(smtp: SMTPServer, address: str, count: int = 1) -> list[EmailMessage]:
    """The messages that reached `address` however its domain was written, once `count` have."""

    def found() -> list[EmailMessage] | None:
        with smtp.sink.lock:
            ms = [m for m in smtp.sink.messages if mailbox_key(str(m["To"])) == mailbox_key(address)]
        return ms if len(ms) >= count else None

    return wait_for(found)  # type: ignore[no-any-return]


def wait_for(predicate: Callable[[], Any], timeout: float = 15.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {predicate}")
        time.sleep(interval)


def wait_for_mail(smtp: SMTPServer, address: str, count: int = 1, timeout: float = 15.0) -> list[EmailMessage]:
    return wait_for(
        lambda: (lambda ms: ms if len(ms) >= count else None)(smtp.sink.to(address)),  # type: ignore[no-any-return]
        timeout=timeout,
    )


def drain_outbox(client: Any, timeout: float = 15.0) -> None:
    """Send every email that is due, and wait for those another worker is sending.

    Runs an outbox worker on the app's own database and event loop until a pass finds nothing
    due and no email is claimed by anyone: what the relay has then is all it will get, and a
    test may assert that an email did not arrive. (Emails put off until a retry stay queued.)
    """
    import sqlalchemy as sa

    from petition.outbox.states import OutboxState
    from petition.outbox.tables import outbox
    from petition.outbox.transports import make_transport
    from petition.outbox.worker import OutboxWorker

    services = client.app.state.services
    worker = OutboxWorker(services.db, services.settings, make_transport(services.settings))
    sending = sa.select(sa.func.count()).select_from(outbox).where(outbox.c.state == OutboxState.SENDING.value)

    async def one_pass() -> bool:
        handled = await worker.run_once()
        return handled == 0 and not await services.db.fetch_val(sending)

    deadline = time.monotonic() + timeout
    while not client.portal.call(one_pass):
        if time.monotonic() > deadline:
            raise AssertionError(f"the outbox still had emails due or being sent after {timeout}s")
        time.sleep(0.02)


def translated(msgid: str, language: str) -> str:
    """What the catalogue of `language` makes of `msgid`: a test that expects it fails on English."""
    from petition.i18n import translations

    text = str(translations(language).gettext(msgid))
    assert text != msgid, f"the {language} catalogue does not translate {msgid!r}"
    return text


def text_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def html_body(message: EmailMessage) -> str:
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return str(part.get_content())


def links(message: EmailMessage, base_url: str) -> list[str]:
    return [u for u in re.findall(r"https?://[^\s<>\"]+", text_body(message)) if u.startswith(base_url)]


CSRF_RE = re.compile(r'name="csrf_token" value="([^"]+)"')
#: The token in a form, for `comparable`.
_TOKEN_FIELD = re.compile(r'(name="csrf_token" value=")[^"]+(")')
#: What differs between two answers to the same request, whoever gives them (gzipped, the
#: length depends on the token in the form; the bodies are compared decoded).
PER_REQUEST_HEADERS = frozenset({"date", "x-request-id", "set-cookie", "content-length"})


def comparable(response: Any, *, any_order: bool = False) -> tuple[int, list[tuple[str, str]], str]:
    """Status, headers and body of an answer, with what differs per request masked (the
    per-request headers' values, the form's token), to compare two answers to one request.
    `any_order`: the headers as a sorted list (a Response built from stored headers orders
    them differently from the handler's)."""
    headers = [(k, "…" if k in PER_REQUEST_HEADERS else v) for k, v in response.headers.multi_items()]
    return response.status_code, sorted(headers) if any_order else headers, _TOKEN_FIELD.sub(r"\1…\2", response.text)


def csrf_from(html: str) -> str:
    match = CSRF_RE.search(html)
    assert match, "no CSRF field in the page"
    return match.group(1)


def valid_form(**overrides: str) -> dict[str, str]:
    form = {
        "organisation_name": "Connection e.V.",
        "country": "DE",
        "city": "Offenbach",
        "organisation_type": "peace",
        "website": "connection-ev.org",
        "contact_name": "Rudi Friedrich",
        "contact_role": "Coordinator",
        "contact_email": "office@connection-ev.example",
        "authorised": "yes",
        "consent": "yes",
        "visibility": "public",
        "comment": "",
    }
    form.update(overrides)
    return form


def db_rows(database_url: str, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Rows of a plain SQL query, read straight from the database the app writes to.

    Placeholders are `$1, $2, …` (asyncpg's); on SQLite they become `?`.
    """
    if database_url.startswith("sqlite:///"):
        import sqlite3

        conn = sqlite3.connect(database_url[len("sqlite:///") :], timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            return [dict(r) for r in conn.execute(re.sub(r"\$\d+", "?", sql), args).fetchall()]
        finally:
            conn.close()
    import asyncio

    import asyncpg

    async def query() -> list[dict[str, Any]]:
        conn = await asyncpg.connect(database_url)
        try:
            return [dict(r) for r in await conn.fetch(sql, *args)]
        finally:
            await conn.close()

    return asyncio.run(query())


def db_count(database_url: str, table: str) -> int:
    return int(db_rows(database_url, f"SELECT count(*) AS n FROM {table}")[0]["n"])


def form_values(html: str) -> dict[str, str]:
    """What a browser would submit from the page's first POST form: inputs, selects, textareas."""
    from html.parser import HTMLParser

    class Parser(HTMLParser):
        def __init__(self) -> None:
            super().__init__()
            self.values: dict[str, str] = {}
            self.select: str | None = None
            self.textarea: str | None = None

        def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
            a = {k: v or "" for k, v in attrs}
            if tag == "input" and a.get("name"):
                if a.get("type") in ("checkbox", "radio"):
                    if "checked" in a:
                        self.values[a["name"]] = a.get("value", "on")
                else:
                    self.values[a["name"]] = a.get("value", "")
            elif tag == "select":
                self.select = a.get("name")
                self.values.setdefault(self.select or "", "")
            elif tag == "option" and self.select and "selected" in a:
                self.values[self.select] = a.get("value", "")
            elif tag == "textarea":
                self.textarea = a.get("name")
                self.values[self.textarea or ""] = ""

        def handle_endtag(self, tag: str) -> None:
            if tag == "select":
                self.select = None
            elif tag == "textarea":
                self.textarea = None

        def handle_data(self, data: str) -> None:
            if self.textarea:
                self.values[self.textarea] += data

    parser = Parser()
    parser.feed(html)
    return parser.values


def run_sql(database_url: str, sql: str, **params: Any) -> list[dict[str, Any]]:
    """Run one SQL statement on the test database from synchronous test code; rows as dicts."""
    import asyncio

    from petition.db import Database

    async def go() -> list[dict[str, Any]]:
        db = Database(database_url)
        await db.connect()
        try:
            statement = sql
            if sql.lstrip().lower().startswith(("select", "with")):
                return [dict(row._mapping) for row in await db.fetch_all(statement, params or None)]
            async with db.write():
                await db.execute(statement, params or None)
            return []
        finally:
            await db.disconnect()

    return asyncio.run(go())


class LiveServer:
    """The application served by uvicorn on loopback, in a thread of the test process."""

    def __init__(self, settings: Any, port: int | None = None, *, http: str = "auto") -> None:
        import uvicorn

        from petition.app import create_app
        from petition.server import uvicorn_config

        self.settings = settings
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.app = create_app(settings)
        # The configuration `petition serve` runs (read deadlines, the reverse proxy setting).
        config = uvicorn_config(
            self.app, settings, host="127.0.0.1", port=self.port, http=http, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self._run, daemon=True)

    @property
    def loop(self) -> Any:
        """The server's event loop, for queries a test runs on the app's own database."""
        return self._loop

    @property
    def services(self) -> Any:
        return self.app.state.services

    def _run(self) -> None:
        import asyncio

        self._loop = asyncio.new_event_loop()
        try:
            self._loop.run_until_complete(self.server.serve())
        finally:
            self._loop.close()

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


#: For tests whose outcome does not depend on the database backend (rendering and scoring emails,
#: a request cut off before any handler, the process pools): scripts/test runs the suite once per
#: backend, and these need to run only once, in the SQLite pass.
sqlite_pass_only = pytest.mark.skipif(
    os.environ.get("PETITION_TEST_DATABASE", "sqlite").strip() not in ("", "sqlite"),
    reason="does not depend on the database backend: runs in the SQLite pass of scripts/test only",
)
