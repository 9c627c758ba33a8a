"""scripts/audit_log.py, the auditor anyone can run, against a live site: it passes on an honest
log and fails when a row is deleted behind the application's back or history is rewritten."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from petition.endorsements.states import EndorsementState
from petition.endorsements.tables import endorsements
from petition.transparency.tables import log_leaves
from tests.factories import DEMO_SLUG, add_endorsements

ROOT = Path(__file__).resolve().parents[2]
AUDITOR = ROOT / "scripts" / "audit_log.py"


def on_server(server: Any, work: Any) -> Any:
    return asyncio.run_coroutine_threadsafe(work(), server.loop).result(30)


def audit(server: Any, state: Path) -> subprocess.CompletedProcess[str]:
    # Its own interpreter, no petition on the path: the script stands alone.
    return subprocess.run(
        [sys.executable, "-I", str(AUDITOR), "--url", server.url, "--state", str(state)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def settled(server: Any) -> None:
    """Wait until the worker has appended everything queued."""
    deadline = time.monotonic() + 10
    while on_server(server, lambda: server.services.db.fetch_val(sa.text("SELECT count(*) FROM public_record_events"))):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)


def test_the_standalone_auditor(make_live: Any, database_url: str, tmp_path: Path):
    server = make_live()
    services = server.services
    ids = add_endorsements(
        database_url,
        rows=[
            {"organisation_name": "Honest Group", "city": "Lyon", "country": "FR", "visibility": "public"},
            {"organisation_name": "Группа в изгнании", "city": "Vilnius", "country": "BY", "visibility": "anonymous"},
            {"organisation_name": "Another Group", "city": "Kyiv", "country": "UA", "visibility": "public"},
        ],
        appeal=DEMO_SLUG,
        state=EndorsementState.PENDING.value,
    )

    async def confirm_all() -> None:
        for endorsement_id in ids:
            row = await services.db.fetch_one(endorsements.select().where(endorsements.c.id == endorsement_id))
            await services.lifecycle.confirm(endorsement_id=endorsement_id, nonce=row["token_nonce"])

    on_server(server, confirm_all)
    settled(server)
    state = tmp_path / "audit-state.json"
    first = audit(server, state)
    assert first.returncode == 0, first.stdout + first.stderr
    assert "audit: ok" in first.stdout and "2 named organisations listed" in first.stdout
    kept = json.loads(state.read_text())
    assert kept["size"] >= 3
    # The command line runs the same auditor from the installed package.
    cli = subprocess.run(
        [sys.executable, "-m", "petition.cli", "log", "audit", "--url", server.url],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
    )
    assert cli.returncode == 0 and "audit: ok" in cli.stdout, cli.stdout + cli.stderr

    # An honest change: the next run checks consistency with the kept checkpoint, and passes.
    async def withdraw() -> None:
        row = await services.db.fetch_one(endorsements.select().where(endorsements.c.id == ids[2]))
        await services.lifecycle.withdraw(endorsement_id=ids[2], nonce=row["token_nonce"])

    on_server(server, withdraw)
    settled(server)
    second = audit(server, state)
    assert second.returncode == 0, second.stdout + second.stderr
    assert "1 named organisations listed" in second.stdout

    # A row deleted behind the application's back: the list and the log disagree.
    async def delete_behind_its_back() -> None:
        async with services.db.write():
            await services.db.execute(endorsements.delete().where(endorsements.c.id == ids[0]))
        services.public_cache.invalidate()

    on_server(server, delete_behind_its_back)
    tampered = audit(server, state)
    assert tampered.returncode == 1
    assert "listed in the log, missing from the public list" in tampered.stdout and "Honest Group" in tampered.stdout

    # History rewritten under a kept checkpoint: an earlier entry's text changed in the database.
    async def rewrite() -> None:
        async with services.db.write():
            await services.db.execute(
                log_leaves.update()
                .where(log_leaves.c.idx == kept["size"] - 1)
                .values(leaf=sa.func.replace(log_leaves.c.leaf, "Kyiv", "Kiev"))
            )

    on_server(server, rewrite)
    rewritten = audit(server, state)
    assert rewritten.returncode == 1
    assert "do not make the checkpoint's root" in rewritten.stdout
