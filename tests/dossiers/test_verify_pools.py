"""What an upload to /verify may cost: a limit per client, its own process, a deadline,
and no process left behind when the app stops."""

from __future__ import annotations

import os
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import psutil
from starlette.testclient import TestClient

from petition.app import create_app
from petition.dossiers import render_pool
from petition.settings import Settings
from tests.conftest import BASE_URL
from tests.support import csrf_from, sqlite_pass_only, wait_for

#: A PDF pyHanko reads at once: it holds no signature, so the page calls it unreadable.
SMALL = b"%PDF-1.7\n%%EOF\n"


def form_fields_pdf(count: int) -> bytes:
    """A valid PDF whose form holds `count` text fields, all in one compressed object stream:
    a few kB to send that cost pyHanko seconds to read (3,000 fields: ~36 kB, ~14 s of CPU).

    For each object it resolves, pyHanko decodes the object stream again and reads its header
    from the start, so the cost grows with the square of the fields (1,000: ~1.8 s). A file
    that costs as much through its size alone (`count` plain objects) took 4.5 MB for ~3 s:
    sending it took part of the deadline the test measures."""
    bodies = [
        b"<< /Type /Catalog /Pages 2 0 R /AcroForm << /Fields ["
        + b" ".join(b"%d 0 R" % (i + 4) for i in range(count))
        + b"] >> >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >>",
        *(b"<< /FT /Tx /T (f%d) >>" % i for i in range(count)),
    ]
    header, data = [], bytearray()
    for number, body in enumerate(bodies, start=1):
        header.append(b"%d %d" % (number, len(data)))
        data += body + b"\n"
    head = b" ".join(header) + b"\n"
    packed = zlib.compress(head + bytes(data), 9)
    stream = len(bodies) + 1  # the object stream's number; the cross-reference stream's is the next
    out = bytearray(b"%PDF-1.7\n")
    stream_at = len(out)
    out += b"%d 0 obj\n<< /Type /ObjStm /N %d /First %d /Filter /FlateDecode /Length %d >>\nstream\n" % (
        stream,
        len(bodies),
        len(head),
        len(packed),
    )
    out += packed + b"\nendstream\nendobj\n"
    xref_at = len(out)
    # Cross-reference stream rows of 1 + 4 + 3 bytes: type 2 (in the object stream, at an
    # index), type 1 (at an offset), type 0 (object 0, free).
    rows = [b"\x00" * 5 + b"\x00\xff\xff"]
    rows += [b"\x02" + stream.to_bytes(4, "big") + i.to_bytes(3, "big") for i in range(len(bodies))]
    rows += [b"\x01" + at.to_bytes(4, "big") + b"\x00\x00\x00" for at in (stream_at, xref_at)]
    table = zlib.compress(b"".join(rows), 9)
    out += b"%d 0 obj\n<< /Type /XRef /Size %d /W [1 4 3] /Root 1 0 R /Filter /FlateDecode /Length %d >>\n" % (
        stream + 1,
        stream + 2,
        len(table),
    )
    out += b"stream\n" + table + b"\nendstream\nendobj\nstartxref\n%d\n%%%%EOF\n" % xref_at
    return bytes(out)


def upload(client: TestClient, data: bytes, token: str | None = None) -> Any:
    token = token or csrf_from(client.get("/verify").text)
    return client.post(
        "/verify", data={"csrf_token": token}, files={"dossier": ("dossier.pdf", data, "application/pdf")}
    )


def meet(directory: str, expected: int, wait: float) -> bool:
    """Run in the dossier pool: True when `expected` different processes got here within `wait`
    seconds of each other, i.e. that many of the pool's processes were free at once."""
    Path(directory, str(os.getpid())).touch()
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if len(os.listdir(directory)) >= expected:
            return True
        time.sleep(0.01)
    return False


def all_render_processes_free(directory: Path, wait: float = 2.5) -> bool:
    directory.mkdir()
    workers = render_pool.pool_workers()
    futures = [render_pool.pool().submit(meet, str(directory), workers, wait) for _ in range(workers)]
    return all(future.result(timeout=60) for future in futures)


def test_verify_uploads_are_limited_per_client(make_site: Any) -> None:
    site = make_site(ip="203.0.113.7", rate_limit_verify=2)
    for _ in range(2):
        assert upload(site.client, SMALL).status_code == 200
    refused = upload(site.client, SMALL)
    assert refused.status_code == 429
    assert 0 < int(refused.headers["Retry-After"]) <= 3600
    assert "Too many files checked" in refused.text and "try again in 60 minutes" in refused.text
    assert 'for="dossier"' in refused.text  # the form is still there, for a digest
    # Digests typed in are not uploads: not limited.
    token = csrf_from(site.client.get("/verify").text)
    assert site.client.post("/verify", data={"csrf_token": token, "digest": "0" * 64}).status_code == 200
    # Another client is counted on its own; a trusted address is not counted.
    assert upload(make_site(ip="198.51.100.9", rate_limit_verify=2).client, SMALL).status_code == 200
    trusted = make_site(ip="192.0.2.10", rate_limit_verify=2, trusted_ips="192.0.2.0/24").client
    for _ in range(3):
        assert upload(trusted, SMALL).status_code == 200


@sqlite_pass_only  # the verification pool's processes, whichever database the site uses
def test_a_slow_pdf_is_checked_in_its_own_pool_and_times_out(make_site: Any, tmp_path: Path) -> None:
    client = make_site(verify_timeout=1).client
    assert upload(client, SMALL).status_code == 200  # the checking process runs
    render_pool.start_pool()
    assert all_render_processes_free(tmp_path / "before", wait=10)  # and ready
    slow = form_fields_pdf(3_000)  # ~36 kB; ~14 s of CPU to parse: far past the deadline
    token = csrf_from(client.get("/verify").text)
    answer: dict[str, Any] = {}

    def post() -> None:
        started = time.monotonic()
        answer["response"] = upload(client, slow, token)
        answer["seconds"] = time.monotonic() - started

    thread = threading.Thread(target=post)
    thread.start()
    time.sleep(0.5)
    # While the slow file is being checked, every process of the dossier pool is free.
    free_meanwhile = all_render_processes_free(tmp_path / "during")
    thread.join(60)
    assert free_meanwhile
    response = answer["response"]
    assert response.status_code == 200
    assert '<section class="verdict verdict-unreadable"' in response.text
    assert "too complex to be checked here" in response.text
    assert answer["seconds"] < 1 + 4, answer["seconds"]
    # Its CPU cap ends the check soon after: the next file is checked again.
    wait_for(lambda: upload(client, SMALL).status_code == 200, timeout=20, interval=0.5)


def test_an_upload_waits_for_the_checking_process_at_most_its_timeout(make_site: Any) -> None:
    client = make_site(verify_timeout=1).client
    slow = form_fields_pdf(3_000)
    token = csrf_from(client.get("/verify").text)
    responses: list[Any] = []
    threads = [threading.Thread(target=lambda: responses.append(upload(client, slow, token))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    by_status = {response.status_code: response for response in responses}
    assert sorted(by_status) == [200, 503]
    assert "too complex to be checked here" in by_status[200].text
    busy = by_status[503]
    assert "The check is busy" in busy.text and int(busy.headers["Retry-After"]) >= 1


def _pool_processes(me: psutil.Process) -> list[psutil.Process]:
    """Processes forked by the multiprocessing forkserver (itself a child of this process)."""
    found = []
    for process in me.children(recursive=True):
        try:
            if process.ppid() != me.pid:
                found.append(process)
        except psutil.NoSuchProcess:  # a checking process that just finished its one check
            continue
    return found


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


@sqlite_pass_only  # the pools' processes, whichever database the site uses
def test_no_pool_process_outlives_the_app(settings: Settings) -> None:
    me = psutil.Process()
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        assert upload(client, SMALL).status_code == 200  # the verification pool
        render_pool.start_pool()  # the dossier pool, one of its processes busy for a minute
        busy = render_pool.pool().submit(time.sleep, 60)
        wait_for(busy.running)
        processes = wait_for(
            lambda: (found := _pool_processes(me)) and len(found) >= render_pool.pool_workers() and found
        )
        stopping = time.monotonic()
    assert time.monotonic() - stopping < 20  # the busy one was ended, not waited for

    def all_gone() -> bool:
        return not any(_running(p) for p in processes)

    wait_for(all_gone, timeout=10)
