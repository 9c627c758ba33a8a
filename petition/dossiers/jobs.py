"""Dossier builds as background jobs in the `dossiers` table.

A build is queued (by an organiser, later from the admin area), claimed by one
worker — `FOR UPDATE SKIP LOCKED` on PostgreSQL, so several `petition worker`
processes never take the same row — and reports progress, which also renews its
lease: a row whose worker died is claimed again once the lease runs out.
The CPU work (render, join, sign) runs in the process pool, never on the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import hashlib
import logging
import os
import shutil
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from petition.appeals.about import initiators_of
from petition.appeals.queries import get_appeal_by_id
from petition.db import Database, Row
from petition.dossiers.content import DossierContent, gather_content
from petition.dossiers.presentation import Presentation, Sender
from petition.dossiers.render import render_pdf_file
from petition.dossiers.render_pool import pool, start_pool
from petition.dossiers.sign import (
    certificate_fingerprint,
    sign_pdf_file,
    signing_config,
    timestamp_pdf_file,
)
from petition.dossiers.states import DossierState
from petition.dossiers.tables import dossiers
from petition.polling import PollingWorker
from petition.schema import utcnow
from petition.settings import Settings, private_directory

log = logging.getLogger("petition.dossiers")

D = DossierState
Progress = Callable[[int], None]


def new_worker_id(kind: str = "worker") -> str:
    return f"{kind}:{socket.gethostname()[:40]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def dossier_dir(settings: Settings) -> Path:
    return settings.data_dir / "dossiers"


async def _insert_build(db: Database, *, appeal_id: int, country: str, created_by: int | None, **state: object) -> int:
    async with db.write():
        return int(
            await db.execute(
                dossiers.insert().values(
                    appeal_id=appeal_id,
                    country=country.upper(),
                    progress=0,
                    created_by=created_by,
                    created_at=utcnow(),
                    **state,
                )
            )
        )


async def queue_build(db: Database, *, appeal_id: int, country: str, created_by: int | None = None) -> int:
    """A build for whichever worker claims it first."""
    return await _insert_build(db, appeal_id=appeal_id, country=country, created_by=created_by, state=D.QUEUED.value)


async def start_build(
    db: Database, *, appeal_id: int, country: str, worker_id: str, created_by: int | None = None
) -> int:
    """A build this process runs at once (the CLI): recorded as already claimed."""
    return await _insert_build(
        db,
        appeal_id=appeal_id,
        country=country,
        created_by=created_by,
        state=D.BUILDING.value,
        claimed_by=worker_id,
        claimed_at=utcnow(),
    )


async def get_dossier(db: Database, *, dossier_id: int) -> Row | None:
    return await db.fetch_one(dossiers.select().where(dossiers.c.id == dossier_id))


async def list_dossiers(db: Database, *, appeal_id: int | None = None, limit: int = 100) -> list[Row]:
    query = dossiers.select().order_by(dossiers.c.created_at.desc(), dossiers.c.id.desc()).limit(limit)
    if appeal_id is not None:
        query = query.where(dossiers.c.appeal_id == appeal_id)
    return list(await db.fetch_all(query))


async def claim_next(db: Database, *, worker_id: str, lease_seconds: float) -> Row | None:
    """Claim the oldest queued build, or one whose worker stopped reporting."""
    now = utcnow()
    stale = now - dt.timedelta(seconds=lease_seconds)
    claimable = sa.or_(
        dossiers.c.state == D.QUEUED.value,
        sa.and_(dossiers.c.state == D.BUILDING.value, dossiers.c.claimed_at < stale),
    )
    candidate = sa.select(dossiers.c.id).where(claimable).order_by(dossiers.c.created_at, dossiers.c.id).limit(1)
    claim = dict(state=D.BUILDING.value, claimed_by=worker_id, claimed_at=now, progress=0, error=None)
    if db.is_sqlite:
        # One statement: SQLite runs it atomically, writers take turns.
        async with db.write():
            return await db.fetch_one(
                dossiers.update()
                .where(dossiers.c.id.in_(candidate.scalar_subquery()), claimable)
                .values(**claim)
                .returning(*dossiers.c)
            )
    # PostgreSQL: two statements in one transaction; the lock taken by the SELECT holds
    # until commit. (UPDATE … WHERE id IN (SELECT … LIMIT 1 FOR UPDATE SKIP LOCKED) may
    # run the subquery more than once and claim several rows.)
    async with db.write():
        dossier_id = await db.fetch_val(candidate.with_for_update(skip_locked=True))
        if dossier_id is None:
            return None
        return await db.fetch_one(
            dossiers.update().where(dossiers.c.id == dossier_id, claimable).values(**claim).returning(*dossiers.c)
        )


async def set_progress(db: Database, *, dossier_id: int, worker_id: str, progress: int) -> bool:
    """Report progress and renew the lease; False if another worker took the build over."""
    async with db.write():
        row = await db.fetch_one(
            dossiers.update()
            .where(
                dossiers.c.id == dossier_id,
                dossiers.c.claimed_by == worker_id,
                dossiers.c.state == D.BUILDING.value,
            )
            .values(progress=max(0, min(100, progress)), claimed_at=utcnow())
            .returning(dossiers.c.id)
        )
    return row is not None


async def _finish(
    db: Database,
    *,
    dossier_id: int,
    worker_id: str,
    content: DossierContent,
    pdf_sha256: str,
    path: Path,
    pages: int,
    timestamp_pending: bool = False,
) -> bool:
    async with db.write():
        row = await db.fetch_one(
            dossiers.update()
            .where(
                dossiers.c.id == dossier_id,
                dossiers.c.claimed_by == worker_id,
                dossiers.c.state == D.BUILDING.value,
            )
            .values(
                state=D.DONE.value,
                progress=100,
                signatory_count=content.named_count,
                anonymous_count=content.anonymous_count,
                pdf_sha256=pdf_sha256,
                list_sha256=content.list_sha256,
                file_path=str(path),
                page_count=pages,
                timestamp_pending=timestamp_pending,
                finished_at=utcnow(),
                error=None,
            )
            .returning(dossiers.c.id)
        )
    return row is not None


async def _fail(db: Database, *, dossier_id: int, worker_id: str, error: str) -> None:
    async with db.write():
        await db.execute(
            dossiers.update()
            .where(dossiers.c.id == dossier_id, dossiers.c.claimed_by == worker_id)
            .values(state=D.FAILED.value, error=error[:500], finished_at=utcnow())
        )


@dataclass(frozen=True)
class Built:
    dossier_id: int
    path: Path
    pdf_sha256: str
    list_sha256: str
    named_count: int
    anonymous_count: int
    pages: int
    #: Signed B-B because the timestamp authority did not answer: a document timestamp follows.
    timestamp_pending: bool = False


class LeaseLost(RuntimeError):
    """Another worker took this build over (our lease ran out)."""


async def build(
    db: Database,
    settings: Settings,
    *,
    dossier: Row,
    worker_id: str,
    progress: Progress | None = None,
) -> Built:
    """Gather, render, sign and store one claimed dossier; records the outcome."""
    dossier_id = dossier["id"]
    try:
        built = await _build(db, settings, dossier=dossier, worker_id=worker_id, progress=progress)
    except LeaseLost:
        raise
    except Exception as exc:
        # The class name and message only: errors here carry no endorsement data.
        log.exception("dossier %s failed", dossier_id)
        await _fail(db, dossier_id=dossier_id, worker_id=worker_id, error=f"{type(exc).__name__}: {exc}")
        raise
    return built


async def _build(db: Database, settings: Settings, *, dossier: Row, worker_id: str, progress: Progress | None) -> Built:
    dossier_id = dossier["id"]
    last = {"value": -1}
    loop = asyncio.get_running_loop()
    pending: set[asyncio.Task[bool]] = set()

    async def report(value: int) -> None:
        if value == last["value"]:
            return
        last["value"] = value
        if progress:
            progress(value)
        if not await set_progress(db, dossier_id=dossier_id, worker_id=worker_id, progress=value):
            raise LeaseLost(f"dossier {dossier_id} was taken over by another worker")

    # The pool's processes start (import weasyprint, load fonts) while the content is gathered.
    starting = asyncio.create_task(asyncio.to_thread(start_pool))
    try:
        appeal = await get_appeal_by_id(db, appeal_id=dossier["appeal_id"])
        if appeal is None:
            raise ValueError(f"dossier {dossier_id}: its appeal is gone")
        await report(2)
        content = await gather_content(
            db, appeal=appeal, country=dossier["country"], anonymous_threshold=settings.anonymous_count_threshold
        )
        await report(5)
    finally:
        await starting
    config = await asyncio.to_thread(signing_config, settings)
    operator = settings.operator
    presentation = Presentation(
        verification_url=settings.url_for_path(f"/verify?digest={content.list_sha256}"),
        certificate_fingerprint=await asyncio.to_thread(certificate_fingerprint, settings),
        author=operator.name or "petition",
        sender=Sender(
            name=operator.name,
            address=operator.address,
            email=operator.email,
            privacy_contact=operator.privacy_contact,
        ),
        initiators=tuple(initiator.name for initiator in initiators_of(appeal)),
    )

    def on_render(done: int, total: int) -> None:
        value = 5 + int(80 * done / max(1, total))
        task = loop.create_task(_quiet_progress(db, dossier_id, worker_id, value))
        pending.add(task)
        task.add_done_callback(pending.discard)
        if progress:
            progress(value)

    # The documents the dossier is made of, the joined file and the signed one go to a working
    # directory of this build's own next to the dossiers (same file system: the signed file is
    # renamed into place); it is removed however the build ends.
    workdir = await asyncio.to_thread(_workdir, settings, dossier_id)
    try:
        unsigned, signed = workdir / "unsigned.pdf", workdir / "signed.pdf"
        pages = await render_pdf_file(content, presentation, unsigned, workdir=workdir, progress=on_render)
        await asyncio.gather(*pending)
        await report(90)
        timestamped = await loop.run_in_executor(
            pool(),
            functools.partial(
                sign_pdf_file,
                str(unsigned),
                str(signed),
                config,
                reason=f"Dossier {content.appeal_slug} {content.country}; list SHA-256 {content.list_sha256}",
                location=settings.base_url,
            ),
        )
        await report(95)
        digest, path = await asyncio.to_thread(_store, settings, dossier_id, content, signed)
    finally:
        await asyncio.to_thread(shutil.rmtree, workdir, ignore_errors=True)
    if not await _finish(
        db,
        dossier_id=dossier_id,
        worker_id=worker_id,
        content=content,
        pdf_sha256=digest,
        path=path,
        pages=pages,
        timestamp_pending=config.timestamp_url is not None and not timestamped,
    ):
        raise LeaseLost(f"dossier {dossier_id} was taken over by another worker")
    if progress:
        progress(100)
    log.info(
        "dossier %s (%s %s) built: %d named, %d pages",
        dossier_id,
        content.appeal_slug,
        content.country,
        content.named_count,
        pages,
    )
    return Built(
        dossier_id,
        path,
        digest,
        content.list_sha256,
        content.named_count,
        content.anonymous_count,
        pages,
        config.timestamp_url is not None and not timestamped,
    )


async def _quiet_progress(db: Database, dossier_id: int, worker_id: str, value: int) -> bool:
    try:
        return await set_progress(db, dossier_id=dossier_id, worker_id=worker_id, progress=value)
    except Exception:  # noqa: BLE001 - progress is advisory; the final update decides
        log.warning("dossier %s: could not record progress", dossier_id)
        return False


#: A build's working directory in the dossiers' folder: `.build-<dossier id>-<random>`.
WORKDIR_PREFIX = ".build-"


def _workdir(settings: Settings, dossier_id: int) -> Path:
    """A new private working directory for one build; those of builds that died are removed.

    A directory untouched for twice the lease belongs to a build that stopped reporting long
    ago (its row was claimed again); dot-names keep them out of backups meanwhile.
    """
    directory = private_directory(dossier_dir(settings))
    stale = time.time() - 2 * settings.dossier_lease_seconds
    for old in directory.glob(WORKDIR_PREFIX + "*"):
        with contextlib.suppress(OSError):
            if old.is_dir() and old.stat().st_mtime < stale:
                shutil.rmtree(old, ignore_errors=True)
    return Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{dossier_id}-", dir=directory))  # 0700


def _store(settings: Settings, dossier_id: int, content: DossierContent, signed: Path) -> tuple[str, Path]:
    """The signed file's SHA-256, and the file renamed into place (whole, or not at all)."""
    with signed.open("rb") as fh:
        digest = hashlib.file_digest(fh, "sha256").hexdigest()
    stamp = content.generated_at.strftime("%Y%m%d")
    path = dossier_dir(settings) / f"{content.appeal_slug}-{content.country}-{stamp}-{dossier_id}.pdf"
    os.replace(signed, path)
    return digest, path


#: Seconds between two attempts at the pending document timestamps.
STAMP_INTERVAL = 60.0
#: Dossiers given their document timestamp by one pass at most.
STAMP_BATCH = 10


async def stamp_pending(db: Database, settings: Settings, *, limit: int = STAMP_BATCH) -> int:
    """Add the RFC 3161 document timestamp to dossiers issued B-B while the authority was down.

    An incremental update of the signed file (its signature stays valid), renamed over it; the
    row gets the new file's SHA-256 and loses its mark. Stops at the first failure: the
    authority is still down, the next pass tries again. How many were stamped.
    """
    from pyhanko.sign.timestamps.common_utils import TimestampRequestError

    url = settings.timestamp_url
    if url is None:
        return 0
    rows = await db.fetch_all(
        sa.select(dossiers.c.id, dossiers.c.file_path)
        .where(dossiers.c.timestamp_pending.is_(True), dossiers.c.state == D.DONE.value)
        .order_by(dossiers.c.id)
        .limit(limit)
    )
    stamped = 0
    config = signing_config(settings) if settings.signing_ltv and rows else None
    for row in rows:
        path = Path(row["file_path"])
        target = path.with_name(f"{WORKDIR_PREFIX}stamp-{row['id']}-{uuid.uuid4().hex[:8]}.pdf")
        try:
            await asyncio.to_thread(timestamp_pdf_file, str(path), str(target), url, config)
        except Exception as exc:
            await asyncio.to_thread(target.unlink, missing_ok=True)
            if isinstance(exc, TimestampRequestError):  # the authority: try again next pass
                log.info("dossier %s: still no timestamp (%s)", row["id"], type(exc).__name__)
                break
            log.warning("dossier %s: cannot be timestamped: %s", row["id"], type(exc).__name__)
            continue
        with target.open("rb") as fh:
            digest = await asyncio.to_thread(hashlib.file_digest, fh, "sha256")
        # The row first (locked until commit), then the file: of two workers stamping the same
        # dossier, the second finds it stamped and drops its copy, so file and digest agree.
        async with db.write():
            mine = await db.fetch_one(
                dossiers.update()
                .where(dossiers.c.id == row["id"], dossiers.c.timestamp_pending.is_(True))
                .values(pdf_sha256=digest.hexdigest(), timestamp_pending=False)
                .returning(dossiers.c.id)
            )
            if mine is not None:
                await asyncio.to_thread(os.replace, target, path)
        if mine is None:
            await asyncio.to_thread(target.unlink, missing_ok=True)
            continue
        log.info("dossier %s: document timestamp added", row["id"])
        stamped += 1
    return stamped


class DossierWorker(PollingWorker):
    """Claims queued dossier builds one at a time (each build uses every core already)."""

    name = "dossier worker"
    log = log

    def __init__(self, db: Database, settings: Settings) -> None:
        super().__init__(settings.worker_poll_interval)
        self.db = db
        self.settings = settings
        self._id = new_worker_id()
        self._next_stamp = 0.0

    @property
    def worker_id(self) -> str:
        return self._id

    async def run_once(self) -> bool:
        row = await claim_next(self.db, worker_id=self.worker_id, lease_seconds=self.settings.dossier_lease_seconds)
        if row is None:
            await self._stamp()
            return False
        try:
            await build(self.db, self.settings, dossier=row, worker_id=self.worker_id)
        except LeaseLost:
            log.warning("dossier %s: lease lost, another worker builds it", row["id"])
        except Exception:  # noqa: BLE001 - build() logged it and marked the row failed
            log.info("dossier %s failed; the worker goes on", row["id"])
        return True

    async def _stamp(self) -> None:
        """Between builds, and not more often than once a minute: the pending timestamps."""
        now = time.monotonic()
        if self.settings.timestamp_url is None or now < self._next_stamp:
            return
        self._next_stamp = now + STAMP_INTERVAL
        try:
            await stamp_pending(self.db, self.settings)
        except Exception:  # noqa: BLE001 - the next pass tries again
            log.exception("dossiers: pending timestamps failed")
