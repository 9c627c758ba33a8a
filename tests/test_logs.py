"""LOG_FORMAT=json: one JSON object per line, petition's and uvicorn's, each request's lines with its id."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time

import httpx2
import pytest
from starlette.testclient import TestClient

from petition.logs import JsonFormatter, RequestIdFilter, RequestIdMiddleware
from tests.support import PROJECT_ROOT, LiveServer, free_port

log = logging.getLogger("petition.test")
SLUG = "protect-deserters"


def _logging_app(lines: list[str]):
    """An ASGI app that logs while it handles the request, through the JSON formatter."""
    handler = logging.Handler()
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    handler.emit = lambda record: lines.append(handler.format(record))  # type: ignore[method-assign]

    async def app(scope, receive, send):
        log.addHandler(handler)
        try:
            log.warning("handling %s", scope["path"])
        finally:
            log.removeHandler(handler)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return RequestIdMiddleware(app)


def test_each_line_a_request_logs_carries_the_id_its_response_returns():
    lines: list[str] = []
    client = TestClient(_logging_app(lines))  # no `with`: this app has no lifespan
    first, second = client.get("/one"), client.get("/two")
    ids = [first.headers["x-request-id"], second.headers["x-request-id"]]
    assert ids[0] != ids[1] and all(len(i) == 32 for i in ids)
    entries = [json.loads(line) for line in lines]
    assert [(e["message"], e["request_id"], e["level"], e["logger"]) for e in entries] == [
        ("handling /one", ids[0], "WARNING", "petition.test"),
        ("handling /two", ids[1], "WARNING", "petition.test"),
    ]


def test_a_client_cannot_choose_its_request_id(client):
    # Straight from the client, not through a proxy of PROXY_IPS: a new id.
    answer = client.get("/healthz", headers={"X-Request-ID": "chosen-by-the-client-0001"})
    assert answer.headers["x-request-id"] != "chosen-by-the-client-0001"


@pytest.mark.parametrize(
    ("proxy_ips", "given", "kept"),
    [
        ("127.0.0.1", "0123456789abcdef0123456789abcdef", True),
        ("127.0.0.1", "not well-formed", False),
        ("", "0123456789abcdef0123456789abcdef", False),
    ],
)
def test_the_proxys_request_id_is_kept_when_well_formed(database_url, tmp_path, proxy_ips, given, kept):
    from tests.conftest import make_settings

    server = LiveServer(make_settings(database_url, tmp_path / "data", None, proxy_ips=proxy_ips, run_worker=False))
    server.start()
    headers = {"X-Request-ID": given, "X-Forwarded-For": "192.0.2.1"}
    try:
        # The appeal page twice: rendered, then served from the page cache before routing.
        answers = [httpx2.get(server.url + path, headers=headers) for path in ["/healthz", *[f"/appeals/{SLUG}"] * 2]]
    finally:
        server.stop()
    for answer in answers:
        assert answer.status_code == 200
        assert (answer.headers["x-request-id"] == given) is kept
        assert len(answer.headers["x-request-id"]) == 32


def test_petition_serve_with_log_format_json_writes_only_json_lines(tmp_path):
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "DATABASE_", "PETITION_"))},
        "DATA_DIR": str(tmp_path / "data"),
        "LOG_FORMAT": "json",
        "BASE_URL": f"http://127.0.0.1:{port}",
        "PYTHONPATH": str(PROJECT_ROOT),  # this checkout's petition
    }
    command = [sys.executable, "-c", "from petition.cli import main; main()", "serve", "--port", str(port)]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx2.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline and process.poll() is None, "petition serve did not start"
            time.sleep(0.2)
        answer = httpx2.get(f"http://127.0.0.1:{port}/readyz", timeout=10)
        assert answer.headers["x-request-id"]
    finally:
        process.terminate()
        _out, err = process.communicate(timeout=30)
    lines = err.decode().splitlines()
    entries = [json.loads(line) for line in lines]  # every line is one JSON object
    loggers = {entry["logger"] for entry in entries}
    assert "uvicorn.error" in loggers  # "Started server process", "Uvicorn running on …"
    assert any(name.startswith("petition") for name in loggers)
    assert all({"time", "level", "logger", "message"} <= entry.keys() for entry in entries)


def test_a_forked_process_hands_out_random_bytes_of_its_own():
    # random_bytes keeps a pool of os.urandom's bytes: a worker forked from a process with a
    # pool must not hand out the same request ids and CSRF secrets as its parent.
    from petition.logs import random_bytes

    random_bytes(16)  # the parent's pool is filled
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child
        os.write(write, random_bytes(16))
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    childs = os.read(read, 16)
    os.close(read)
    assert len(childs) == 16 and childs != random_bytes(16)
