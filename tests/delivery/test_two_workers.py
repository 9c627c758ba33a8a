"""Two `petition worker` processes on one PostgreSQL database never send an email twice."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TEST_SECRET, make_settings
from tests.delivery.test_outbox_faults import queue
from tests.support import run_sql, wait_for

WORKER = Path(sys.executable).parent / "petition"


@pytest.mark.skipif(
    not os.environ.get("PETITION_TEST_DATABASE", "").startswith("postgresql://"),
    reason="several workers are the PostgreSQL deployment (SQLite runs one in-process)",
)
def test_two_worker_processes_deliver_500_emails_exactly_once(database_url, tmp_path, smtp):
    settings = make_settings(database_url, tmp_path / "data", smtp)
    addresses = [f"reader{i}@workers.example" for i in range(500)]
    queue(database_url, settings, addresses)
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SECRET_KEY": TEST_SECRET,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp.port),
        "DATA_DIR": str(tmp_path / "data"),
        "WORKER_POLL_INTERVAL": "0.1",
        "PURGE_INTERVAL": "3600",
    }
    logs = [tmp_path / f"worker{i}.log" for i in range(2)]
    workers = []
    for log in logs:
        with log.open("wb") as sink:
            workers.append(
                subprocess.Popen([str(WORKER), "worker"], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=sink)
            )
    try:
        wait_for(lambda: len(smtp.messages) >= 500, timeout=180, interval=0.2)
        wait_for(
            lambda: run_sql(database_url, "SELECT count(*) AS n FROM outbox WHERE state = 'sent'")[0]["n"] == 500,
            timeout=30,
        )
    finally:
        for process in workers:
            process.send_signal(signal.SIGTERM)
        for process in workers:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
    assert all(p.returncode == 0 for p in workers), [log.read_text()[-2000:] for log in logs]
    assert len(smtp.messages) == 500
    assert sorted(m["To"] for m in smtp.messages) == sorted(addresses)
    assert len({m["Message-ID"] for m in smtp.messages}) == 500
    # Both processes did part of the work: they really ran side by side.
    by_worker = run_sql(database_url, "SELECT claimed_by, count(*) AS n FROM outbox GROUP BY claimed_by")
    assert len(by_worker) == 2, (by_worker, [log.read_text()[:3000] for log in logs])
