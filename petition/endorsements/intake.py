"""Taking in submitted endorsements: the rate limits, the record, its email.

This is the platform's hottest write — thousands a minute when an appeal goes round —
so on PostgreSQL new addresses are written in groups: submissions that arrive while
a write is under way wait for it and then go together in one statement (the older half
of them, `Intake._next_group`, so that the process prepares the rest meanwhile), which records
their rate-limit events, counts each rule's window, inserts the endorsements (pending,
with the limit it exceeded as its hold reason) and their confirmation emails. One
round trip and one commit carry many signatures (group commit); a lone submission
goes at once, as a group of one. Each endorsement's id is reserved beforehand
(`Database.reserve_id`): it ties a submission to its row and its email in the
statement, and orders the group by arrival. The worker renders the email and signs
its link.

An address already known for its appeal (the INSERT meets the unique constraint and
does nothing) then takes the general path, `lifecycle.submit_endorsement`, with the
verdict of the limits already counted.

On SQLite, the embedded default with one writer, groups form the same way and each is
one transaction (`Database.sqlite_transaction`: one hop to the writer's thread, one
commit and so one fsync for the group). There the submissions of a group are written
one after another in it, each in a savepoint of its own: each counts the limits with the
events of those before it (exactly as one at a time), and one that fails is rolled back
alone. SQLite hands out the ids as it inserts, so nothing is reserved.

Reserved ids can clash with stored rows when the sequence moved back under a running
process (a restore while it ran): the clashing ids are dropped, the sequence is moved
past the table's highest id (said in the log and in /readyz) and the group written again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import logging
import sqlite3
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from petition.abuse.limits import (
    MAILBOX_BUCKETS,
    Rule,
    Verdict,
    endorsement_rules,
    events_of,
    hashed_rules,
)
from petition.abuse.tables import rate_events
from petition.appeals.states import AppealStatus
from petition.db import Database, Row, SqliteInsert, sqlite_binder
from petition.endorsements.emails import confirmation_context
from petition.endorsements.lifecycle import Event, SubmitOutcome, new_nonce, submit_endorsement, target_of
from petition.endorsements.states import HoldReason
from petition.endorsements.tables import endorsements
from petition.metrics import Metrics
from petition.outbox.messages import Mailer, outbox_values
from petition.outbox.tables import QUEUED_DEFAULTS, outbox
from petition.schema import utcnow
from petition.server import hint_proxy_setting
from petition.settings import Settings

log = logging.getLogger("petition.intake")

#: The endorsement's columns as the statement's arrays, with their PostgreSQL array types.
_COLUMNS = (
    ("id", "int"),
    ("appeal_id", "int"),
    ("organisation_name", "text"),
    ("name_normalised", "text"),
    ("country", "text"),
    ("city", "text"),
    ("organisation_type", "text"),
    ("website", "text"),
    ("contact_name", "text"),
    ("contact_role", "text"),
    ("contact_email", "text"),
    ("email_canonical", "text"),
    ("authorised", "bool"),
    ("consent_version", "text"),
    ("visibility", "text"),
    ("comment", "text"),
    ("language", "text"),
    ("text_language", "text"),
    ("text_hash", "text"),
    ("news_consent_version", "text"),
    ("transparency_register", "text"),
    ("news_consented_at", "timestamp"),
    ("token_nonce", "text"),
    ("created_at", "timestamp"),
    ("updated_at", "timestamp"),
    # not the endorsement's: its confirmation email
    ("mail_context", "text"),
    ("mail_message_id", "text"),
)
_RECORD = [name for name, _type in _COLUMNS if not name.startswith("mail_")]
_N = len(_COLUMNS)
_EVENT_BUCKETS, _EVENT_KEYS, _EVENT_AT = _N + 1, _N + 2, _N + 3
_RULE_IDS, _RULE_BUCKETS, _RULE_KEYS, _RULE_SINCE, _RULE_LIMITS, _RULE_BEFORE = (
    _N + 4,
    _N + 5,
    _N + 6,
    _N + 7,
    _N + 8,
    _N + 9,
)

_MAILBOX = ", ".join(f"'{bucket}'" for bucket in MAILBOX_BUCKETS)

#: The kind of email every new endorsement gets.
_MAIL_KIND = "confirm"


def _outbox_literal(column: str, value: object) -> str:
    """`value` as SQL for the outbox's `column`, typed and quoted as that column takes it."""
    literal = sa.literal(value, outbox.c[column].type)
    return str(literal.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True}))


#: The confirmation email's outbox row, as `outbox.messages.outbox_values` makes it: what differs
#: per submission from the statement's arrays, what every new email starts with from the outbox's
#: own defaults (tests/endorsements/test_intake.py compares the row with one enqueue_email writes).
_MAIL_VALUES = {
    "kind": _outbox_literal("kind", _MAIL_KIND),
    "endorsement_id": "s.id",
    "to_addr": "s.contact_email",
    "context": "s.mail_context",
    "language": "s.language",
    "message_id": "s.mail_message_id",
    "next_attempt_at": "s.created_at",
    "created_at": "s.created_at",
    **{column: _outbox_literal(column, value) for column, value in QUEUED_DEFAULTS.items()},
}

# A data-modifying WITH runs against one snapshot: the counts see the events of earlier
# statements, not this one's. So each rule also brings how many submissions earlier in the
# same group have its key (`before`, counted in Python), and a rule allows a submission while
# fewer than `limit` events came before it — the verdict of counting after inserting, one
# submission at a time: a bot's hundred parallel requests are held like a hundred in a row.
# The verdict is `abuse.limits.Verdict`'s: over the mailbox's cap nothing is stored or sent;
# over a sender's limit the endorsement is stored with that limit as its hold reason and
# emailed all the same (confirmed, it waits for an organiser).
# Each count stops at the limit, so a flood costs no more to count than a trickle. Rows are
# inserted in key order, so two groups that share addresses take their locks in the same
# order and cannot deadlock; an address twice in one group goes in arrival order (ids are
# handed out in order), so the earlier submission is the one stored. Only an appeal that is
# open at the moment of writing takes endorsements: the caller's copy of it may be a few
# seconds old (petition.publish.cache) and another process may have paused or closed it.
SUBMIT_SQL = f"""
WITH events AS (
    INSERT INTO rate_events (bucket, key_hash, created_at)
    SELECT * FROM unnest(${_EVENT_BUCKETS}::text[], ${_EVENT_KEYS}::text[], ${_EVENT_AT}::timestamp[])
), verdict AS (
    SELECT r.sid,
           bool_and(r.bucket NOT IN ({_MAILBOX}) OR r.ok) AS mailbox_ok,
           min(CASE WHEN r.bucket NOT IN ({_MAILBOX}) AND NOT r.ok THEN r.bucket END) AS held
    FROM (SELECT r.sid, r.bucket, r.before + (SELECT count(*) FROM (
                SELECT 1 FROM rate_events e
                WHERE e.bucket = r.bucket AND e.key_hash = r.key_hash AND e.created_at >= r.since
                LIMIT r.lim) AS s) < r.lim AS ok
          FROM unnest(${_RULE_IDS}::int[], ${_RULE_BUCKETS}::text[], ${_RULE_KEYS}::text[],
                      ${_RULE_SINCE}::timestamp[], ${_RULE_LIMITS}::int[], ${_RULE_BEFORE}::int[])
               AS r(sid, bucket, key_hash, since, lim, before)) AS r
    GROUP BY r.sid
), sub AS (
    SELECT * FROM unnest({", ".join(f"${i}::{kind}[]" for i, (_n, kind) in enumerate(_COLUMNS, start=1))})
        AS s({", ".join(name for name, _type in _COLUMNS)})
), ins AS (
    INSERT INTO endorsements ({", ".join(_RECORD)}, state, hold_reason)
    SELECT {", ".join(f"s.{name}" for name in _RECORD)}, '{target_of(Event.SUBMIT).value}', v.held
    FROM sub s LEFT JOIN verdict v ON v.sid = s.id
    JOIN appeals a ON a.id = s.appeal_id AND a.status = '{AppealStatus.OPEN.value}'
    WHERE coalesce(v.mailbox_ok, true)
    ORDER BY s.appeal_id, s.email_canonical, s.id
    ON CONFLICT (appeal_id, email_canonical) DO NOTHING
    RETURNING id
), mail AS (
    INSERT INTO outbox ({", ".join(_MAIL_VALUES)})
    SELECT {", ".join(_MAIL_VALUES.values())}
    FROM ins JOIN sub s ON s.id = ins.id
)
SELECT s.id, coalesce(v.mailbox_ok, true) AS mailbox_ok, v.held, ins.id IS NOT NULL AS inserted,
       a.status AS appeal_status
FROM sub s LEFT JOIN verdict v ON v.sid = s.id LEFT JOIN ins ON ins.id = s.id
     LEFT JOIN appeals a ON a.id = s.appeal_id
"""  # noqa: S608 - every interpolated piece is a constant here or an outbox default quoted by SQLAlchemy

# SQLite: the same rows, written by a few statements per group in its transaction
# (`_write_sqlite_group`).
_SQLITE_EVENT = SqliteInsert.of(rate_events, ("bucket", "key_hash", "created_at"))
_SQLITE_ENDORSEMENT = SqliteInsert.of(
    endorsements,
    (*(name for name in _RECORD if name != "id"), "state", "hold_reason"),
    do_nothing_on=("appeal_id", "email_canonical"),
)
_SQLITE_EMAIL = SqliteInsert.of(outbox, tuple(_MAIL_VALUES))
_SQLITE_TIME = sqlite_binder(rate_events.c.created_at)
_SQLITE_WINDOW = (
    "(SELECT count(*) FROM (SELECT 1 FROM rate_events WHERE bucket = ? AND key_hash = ? AND created_at >= ? LIMIT ?))"
)
#: Windows counted by one statement at most (a column each).
_SQLITE_MAX_WINDOWS = 500


@functools.lru_cache(maxsize=64)
def _sqlite_counts(windows: int) -> str:
    """One SELECT counting `windows` windows, each stopping at its limit."""
    return "SELECT " + ", ".join([_SQLITE_WINDOW] * windows)


#: Submissions written by one statement at most.
MAX_GROUP = 100
#: Times a group is written again after its reserved ids clashed with stored rows.
ID_CLASH_RETRIES = 3
#: Groups a process writes at the same time. One: each group's statement then sees the
#: events of the group before it, so the limits hold exactly within a process (two
#: statements at once would not see each other's), and waiting groups grow larger.
MAX_IN_FLIGHT = 1


def _naive(value: dt.datetime) -> dt.datetime:
    """asyncpg wants naive datetimes for `timestamp` columns (stored as UTC, see UTCDateTime)."""
    return value.astimezone(dt.UTC).replace(tzinfo=None)


class IntakeHealth:
    """Whether this process's submissions have been failing of late (petition.operations' /readyz)."""

    #: Failed submissions, none succeeding after them, within `WINDOW` seconds: this process is not ready.
    FAILURES = 5
    WINDOW = 60.0

    def __init__(self) -> None:
        self._failures: deque[float] = deque(maxlen=self.FAILURES)
        self._last_success = float("-inf")
        #: When reserved ids last clashed with stored rows, in which table, and (when the sequence was
        #: still behind the table and moved forward) its next value and the table's highest id.
        self.id_clash: tuple[dt.datetime, str, tuple[int, int] | None] | None = None

    def succeeded(self) -> None:
        self._last_success = time.monotonic()

    def failed(self) -> None:
        self._failures.append(time.monotonic())

    def failing(self) -> bool:
        now = time.monotonic()
        recent = [t for t in self._failures if now - t <= self.WINDOW and t > self._last_success]
        return len(recent) >= self.FAILURES


@dataclass
class _Submission:
    record: dict[str, Any]
    rules: list[tuple[Rule, str]]  # each with its key's hash
    email: dict[str, Any]  # its confirmation's outbox row (outbox_values), but for the endorsement's id
    done: asyncio.Future[Row] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


class Intake:
    """Endorsements in, in groups on either backend (see the module's text)."""

    def __init__(self, db: Database, settings: Settings, mailer: Mailer, *, metrics: Metrics | None = None) -> None:
        self.db = db
        self.settings = settings
        self.mailer = mailer
        self.metrics = metrics or Metrics()
        self.health = IntakeHealth()
        self._waiting: list[_Submission] = []
        self._in_flight = 0
        #: Submissions the last statement left waiting (`_next_group`).
        self._left_over = 0
        self._writers: set[asyncio.Task[None]] = set()

    async def take(
        self, *, appeal: Row, text: Row, data: dict[str, Any], language: str, ip: str | None
    ) -> SubmitOutcome:
        """Apply the rate limits and record the endorsement; the caller answers the same in every case
        but CLOSED (the appeal stopped taking endorsements since the caller read it: nothing stored)."""
        try:
            outcome, held = await self._take(appeal=appeal, text=text, data=data, language=language, ip=ip)
        except Exception:
            self.health.failed()
            self.metrics.submissions.labels(outcome="error").inc()
            raise
        self.health.succeeded()
        counted = "held" if held and outcome in (SubmitOutcome.NEW, SubmitOutcome.VERSION) else outcome.value
        self.metrics.submissions.labels(outcome=counted).inc()
        return outcome

    async def _take(
        self, *, appeal: Row, text: Row, data: dict[str, Any], language: str, ip: str | None
    ) -> tuple[SubmitOutcome, str | None]:
        """The outcome, and the hold reason the limits gave."""
        submission = await self._prepare(appeal=appeal, text=text, data=data, language=language, ip=ip)
        self._waiting.append(submission)
        self._start_writing()
        row = await asyncio.shield(submission.done)
        if row["appeal_status"] != AppealStatus.OPEN:
            return SubmitOutcome.CLOSED, None
        if row["held"] == HoldReason.IP:
            hint_proxy_setting(self.settings, ip)
        if not row["mailbox_ok"]:
            return SubmitOutcome.CAPPED, None
        if row["inserted"]:
            self.mailer.notify()
            return SubmitOutcome.NEW, row["held"]
        # A known address: its events are counted already, the general path does the rest.
        outcome = await submit_endorsement(
            self.db,
            mailer=self.mailer,
            appeal=appeal,
            text=text,
            data=data,
            language=language,
            hold_reason=row["held"],
        )
        return outcome, row["held"]

    async def _prepare(
        self, *, appeal: Row, text: Row, data: dict[str, Any], language: str, ip: str | None
    ) -> _Submission:
        now = utcnow()
        # SQLite numbers the row when it inserts it; its times go through UTCDateTime there.
        endorsement_id = None if self.db.is_sqlite else await self.db.reserve_id("endorsements")
        stamp = now if self.db.is_sqlite else _naive(now)
        nonce = new_nonce()
        email = outbox_values(
            self.settings,
            name=_MAIL_KIND,
            to=data["contact_email"],
            language=language,
            endorsement_id=endorsement_id,
            context=confirmation_context(
                mailer=self.mailer, title=text["title"], nonce=nonce, facts=data, language=language
            ),
        )
        record = {
            **data,
            "news_consent_version": data.get("news_consent_version"),
            "news_consented_at": stamp if data.get("news_consent_version") else None,
            "id": endorsement_id,
            "appeal_id": appeal["id"],
            "language": language,
            "text_language": text["language"],
            "text_hash": text["content_hash"],
            "token_nonce": nonce,
            "created_at": stamp,
            "updated_at": stamp,
            "mail_context": email["context"],
            "mail_message_id": email["message_id"],
        }
        rules = endorsement_rules(self.settings, ip=ip, email_canonical=data["email_canonical"])
        return _Submission(record=record, rules=hashed_rules(str(self.settings.secret_key), rules), email=email)

    def _start_writing(self) -> None:
        if self._in_flight >= MAX_IN_FLIGHT:
            return
        self._in_flight += 1
        started = False

        async def write() -> None:
            nonlocal started
            started = True
            await self._write_groups()

        def finished(task: asyncio.Task[None]) -> None:
            self._writers.discard(task)
            if not started:
                # Cancelled before it ran (the loop is shutting down): its `finally` never did.
                self._in_flight -= 1
                self._stop_waiting()

        task = asyncio.get_running_loop().create_task(write(), name="intake-writer")
        self._writers.add(task)
        task.add_done_callback(finished)

    async def _write_groups(self) -> None:
        try:
            while self._waiting:
                take = self._next_group()
                group, self._waiting = self._waiting[:take], self._waiting[take:]
                self._left_over = len(self._waiting)
                try:
                    await self._write(group)
                except BaseException:
                    _fail(group, asyncio.CancelledError())
                    raise
        except BaseException:
            self._stop_waiting()
            raise
        finally:
            self._in_flight -= 1

    def _next_group(self) -> int:
        """How many of the waiting submissions the next statement takes, oldest first: those that
        waited through the statement before, and at least the older half of all that wait (at most
        `MAX_GROUP`).

        The newer half is left for the statement after, so that this process has submissions to
        prepare while the database writes this one: taking all that wait, the process prepared a
        group, then sat idle while it was written, then prepared the next (the submitters' next
        requests wait for their answers) — on the sign path a quarter of its time. A burst with
        nothing after it goes in two statements, not one.

        The price, where the database bounds the intake (slow, or far): a submission may wait
        for the statement under way and one more before its own, never longer (what waited
        through one statement goes in the next). Splitting only the first statement after the
        writer was idle cost no wait, but through the HTTP server the process stayed in step
        (on PostgreSQL that statement held the first submission alone; docs/benchmarks.md)."""
        waiting = len(self._waiting)
        return min(MAX_GROUP, max(self._left_over, (waiting + 1) // 2))

    def _stop_waiting(self) -> None:
        """The writer was stopped: nobody is left to write what waits for it."""
        waiting, self._waiting = self._waiting, []
        self._left_over = 0
        _fail(waiting, asyncio.CancelledError())

    async def _write(self, group: list[_Submission], *, retries: int = ID_CLASH_RETRIES) -> None:
        if self.db.is_sqlite:
            await self._write_sqlite(group)
            return
        try:
            self.metrics.intake_group_size.observe(len(group))
            rows = await self._run(group)
            by_id = {row["id"]: row for row in rows}
            results = [by_id[submission.record["id"]] for submission in group]
        except Exception as exc:  # noqa: BLE001 - each submission learns its own fate below
            clashed = _clashing_table(exc)
            if clashed is not None and retries > 0:
                await self._new_ids(clashed, group)
                await self._write(group, retries=retries - 1)
                return
            if len(group) > 1 and not _is_connection_error(exc):
                # One bad submission must not fail the others: write each on its own.
                log.warning(
                    "intake: a group of %d failed (%s); writing them one by one", len(group), type(exc).__name__
                )
                for submission in group:
                    await self._write([submission])
                return
            _fail(group, exc)
            return
        for submission, row in zip(group, results, strict=True):
            if not submission.done.done():
                submission.done.set_result(row)

    async def _write_sqlite(self, group: list[_Submission]) -> None:
        self.metrics.intake_group_size.observe(len(group))
        try:
            results = await self.db.sqlite_transaction(functools.partial(_write_sqlite_group, group))
        except Exception as exc:  # noqa: BLE001 - nothing of the group was written: each learns its fate below
            if len(group) > 1 and not isinstance(exc, sqlite3.OperationalError):
                # One bad submission must not fail the others: write each on its own. (Not when
                # the database itself failed — locked past the busy timeout, full, unreadable:
                # each would only fail the same way.)
                log.warning(
                    "intake: a group of %d failed (%s); writing them one by one", len(group), type(exc).__name__
                )
                for submission in group:
                    await self._write_sqlite([submission])
                return
            _fail(group, exc)
            return
        for submission, result in zip(group, results, strict=True):
            if not submission.done.done():
                submission.done.set_result(result)

    async def _new_ids(self, table: str, group: list[_Submission]) -> None:
        """The group's ids (or its emails') clashed with stored rows: the sequence moved back under
        this process. Drop what was reserved, move the sequence past the table, reserve anew."""
        self.db.drop_reserved_ids("endorsements")
        repaired = await self.db.repair_sequence(table)
        self.metrics.id_clashes.labels(table=table).inc()
        self.health.id_clash = (utcnow(), table, repaired)
        if repaired is not None:
            log.error(
                "intake: the %s id sequence was behind the table (next %d, highest id %d): moved it past "
                "the table. Was the database restored while petition ran?",
                table,
                *repaired,
            )
        else:
            log.error(
                "intake: reserved ids clashed with stored %s (the sequence had moved back; it is past the "
                "table now): reserving new ones. Was the database restored while petition ran?",
                table,
            )
        for submission in group:
            submission.record["id"] = await self.db.reserve_id("endorsements")

    async def _run(self, group: list[_Submission]) -> list[Row]:
        columns = [[s.record[name] for s in group] for name, _type in _COLUMNS]
        events, windows = _limits_of(group)
        rules = [
            (group[place].record["id"], rule.bucket, key, since, rule.limit, before)
            for place, rule, key, since, before in windows
        ]
        return list(
            await self.db.fetch_all_raw(
                SUBMIT_SQL,
                *columns,
                [bucket for bucket, _key, _at in events],
                [key for _bucket, key, _at in events],
                [at for _bucket, _key, at in events],
                *([r[i] for r in rules] for i in range(6)),
            )
        )


def _limits_of(
    group: list[_Submission],
) -> tuple[list[tuple[str, str, dt.datetime]], list[tuple[int, Rule, str, dt.datetime, int]]]:
    """The group's rate-limit events (bucket, key hash, time), and the windows to count: for each
    submission's rules, its place in the group, the rule, its key hash, the window's start, and how
    many submissions earlier in the group have that rule's key (`before`)."""
    events: list[tuple[str, str, dt.datetime]] = []
    windows: list[tuple[int, Rule, str, dt.datetime, int]] = []
    seen: dict[tuple[int, str, str], int] = {}  # (rule's place, bucket, key) → earlier in this group
    for place, s in enumerate(group):
        created_at = s.record["created_at"]
        events += [(bucket, key, created_at) for bucket, key in events_of(s.rules)]
        for rule_place, (rule, key) in enumerate(s.rules):
            before = seen.get((rule_place, rule.bucket, key), 0)
            seen[(rule_place, rule.bucket, key)] = before + 1
            windows.append((place, rule, key, created_at - dt.timedelta(seconds=rule.window), before))
    return events, windows


def _write_sqlite_group(group: list[_Submission], connection: sqlite3.Connection) -> list[Row]:
    """Each submission's row as SUBMIT_SQL answers it, in the writer's thread, inside the group's
    transaction: the limits counted as SUBMIT_SQL counts them (the stored events in each window,
    then `before`), the group's events recorded, and the endorsements inserted in arrival order
    (the same address twice: the earlier is stored), their emails after them."""
    times: dict[dt.datetime, str] = {}

    def as_text(value: dt.datetime) -> str:
        text = times.get(value)
        if text is None:
            text = times[value] = _SQLITE_TIME(value)
        return text

    events, windows = _limits_of(group)
    exceeded: list[set[str]] = [set() for _ in group]
    # Within SQLite's limits on a statement's columns and variables (MAX_GROUP × 5 rules at most).
    for start in range(0, len(windows), _SQLITE_MAX_WINDOWS):
        part = windows[start : start + _SQLITE_MAX_WINDOWS]
        counts = connection.execute(
            _sqlite_counts(len(part)),
            [v for _p, rule, key, since, _b in part for v in (rule.bucket, key, as_text(since), rule.limit)],
        ).fetchone()
        for (place, rule, _key, _since, before), stored in zip(part, counts, strict=True):
            if before + stored >= rule.limit:
                exceeded[place].add(rule.bucket)
    connection.executemany(_SQLITE_EVENT.sql, [(bucket, key, as_text(at)) for bucket, key, at in events])
    appeal_ids = sorted({s.record["appeal_id"] for s in group})
    statuses = dict(
        connection.execute(
            f"SELECT id, status FROM appeals WHERE id IN ({', '.join('?' * len(appeal_ids))})",  # noqa: S608 - placeholders
            appeal_ids,
        ).fetchall()
    )
    results: list[Row] = []
    emails = []
    for submission, held_by in zip(group, exceeded, strict=True):
        verdict = Verdict.of(held_by)
        status = statuses.get(submission.record["appeal_id"])
        result = {"appeal_status": status, "mailbox_ok": verdict.mailbox_ok, "held": verdict.hold_reason}
        result["inserted"] = False
        results.append(result)
        if status != AppealStatus.OPEN or not verdict.mailbox_ok:
            continue
        values = {**submission.record, "state": target_of(Event.SUBMIT).value, "hold_reason": verdict.hold_reason}
        inserted = connection.execute(_SQLITE_ENDORSEMENT.sql, _SQLITE_ENDORSEMENT.params(values))
        if inserted.rowcount == 0:
            continue  # a known address (or one earlier in this group): the general path takes it
        result["id"], result["inserted"] = inserted.lastrowid, True
        emails.append(_SQLITE_EMAIL.params({**submission.email, "endorsement_id": inserted.lastrowid}))
    connection.executemany(_SQLITE_EMAIL.sql, emails)
    return results


def _fail(group: list[_Submission], exc: BaseException) -> None:
    """Each waiting request gets the error (a cancellation cancels it)."""
    for submission in group:
        if submission.done.done():
            continue
        if isinstance(exc, asyncio.CancelledError):
            submission.done.cancel()
        else:
            submission.done.set_exception(exc)
        # Retrieved here, so a request that went away leaves no "never retrieved" warning.
        if not submission.done.cancelled():
            submission.done.exception()


def _clashing_table(exc: BaseException) -> str | None:
    """The table whose primary key a reserved id (or its email's id) clashed with, if that is what failed."""
    import asyncpg

    if not isinstance(exc, asyncpg.UniqueViolationError):
        return None
    constraint = getattr(exc, "constraint_name", None) or ""
    for table in ("endorsements", "outbox"):
        if constraint in (f"pk_{table}", f"{table}_pkey"):
            return table
    return None


def _is_connection_error(exc: BaseException) -> bool:
    """The database is away: writing the group one by one would only fail as many times."""
    import asyncpg

    return isinstance(
        exc, (OSError, asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError)
    )
