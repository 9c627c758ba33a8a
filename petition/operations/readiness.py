"""Whether this process should be sent requests (`/readyz`), and what the operator should know.

"not ready" (503): this process cannot serve — the database does not answer, its schema is not
the one this code migrates to, or this process's submissions have been failing of late. A load
balancer takes it out of rotation and the others carry on.

"degraded" (200): something every process shares is wrong that no web process can mend — no
outbox worker has beaten while emails are due, or the oldest queued email has waited too long.
Taking every web process out of rotation for it would stop endorsements that are still stored
safely, so the status says it and monitoring alerts on it (docs/operations.md).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from petition.db import Database
from petition.endorsements.intake import IntakeHealth
from petition.migrations.runner import head_revisions
from petition.operations.heartbeats import latest_beats
from petition.outbox.states import OutboxState
from petition.outbox.tables import outbox
from petition.schema import utcnow
from petition.settings import Settings

OUTBOX_WORKER = "outbox worker"


@dataclass
class Readiness:
    status: str = "ready"  # ready | degraded | not ready
    checks: dict[str, Any] = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)

    def fail(self, reason: str) -> None:
        self.status = "not ready"
        self.reasons.append(reason)

    def degrade(self, reason: str) -> None:
        if self.status == "ready":
            self.status = "degraded"
        self.reasons.append(reason)

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "checks": self.checks, "reasons": self.reasons}


@dataclass
class OutboxSummary:
    counts: dict[str, int]
    oldest_queued_seconds: float
    due: int


async def outbox_summary(db: Database, now: dt.datetime) -> OutboxSummary:
    """Emails waiting, being sent and failed; the oldest queued one's age; how many are due now."""
    states = [OutboxState.QUEUED.value, OutboxState.SENDING.value, OutboxState.FAILED.value]
    rows = await db.fetch_all(
        sa.select(
            outbox.c.state,
            sa.func.count().label("n"),
            sa.func.min(outbox.c.created_at).label("oldest"),
            sa.func.count().filter(outbox.c.next_attempt_at <= now).label("due"),
        )
        .where(outbox.c.state.in_(states))
        .group_by(outbox.c.state)
    )
    counts = dict.fromkeys(states, 0)
    oldest, due = 0.0, 0
    for row in rows:
        counts[row["state"]] = int(row["n"])
        if row["state"] == OutboxState.QUEUED.value:
            due = int(row["due"])
            oldest = max(0.0, (now - aware(row["oldest"])).total_seconds())
    return OutboxSummary(counts=counts, oldest_queued_seconds=oldest, due=due)


def aware(value: dt.datetime | str) -> dt.datetime:
    # An aggregate, or a row read as a whole on PostgreSQL, may come back as the driver gives it:
    # naive UTC (or text on SQLite).
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


async def schema_revisions(db: Database) -> set[str]:
    return {row["version_num"] for row in await db.fetch_all(sa.text("SELECT version_num FROM alembic_version"))}


async def readiness(db: Database, settings: Settings, intake: IntakeHealth) -> Readiness:
    result = Readiness()
    if not await db.ping():
        result.checks["database"] = "not answering"
        result.fail("the database does not answer")
        return result
    result.checks["database"] = "ok"

    try:
        at = await schema_revisions(db)
    except Exception:  # noqa: BLE001 - no alembic_version table: never migrated
        at = set()
    heads = head_revisions()
    result.checks["migrations"] = {"database": sorted(at), "code": sorted(heads)}
    if at != heads:
        result.fail("the database's migrations are not at this code's head (run `petition db upgrade`)")
        return result

    clash = None
    if intake.id_clash is not None:
        at_time, table, moved = intake.id_clash
        clash = {
            "at": at_time.isoformat(),
            "table": table,
            "sequence_moved_from": moved and moved[0],
            "to": moved and moved[1],
        }
    result.checks["intake"] = {"failing": intake.failing(), "id_clash": clash}
    if intake.failing():
        result.fail(f"{IntakeHealth.FAILURES} or more submissions failed on this process in the last minute")

    now = utcnow()
    summary = await outbox_summary(db, now)
    result.checks["outbox"] = {
        **summary.counts,
        "due": summary.due,
        "oldest_queued_seconds": summary.oldest_queued_seconds,
    }
    if summary.oldest_queued_seconds > settings.ready_outbox_max_age:
        result.degrade(f"the oldest queued email has waited {summary.oldest_queued_seconds:.0f} s")

    workers = [
        {
            "worker": row["worker"],
            "id": row["worker_id"],
            "last_beat_seconds": round((now - aware(row["beat_at"])).total_seconds(), 1),
        }
        for row in await latest_beats(db)
    ]
    result.checks["workers"] = workers
    alive = [
        w
        for w in workers
        if w["worker"] == OUTBOX_WORKER and w["last_beat_seconds"] <= settings.ready_worker_max_silence
    ]
    if summary.due and not alive:
        result.degrade(f"emails are due and no outbox worker has beaten in {settings.ready_worker_max_silence:.0f} s")
    return result
