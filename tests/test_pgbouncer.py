"""The application through PgBouncer (Debian's package) in transaction pooling mode.

Transaction pooling hands each transaction whichever server connection is free, so nothing
may outlive a transaction on its connection: asyncpg's named, cached prepared statements do
(PgBouncer before 1.21 does not track them). `?statement_cache_size=0` in DATABASE_URL is what
makes it work; docs/operations.md ("PgBouncer") says so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from starlette.testclient import TestClient

from petition.app import create_app
from petition.migrations.runner import upgrade
from tests.conftest import BASE_URL, Site, make_settings
from tests.support import SMTPServer, db_rows, free_port, links, wait_for, wait_for_mail


def _pgbouncer_binary() -> str:
    found = shutil.which("pgbouncer") or shutil.which("pgbouncer", path="/usr/sbin")
    if found is None:
        message = "pgbouncer is not installed (Debian: apt-get install pgbouncer; scripts/bootstrap test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}, and CI needs this test to run")
        pytest.skip(message)
    return found


@pytest.fixture
def pgbouncer(database_url: str) -> Iterator[str]:
    """A private PgBouncer on a free loopback port in front of this run's PostgreSQL: the URL of
    this run's database through it."""
    if not database_url.startswith("postgresql://"):
        pytest.skip("PgBouncer fronts PostgreSQL; this runs in the PostgreSQL pass")
    binary = _pgbouncer_binary()
    server = urlsplit(database_url)
    user = server.username or "postgres"
    port = free_port()
    # Not under pytest's temporary directory: PgBouncer, which will not run as root, may run as
    # `nobody` here, and must reach its files.
    directory = Path(tempfile.mkdtemp(prefix="petition-pgbouncer-"))
    (directory / "userlist.txt").write_text(f'"{user}" "{server.password or ""}"\n')
    (directory / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"* = host={server.hostname or '127.0.0.1'} port={server.port or 5432}\n"
        "[pgbouncer]\n"
        "listen_addr = 127.0.0.1\n"
        f"listen_port = {port}\n"
        "unix_socket_dir =\n"
        f"auth_type = {'trust' if not server.password else 'plain'}\n"
        f"auth_file = {directory / 'userlist.txt'}\n"
        "pool_mode = transaction\n"
        # Two server connections for the whole app: its transactions take turns on them, as
        # behind a busy PgBouncer, so whatever outlives a transaction meets another client.
        "default_pool_size = 2\n"
        "max_client_conn = 100\n"
        f"logfile = {directory / 'pgbouncer.log'}\n"
    )
    args = [binary, str(directory / "pgbouncer.ini")]
    if os.geteuid() == 0:  # PgBouncer refuses to run as root
        args[1:1] = ["-u", "nobody"]
        for path in (directory, *directory.iterdir()):
            shutil.chown(path, "nobody")
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: _listening(port) or process.poll() is not None, timeout=20)
        if process.poll() is not None:
            assert process.stderr is not None
            pytest.fail(f"pgbouncer did not start: {process.stderr.read()}")
        login = f"{user}:{server.password}" if server.password else user
        yield f"postgresql://{login}@127.0.0.1:{port}{server.path}?statement_cache_size=0"
    finally:
        process.terminate()
        process.wait(20)
        if process.stderr is not None:
            process.stderr.close()
        shutil.rmtree(directory, ignore_errors=True)


def _listening(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def test_submit_confirm_and_list_through_pgbouncer_transaction_pooling(
    pgbouncer: str, database_url: str, tmp_path: Path, smtp: SMTPServer
):
    # What `petition serve` does first on every start: finds the schema at head, through PgBouncer.
    upgrade(pgbouncer)
    settings = make_settings(pgbouncer, tmp_path / "data", smtp, database_pool_size="4")
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        site = Site(client)
        for n in range(6):
            email = f"office{n}@org{n}.example"
            assert site.endorse(organisation_name=f"Org {n}", contact_email=email).status_code == 303
            [message] = wait_for_mail(smtp, email)
            [link] = links(message, BASE_URL)
            assert site.confirm(link).status_code == 303
        listing = client.get("/appeals/protect-deserters/signatories")
        assert listing.status_code == 200
        assert all(f"Org {n}" in listing.text for n in range(6))
        assert client.get("/healthz").status_code == 200
    rows = db_rows(database_url, "SELECT state, listed_at IS NOT NULL AS listed FROM endorsements")
    assert rows == [{"state": "confirmed", "listed": True}] * 6
