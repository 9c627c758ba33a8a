"""Open data under attack: the CSV streams without stalling the site, revalidations cost no list,
downloads are limited per client, links come from BASE_URL, formula look-alikes are neutralised."""

from __future__ import annotations

import asyncio
import csv
import hashlib
import http.client
import io
import json
import socket
import threading
import time
import tracemalloc
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from petition.publish.cache import PublicCache
from tests.conftest import make_settings
from tests.factories import add_endorsements, forget_cached
from tests.publish.bulk import COLUMNS, expected_rows, insert_endorsements, old_format_csv
from tests.support import LiveServer, SMTPServer

SLUG = "protect-deserters"
CSV = f"/appeals/{SLUG}/endorsements.csv"
JSON = f"/api/appeals/{SLUG}/endorsements"


class Statements:
    """Every statement the app's database runs, as SQL text: the seam that tells whether a list was read."""

    def __init__(self, db: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        self.seen: list[str] = []
        for name in ("fetch_all", "fetch_one", "fetch_val", "execute", "fetch_values"):
            original = getattr(db, name, None)
            if original is not None:  # fetch_values: rows as tuples, for long reads
                monkeypatch.setattr(db, name, self._recording(original))

    def _recording(self, original: Any) -> Any:
        async def run(query: Any, *args: Any, **kwargs: Any) -> Any:
            self.seen.append(str(query))
            return await original(query, *args, **kwargs)

        return run

    def list_reads(self) -> list[str]:
        """Statements that read named organisations (the list itself, not its count or version)."""
        return [sql for sql in self.seen if "endorsements.organisation_name" in sql]


def test_a_csv_revalidation_is_answered_without_building_the_list(make_site, database_url, monkeypatch):
    client = make_site(rate_limit_export=100, run_worker=False).client
    insert_endorsements(database_url, 3000)
    services = client.app.state.services
    # A public cache whose entries outlive a slow test run (the app's keeps them 5 s).
    services.public_cache = PublicCache(ttl=600, anonymous_count_threshold=3)
    statements = Statements(services.db, monkeypatch)

    first = client.get(CSV)
    assert first.status_code == 200
    etag = first.headers["etag"]
    assert statements.list_reads(), "a download reads the list"

    for path, tag in ((CSV, etag), (JSON, client.get(JSON).headers["etag"])):
        statements.seen.clear()
        again = client.get(path, headers={"If-None-Match": tag})
        assert again.status_code == 304 and again.content == b""
        assert again.headers["etag"] == tag
        assert statements.list_reads() == [], f"{path}: the revalidation read the list"
        assert len(statements.seen) <= 2, statements.seen  # at most the list's version (and the appeal)
        # Once the list's version is cached, a revalidation reads nothing at all.
        statements.seen.clear()
        assert client.get(path, headers={"If-None-Match": tag}).status_code == 304
        assert statements.seen == []

    # HEAD says what a GET would carry, without reading (or counting) a download.
    statements.seen.clear()
    head = client.head(CSV)
    assert head.status_code == 200 and head.content == b""
    assert head.headers["etag"] == etag and head.headers["content-type"].startswith("text/csv")
    assert statements.list_reads() == []

    # A change to the list changes the tag: the next revalidation gets the new list.
    add_endorsements(client, organisation_name="Newly Listed Group", country="DE")
    changed = client.get(CSV, headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["etag"] != etag
    assert "Newly Listed Group" in changed.text.splitlines()[1]


def _raw_download(
    client: Any, path: str, query: bytes = b"", *, leave_after: int | None = None
) -> tuple[int, list[int], str]:
    """GET `path` straight through the app's ASGI interface on its own loop, keeping no body:
    (peak of memory allocated meanwhile, size of each body message, SHA-256 of the body).
    `leave_after`: the client goes away after that many body messages."""
    app = client.app

    async def run() -> tuple[int, list[int], str]:
        sizes: list[int] = []
        digest = hashlib.sha256()
        gone = asyncio.Event()
        requested = False

        async def receive() -> dict[str, Any]:
            nonlocal requested
            if not requested:
                requested = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await gone.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                assert message["status"] == 200, message
            elif message["type"] == "http.response.body":
                digest.update(message.get("body", b""))
                sizes.append(len(message.get("body", b"")))
                if not message.get("more_body") or len(sizes) == leave_after:
                    gone.set()

        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query,
            "headers": [(b"host", b"testserver")],
            "client": ("192.0.2.10", 40000),
            "server": ("testserver", 80),
            "state": {"services": app.state.services},
        }
        tracemalloc.start()
        try:
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            await app(scope, receive, send)
            peak = tracemalloc.get_traced_memory()[1] - before
        finally:
            tracemalloc.stop()
        return peak, sizes, digest.hexdigest()

    return client.portal.call(run)  # type: ignore[no-any-return]


def test_a_download_stops_reading_the_list_when_its_client_goes_away(make_site, database_url, monkeypatch):
    client = make_site(rate_limit_export=100, run_worker=False).client
    insert_endorsements(database_url, 5000)
    forget_cached(client)
    statements = Statements(client.app.state.services.db, monkeypatch)
    _peak, sizes, _digest = _raw_download(client, CSV)
    whole = len(statements.list_reads())
    assert whole > 10
    statements.seen.clear()
    _peak, sizes, _digest = _raw_download(client, CSV, leave_after=2)
    assert len(statements.list_reads()) <= 3 < whole, statements.list_reads()


def test_the_csv_streams_every_row_in_order_with_constant_memory(make_site, database_url):
    client = make_site(rate_limit_export=100, run_worker=False).client
    insert_endorsements(database_url, 20_000)
    forget_cached(client)
    rows = expected_rows(database_url)
    assert len(rows) > 18_000
    expected = old_format_csv(rows)

    # Byte for byte what the handler built in one piece before: header, order, quoting, prefixes.
    response = client.get(CSV)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8; header=present"
    assert response.headers["content-disposition"] == f'attachment; filename="{SLUG}-endorsements.csv"'
    assert response.content == expected

    # A country's list (about a sixth) and the whole list take about the same memory to serve.
    small_peak, small_sizes, _ = _raw_download(client, CSV, b"country=FR")
    peak, sizes, digest = _raw_download(client, CSV)
    assert digest == hashlib.sha256(expected).hexdigest()
    assert sum(sizes) == len(expected)
    assert len([s for s in sizes if s]) > 20, "the body comes in chunks, not in one piece"
    assert max(sizes) < len(expected) / 20
    # Less than the body itself (building it in one piece takes the rows, the text and its
    # bytes: several times the body), and no more for 20,000 rows than for a sixth of them.
    assert peak < len(expected), (peak, len(expected))
    assert peak < 1.5 * small_peak + 256 * 1024, (peak, small_peak)


# --- three downloads at once, on a live server ------------------------------------------------------

LIVE_ROWS = 40_000
PROBES = 8


@pytest.fixture
def live(database_url: str, tmp_path: Path, smtp: SMTPServer) -> Iterator[LiveServer]:
    # Large enough that building a download in one piece stalls the loop for long (about a
    # second on PostgreSQL, more on SQLite, on the 2-core development machine).
    insert_endorsements(database_url, LIVE_ROWS)
    settings = make_settings(database_url, tmp_path / "data", smtp, rate_limit_export=100, run_worker=False)
    server = LiveServer(settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _get(url: str, timeout: float = 60) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - the test's own server
        return response.read()  # type: ignore[no-any-return]


def test_three_csv_downloads_at_once_keep_healthz_responsive(live):
    healthz = live.url + "/healthz"
    _get(healthz)
    downloads: list[bytes] = []
    latencies: list[float] = []
    # Several probes a tenth of a second apart while three downloads run (more rounds if the
    # downloads end first); a stalled loop shows in every probe, the machine's noise in few.
    while len(latencies) < PROBES and len(downloads) < 9:
        results: list[bytes] = []

        def download() -> None:
            results.append(_get(live.url + CSV))  # noqa: B023 - each round's own list

        threads = [threading.Thread(target=download) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.05)
        while len(latencies) < PROBES and all(thread.is_alive() for thread in threads):
            started = time.perf_counter()
            assert json.loads(_get(healthz, timeout=30)) == {"status": "ok"}
            latencies.append(time.perf_counter() - started)
            time.sleep(0.1)
        for thread in threads:
            thread.join()
        assert len(results) == 3
        downloads += results
    assert latencies and max(latencies) < 0.5, f"/healthz took up to {max(latencies):.2f} s during three downloads"
    assert len(latencies) == PROBES, "the downloads ended before /healthz was asked often enough"

    # Complete and correct: each download is the same list as the JSON pages, row for row.
    assert len(set(downloads)) == 1
    records = list(csv.reader(io.StringIO(downloads[0].decode("utf-8"), newline="")))
    assert records[0] == list(COLUMNS)
    items: list[dict[str, Any]] = []
    url: str | None = live.url + JSON
    while url:
        page = json.loads(_get(url))
        items += page["items"]
        url = page["next"] and page["next"].replace(live.settings.base_url, live.url)
    assert len(items) > LIVE_ROWS * 0.9
    unprefixed = [[cell[1:] if cell.startswith("'") else cell for cell in record] for record in records[1:]]
    as_csv = {True: "true", False: "false", None: ""}  # booleans as the JSON says them
    assert unprefixed == [[as_csv.get(item[c], item[c]) for c in COLUMNS] for item in items]


def test_a_slow_download_is_not_cut_off_by_the_read_deadline(database_url, tmp_path, smtp):
    """A downloading client sends nothing for as long as it reads: that is not a slow request body.

    REQUEST_READ_TIMEOUT (the deadline for a request's body) must not end a download that
    lasts longer; Starlette's own StreamingResponse would end it there.
    """
    insert_endorsements(database_url, LIVE_ROWS)
    settings = make_settings(
        database_url, tmp_path / "data", smtp, rate_limit_export=100, run_worker=False, request_read_timeout=0.3
    )
    server = LiveServer(settings)
    server.start()
    try:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
        connection.connect()
        # A small window: the server cannot write the whole list into the sockets' buffers at once.
        connection.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
        connection.request("GET", CSV)
        response = connection.getresponse()
        assert response.status == 200
        body = bytearray()
        # Slowly at first: half a second (past the deadline) for the first 320 kB of 4 MB.
        for _ in range(10):
            body += response.read(32768)
            time.sleep(0.05)
        body += response.read()
        connection.close()
    finally:
        server.stop()
    assert bytes(body) == old_format_csv(expected_rows(database_url))


# --- the limit, the next link, the formula guard -----------------------------------------------------


def test_csv_downloads_are_limited_per_client(make_site, database_url):
    insert_endorsements(database_url, 1200)
    visitor = make_site(ip="203.0.113.7", rate_limit_export=2).client
    first = visitor.get(CSV)
    assert first.status_code == 200
    etag = first.headers["etag"]
    # Revalidations are answered and never count.
    for _ in range(5):
        assert visitor.get(CSV, headers={"If-None-Match": etag}).status_code == 304
    assert visitor.get(CSV, headers={"If-None-Match": '"stale"'}).status_code == 200
    refused = visitor.get(CSV)
    assert refused.status_code == 429
    assert int(refused.headers["retry-after"]) > 0
    assert refused.headers["content-type"].startswith("text/plain")
    assert "Too many downloads" in refused.text
    assert refused.headers["cache-control"] == "no-store"
    # Still answered: a revalidation, and a short list (a few rows cost what a JSON page does).
    assert visitor.get(CSV, headers={"If-None-Match": etag}).status_code == 304
    add_endorsements(visitor, organisation_name="Small Country Group", country="LU")
    assert visitor.get(CSV, params={"country": "LU"}).status_code == 200

    # Another address has its own count; a trusted one has none.
    assert make_site(ip="203.0.113.8", rate_limit_export=2).client.get(CSV).status_code == 200
    trusted = make_site(ip="198.51.100.5", rate_limit_export=2, trusted_ips="198.51.100.0/24").client
    assert [trusted.get(CSV).status_code for _ in range(4)] == [200] * 4


def test_the_next_link_ignores_the_host_header(make_site, database_url):
    insert_endorsements(database_url, 1300)
    client = make_site(base_url="https://petition.example").client
    plain = client.get(JSON)
    forged = client.get(JSON, headers={"Host": "evil.example", "X-Forwarded-Host": "evil.example"})
    for response in (plain, forged):
        assert response.status_code == 200
        assert response.json()["next"] == f"https://petition.example/api/appeals/{SLUG}/endorsements?page=2"
    # One answer whatever the Host: a shared cache may hand it to anyone.
    assert forged.headers["etag"] == plain.headers["etag"]
    assert forged.content == plain.content

    filtered = client.get(
        JSON, params={"country": "de", "type": "peace", "page": "1"}, headers={"Host": "evil.example"}
    ).json()
    assert filtered["next"] == (
        f"https://petition.example/api/appeals/{SLUG}/endorsements?country=DE&type=peace&page=2"
    )
    beyond = client.get(JSON, params={"page": "50"}, headers={"Host": "evil.example"}).json()
    assert beyond == {"items": [], "next": None}


#: Cells a spreadsheet would run, each in its own country's row.
FORMULAS = {
    "DE": '\uff1dHYPERLINK("http://evil.example","click")',  # full-width =
    "FR": "\uff0b49 30 1234",  # full-width +
    "IT": "\uff0dcmd|' /C calc'!A0",  # full-width -
    "ES": "\uff20SUM(1+1)",  # full-width @
    "NL": "\ufe66cmd",  # small =
    "BE": "\ufe62cmd",  # small +
    "AT": " =1+1",  # a space first: a spreadsheet that trims spaces on import would run it
    "CH": "\u3000\uff1d1+1",  # an ideographic space, then a full-width =
    "PL": "\tTabbed",
    "CZ": "\rReturn",
    "SE": "=\u0338cmd",  # an = that NFKC would compose into ≠: the spreadsheet still sees the =
    "DK": "\u00a0\uff0b1",  # a no-break space, then a full-width +
}


def test_full_width_formula_prefixes_are_neutralised(client):
    for country, value in FORMULAS.items():
        add_endorsements(client, organisation_name=value, country=country, city=value, website=value)
    add_endorsements(
        client, organisation_name="\uff30lain \uff27roup", country="LU", city="A=B", website="https://ok.example/?a=-1"
    )
    response = client.get(CSV)
    assert response.status_code == 200
    rows = {r["country"]: r for r in csv.DictReader(io.StringIO(response.text, newline=""))}
    for country, value in FORMULAS.items():
        for column in ("organisation_name", "city", "website"):
            # A leading ' makes it text; the text itself is kept as it was written.
            assert rows[country][column] == "'" + value, (country, column)
    # Look-alikes later in a cell, or a full-width letter first, are left alone.
    assert rows["LU"]["organisation_name"] == "\uff30lain \uff27roup"
    assert rows["LU"]["city"] == "A=B"
    assert rows["LU"]["website"] == "https://ok.example/?a=-1"
