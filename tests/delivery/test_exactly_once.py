"""Each email reaches the relay once when the relay is slower than the lease, and when the database
goes away just after the relay took one (PostgreSQL: the deployment with several workers).

The relay is a real SMTP server counting Message-IDs; the database outage is a TCP proxy on
loopback cut and reopened by the test (the shared PostgreSQL server is never restarted).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from tests.conftest import TEST_SECRET, make_settings
from tests.delivery.test_database_down import CuttableProxy
from tests.delivery.test_outbox_faults import queue
from tests.support import PROJECT_ROOT, run_sql, wait_for

WORKER = Path(sys.executable).parent / "petition"

pytestmark = pytest.mark.skipif(
    not os.environ.get("PETITION_TEST_DATABASE", "").startswith("postgresql://"),
    reason="several workers and a database that goes away are the PostgreSQL deployment",
)


def message_ids(smtp) -> Counter[str]:
    with smtp.sink.lock:
        return Counter(str(m["Message-ID"]) for m in smtp.messages)


def states(database_url: str) -> Counter[str]:
    return Counter(r["state"] for r in run_sql(database_url, "SELECT state FROM outbox"))


def test_a_relay_slower_than_the_lease_gets_each_email_once_from_two_workers(database_url, tmp_path, smtp):
    # Each message takes the relay 4 s; a claim's lease is 3 s. A worker that did not renew its
    # claim would see the other take the email over mid-send and send it too.
    settings = make_settings(database_url, tmp_path / "data", smtp)
    addresses = [f"slow{i}@relay.example" for i in range(6)]
    queue(database_url, settings, addresses)
    smtp.sink.delay = 4.0
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "DATA_DIR": str(tmp_path / "data"),
        "WORKER_POLL_INTERVAL": "0.1",
        "PURGE_INTERVAL": "3600",
        "OUTBOX_LEASE_SECONDS": "3",
        # This checkout's code, whichever checkout the virtualenv's `petition` was installed from.
        "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT_ROOT), os.environ.get("PYTHONPATH")])),
    }
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = []
    for log in logs:
        with log.open("wb") as sink:
            workers.append(
                subprocess.Popen([str(WORKER), "worker"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=sink)
            )
    try:
        # Until all are recorded as sent, or (what a worker without fencing does) one arrived twice.
        wait_for(
            lambda: states(database_url)["sent"] == len(addresses) or max(message_ids(smtp).values(), default=0) > 1,
            timeout=120,
            interval=0.2,
        )
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
    # A send still under way at the relay when the workers stopped would land within its delay.
    time.sleep(smtp.sink.delay + 1)
    ids = message_ids(smtp)
    assert sorted(ids.values()) == [1] * len(addresses), ([log.read_text()[-3000:] for log in logs], ids)
    assert sorted(m["To"] for m in smtp.messages) == sorted(addresses)
    assert states(database_url) == {"sent": len(addresses)}


def test_a_database_outage_while_recording_a_send_delays_the_rest_by_seconds_not_the_lease(
    make_live, database_url, smtp
):
    parts = urlsplit(database_url)
    proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    proxy.start()
    proxied = urlunsplit((parts.scheme, f"{parts.username}@127.0.0.1:{proxy.port}", parts.path, "", ""))
    settings = make_settings(database_url, Path("unused"), smtp)
    addresses = [f"outage{i}@relay.example" for i in range(8)]
    queue(database_url, settings, addresses)
    cut = threading.Event()

    def cut_at_the_third(_message) -> None:
        # The relay has taken the third email; the database goes away before the worker records it.
        if len(smtp.messages) == 3 and not cut.is_set():
            proxy.cut()
            cut.set()

    smtp.sink.on_accept = cut_at_the_third
    make_live(database_url=proxied, outbox_lease_seconds=300)
    wait_for(cut.is_set, timeout=30)
    time.sleep(2)  # the worker meets the outage: its recording of the third send fails, and its claims
    assert len(smtp.messages) == 3
    proxy.start()
    # Back: the rest go out within seconds, far from the 300 s lease.
    wait_for(lambda: len(smtp.messages) >= len(addresses), timeout=30, interval=0.1)
    wait_for(lambda: states(database_url) == {"sent": len(addresses)}, timeout=30, interval=0.1)
    # And the one the relay had taken when the database went away was not sent again.
    assert sorted(message_ids(smtp).values()) == [1] * len(addresses)
    assert sorted(m["To"] for m in smtp.messages) == sorted(addresses)
