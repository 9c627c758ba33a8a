"""Submissions that arrive together are written together (on PostgreSQL in one statement, on
SQLite in one transaction), and each still gets exactly what it would have got alone."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from petition.appeals.queries import DEMO_SLUG, current_text, ensure_demo_appeal, get_appeal
from petition.db import Database
from petition.endorsements.forms import parse_endorsement_form
from petition.endorsements.intake import Intake
from petition.endorsements.lifecycle import SubmitOutcome
from petition.outbox.messages import Mailer, enqueue_email
from petition.outbox.tables import outbox
from petition.settings import Settings
from tests.conftest import make_settings
from tests.support import db_rows, valid_form, wait_for


def data_of(form: dict[str, str]) -> dict[str, Any]:
    parsed = parse_endorsement_form(form)
    assert parsed.ok, parsed.errors
    return parsed.data


def submit_together(settings: Settings, forms: list[dict[str, str]], ip: str = "198.51.100.4") -> list[Any]:
    """Submit every form at the same moment; each one's outcome, or the exception it raised."""
    return take_together(settings, [data_of(form) for form in forms], ip)


@contextlib.asynccontextmanager
async def demo_intake(settings: Settings) -> AsyncIterator[tuple[Intake, dict[str, Any], dict[str, Any]]]:
    """An Intake on the test database, with the demo appeal and its English text as read now."""
    db = Database(settings.database_url)
    await db.connect()
    try:
        await ensure_demo_appeal(db)
        appeal = dict(await get_appeal(db, slug=DEMO_SLUG))
        text = dict(await current_text(db, appeal=appeal, language="en"))
        yield Intake(db, settings, Mailer(settings)), appeal, text
    finally:
        await db.disconnect()


def take_together(settings: Settings, datas: list[dict[str, Any]], ip: str) -> list[Any]:

    async def go() -> list[Any]:
        async with demo_intake(settings) as (intake, appeal, text):
            return await asyncio.gather(
                *(intake.take(appeal=appeal, text=text, data=data, language="en", ip=ip) for data in datas),
                return_exceptions=True,
            )

    return asyncio.run(go())


@pytest.fixture
def roomy_settings(database_url, tmp_path) -> Settings:
    return make_settings(
        database_url,
        tmp_path / "data",
        None,
        rate_limit_ip_burst=1000,
        rate_limit_ip_sustained=1000,
        rate_limit_domain=1000,
    )


def test_forty_submissions_at_once_are_all_stored_each_with_its_confirmation(roomy_settings, database_url):
    forms = [
        valid_form(contact_email=f"office{i}@group{i % 7}.example", organisation_name=f"Group {i}") for i in range(40)
    ]
    # The same address twice in one go: one endorsement, the later submission waits beside it
    # with an email of its own.
    forms += [valid_form(contact_email="twice@group.example"), valid_form(contact_email="Twice@Group.example")]
    outcomes = submit_together(roomy_settings, forms)

    assert sorted(outcomes) == sorted([SubmitOutcome.NEW] * 41 + [SubmitOutcome.VERSION])
    rows = db_rows(database_url, "SELECT id, state, organisation_name, email_canonical FROM endorsements")
    assert len(rows) == 41 and {r["state"] for r in rows} == {"pending"}
    assert {r["organisation_name"] for r in rows} >= {f"Group {i}" for i in range(40)}
    mails = db_rows(database_url, "SELECT endorsement_id, kind, to_addr FROM outbox")
    assert sorted(m["kind"] for m in mails) == ["confirm"] * 42
    by_id = {r["id"]: r for r in rows}
    # Each email goes to its own endorsement's address.
    assert all(by_id[m["endorsement_id"]]["email_canonical"] == m["to_addr"].lower() for m in mails)


def test_over_the_limit_in_a_crowd_is_held_for_review_and_still_emailed(database_url, tmp_path):
    settings = make_settings(
        database_url,
        tmp_path / "data",
        None,
        rate_limit_ip_burst=1000,
        rate_limit_ip_sustained=1000,
        rate_limit_domain=3,
    )
    first = submit_together(settings, [valid_form(contact_email=f"a{i}@one-domain.example") for i in range(3)])
    assert first == [SubmitOutcome.NEW] * 3
    # The domain's three are used up: whoever comes next from it is held, the others are not.
    later = submit_together(
        settings,
        [valid_form(contact_email="b@one-domain.example"), valid_form(contact_email="c@another-domain.example")],
    )
    assert later == [SubmitOutcome.NEW, SubmitOutcome.NEW]
    holds = {
        r["email_canonical"]: r["hold_reason"]
        for r in db_rows(database_url, "SELECT email_canonical, hold_reason FROM endorsements WHERE state = 'pending'")
    }
    assert holds["b@one-domain.example"] == "form.domain"
    assert holds["c@another-domain.example"] is None
    # Held back, not silenced: the owner of the address is asked all the same.
    mailed = db_rows(database_url, "SELECT count(*) AS n FROM outbox WHERE to_addr = 'b@one-domain.example'")
    assert mailed[0]["n"] == 1


def test_a_burst_of_parallel_requests_from_one_address_is_held_past_the_limit(database_url, tmp_path):
    settings = make_settings(
        database_url, tmp_path / "data", None, rate_limit_ip_burst=10, rate_limit_ip_sustained=1000
    )
    forms = [valid_form(contact_email=f"bot{i}@d{i}.example") for i in range(30)]
    outcomes = submit_together(settings, forms, ip="192.0.2.66")
    # As if they had come one after another: ten pass, the rest are held for review once confirmed.
    assert outcomes == [SubmitOutcome.NEW] * 30
    holds = [r["hold_reason"] for r in db_rows(database_url, "SELECT hold_reason FROM endorsements")]
    assert sorted(holds, key=str) == sorted([None] * 10 + ["form.ip"] * 20, key=str)
    assert len(db_rows(database_url, "SELECT id FROM outbox")) == 30


@pytest.mark.parametrize("fault", ["too long", "missing"])
def test_one_submission_the_database_refuses_does_not_fail_the_others(roomy_settings, database_url, caplog, fault):
    if fault == "too long" and database_url.startswith("sqlite"):
        pytest.skip("SQLite does not enforce column lengths; this runs in the PostgreSQL pass")
    datas = [data_of(valid_form(contact_email=f"ok{i}@fine.example")) for i in range(9)]
    # A value longer than its column, or none for a column that needs one: the form never lets
    # one through, a bug might.
    datas[4]["organisation_name"] = "x" * 300 if fault == "too long" else None
    outcomes = take_together(roomy_settings, datas, "198.51.100.4")

    assert "writing them one by one" in caplog.text  # they did go as one group first
    assert outcomes[:4] + outcomes[5:] == [SubmitOutcome.NEW] * 8
    assert isinstance(outcomes[4], Exception)
    stored = {r["email_canonical"] for r in db_rows(database_url, "SELECT email_canonical FROM endorsements")}
    assert stored == {f"ok{i}@fine.example" for i in range(9)} - {"ok4@fine.example"}
    assert len(db_rows(database_url, "SELECT id FROM outbox")) == 8


def test_reserved_ids_stay_unique_across_blocks_and_processes(database_url):
    if database_url.startswith("sqlite"):
        pytest.skip("ids are reserved from PostgreSQL sequences; this runs in the PostgreSQL pass")

    async def go() -> tuple[list[int], list[int]]:
        first, second = Database(database_url), Database(database_url)
        await first.connect()
        await second.connect()
        try:
            # Two web processes, each through several blocks (and their background refills).
            a, b = [], []
            for _ in range(700):
                a.append(await first.reserve_id("endorsements"))
                b.append(await second.reserve_id("endorsements"))
            return a, b
        finally:
            await first.disconnect()
            await second.disconnect()

    a, b = asyncio.run(go())
    assert len(set(a) | set(b)) == 1400
    assert a == sorted(a) and b == sorted(b)  # each process hands its ids out in order


def test_the_same_address_twice_at_the_limit_keeps_the_first_and_caps_the_second(database_url, tmp_path):
    settings = make_settings(
        database_url,
        tmp_path / "data",
        None,
        rate_limit_ip_burst=1000,
        rate_limit_ip_sustained=1000,
        rate_limit_email=1,
    )
    forms = [
        valid_form(contact_email="once@limit.example", organisation_name="First"),
        valid_form(contact_email="once@limit.example", organisation_name="Second"),
    ]
    # As one after the other: one is stored and mailed, the other (over the address's own cap)
    # leaves the known record alone and sends nothing.
    outcomes = submit_together(settings, forms)
    # One group, in arrival order: the first submission is the one kept.
    assert outcomes == [SubmitOutcome.NEW, SubmitOutcome.CAPPED]
    [row] = db_rows(database_url, "SELECT state, organisation_name FROM endorsements")
    assert (row["state"], row["organisation_name"]) == ("pending", "First")
    assert len(db_rows(database_url, "SELECT id FROM outbox")) == 1


def test_an_appeal_paused_since_it_was_read_takes_nothing(roomy_settings, database_url):
    from tests.support import run_sql

    async def go() -> list[Any]:
        async with demo_intake(roomy_settings) as (intake, appeal, text):  # read while open, as the cache does
            await asyncio.to_thread(run_sql, database_url, "UPDATE appeals SET status = 'paused'")
            forms = [valid_form(contact_email=f"late{i}@paused.example") for i in range(3)]
            return await asyncio.gather(
                *(
                    intake.take(appeal=appeal, text=text, data=data_of(f), language="en", ip="198.51.100.9")
                    for f in forms
                )
            )

    assert asyncio.run(go()) == [SubmitOutcome.CLOSED] * 3
    assert db_rows(database_url, "SELECT id FROM endorsements") == []
    assert db_rows(database_url, "SELECT id FROM outbox") == []


@pytest.mark.parametrize("when", ["before it starts", "while it writes"])
def test_requests_waiting_for_a_write_that_is_cancelled_do_not_hang(roomy_settings, database_url, when):
    async def go() -> list[Any]:
        async with demo_intake(roomy_settings) as (intake, appeal, text):
            takes = [
                asyncio.create_task(
                    intake.take(
                        appeal=appeal,
                        text=text,
                        language="en",
                        ip="198.51.100.9",
                        data=data_of(valid_form(contact_email=f"c{i}@stop.example")),
                    )
                )
                for i in range(20)
            ]
            while not intake._writers:  # noqa: ASYNC110 - until the first group has a writer
                await asyncio.sleep(0)
            if when == "while it writes":
                for _ in range(5):  # it starts, and waits for PostgreSQL
                    await asyncio.sleep(0)
            for writer in list(intake._writers):
                writer.cancel()  # as when the event loop shuts down
            return await asyncio.wait_for(asyncio.gather(*takes, return_exceptions=True), 10)

    outcomes = asyncio.run(go())
    assert len(outcomes) == 20
    assert all(o is SubmitOutcome.NEW or isinstance(o, asyncio.CancelledError) for o in outcomes), outcomes
    assert any(isinstance(o, asyncio.CancelledError) for o in outcomes)
    # Whatever the cancelled write left, it left whole: every stored endorsement has its email.
    stored = db_rows(database_url, "SELECT id FROM endorsements")
    assert len(stored) >= outcomes.count(SubmitOutcome.NEW)
    assert len(db_rows(database_url, "SELECT id FROM outbox")) == len(stored)


def test_a_twin_in_the_same_group_waits_beside_the_record_and_changes_nothing(roomy_settings, database_url):
    """The rewrite attack through the grouped intake: the owner's anonymous submission and a +tag
    twin's public one arrive in one group; the record keeps the first, the twin's waits apart."""
    forms = [
        valid_form(contact_email="office@exile.example", organisation_name="Exile Group", visibility="anonymous"),
        valid_form(
            contact_email="Office+x@exile.example",
            organisation_name="Named By Someone Else",
            visibility="public",
            website="attacker.example",
        ),
    ]
    outcomes = submit_together(roomy_settings, forms)
    assert outcomes == [SubmitOutcome.NEW, SubmitOutcome.VERSION]  # one group, in arrival order
    [row] = db_rows(database_url, "SELECT organisation_name, visibility, website, token_nonce FROM endorsements")
    assert (row["organisation_name"], row["visibility"], row["website"]) == (
        "Exile Group",
        "anonymous",
        "https://connection-ev.org",
    )
    [version] = db_rows(database_url, "SELECT token_nonce, data FROM endorsement_versions")
    [record] = db_rows(database_url, "SELECT token_nonce FROM endorsements")
    # Two emails, two nonces: neither link can confirm the other's facts.
    assert version["token_nonce"] != record["token_nonce"]
    mails = db_rows(database_url, "SELECT context FROM outbox WHERE kind = 'confirm' ORDER BY id")
    assert len(mails) == 2 and {version["token_nonce"], record["token_nonce"]} == {
        json.loads(m["context"])["confirm_url"]["nonce"] for m in mails
    }


def test_the_grouped_intake_queues_the_row_enqueue_email_would(roomy_settings, database_url):
    """On PostgreSQL the intake's own statement writes the confirmation email's outbox row: it must
    be the row the outbox itself writes for that email, in every column but ids and times."""
    assert submit_together(roomy_settings, [valid_form(contact_email="same@row.example")]) == [SubmitOutcome.NEW]
    [taken] = db_rows(database_url, "SELECT * FROM outbox")

    async def enqueue() -> None:
        db = Database(roomy_settings.database_url)
        await db.connect()
        try:
            async with db.write():
                await enqueue_email(
                    db,
                    settings=roomy_settings,
                    name=taken["kind"],
                    to=taken["to_addr"],
                    language=taken["language"],
                    context=json.loads(taken["context"]),
                    endorsement_id=taken["endorsement_id"],
                )
        finally:
            await db.disconnect()

    asyncio.run(enqueue())
    [queued] = db_rows(database_url, "SELECT * FROM outbox WHERE id <> $1", taken["id"])
    assert set(taken) == {column.name for column in outbox.c}  # a column added later is compared too
    unique = {"id", "message_id", "next_attempt_at", "created_at"}
    assert {k: v for k, v in taken.items() if k not in unique} == {k: v for k, v in queued.items() if k not in unique}


def group_sizes(intake: Intake) -> tuple[float, float]:
    """How many groups the intake wrote, and how many submissions they held (its /metrics histogram)."""
    samples = {s.name: s.value for metric in intake.metrics.intake_group_size.collect() for s in metric.samples}
    return samples["petition_intake_group_size_count"], samples["petition_intake_group_size_sum"]


def groups_larger_than(intake: Intake, bound: int) -> float:
    """How many groups held more than `bound` submissions (`bound` one of the histogram's buckets)."""
    samples = [s for metric in intake.metrics.intake_group_size.collect() for s in metric.samples]
    within = next(s.value for s in samples if s.name.endswith("_bucket") and float(s.labels["le"]) == bound)
    return group_sizes(intake)[0] - within


def test_a_burst_for_one_address_keeps_the_first_and_the_rest_wait_beside_it(database_url, tmp_path):
    """Eight requests at once for one mailbox (a script hammering the form): one record, the first;
    the seven others wait beside it unconfirmed, each with its own email, and change nothing."""
    settings = make_settings(
        database_url,
        tmp_path / "data",
        None,
        rate_limit_ip_burst=1000,
        rate_limit_ip_sustained=1000,
        rate_limit_email=100,
    )
    forms = [valid_form(contact_email="target@burst.example", organisation_name=f"Name {i}") for i in range(8)]
    outcomes = submit_together(settings, forms)
    assert outcomes == [SubmitOutcome.NEW] + [SubmitOutcome.VERSION] * 7
    [row] = db_rows(database_url, "SELECT organisation_name, state FROM endorsements")
    assert (row["organisation_name"], row["state"]) == ("Name 0", "pending")
    assert len(db_rows(database_url, "SELECT id FROM endorsement_versions")) == 7
    assert len(db_rows(database_url, "SELECT id FROM outbox WHERE kind = 'confirm'")) == 8


def test_thirty_at_once_from_one_client_go_in_two_groups_and_ten_pass(database_url, tmp_path):
    """The limits count inside a group and across groups as if the submissions came one at a time,
    and a group is one write (petition_intake_group_size on /metrics): on SQLite too, one commit for
    many. A burst goes in two writes, the older half first: the process prepares the newer half's
    submissions while the first is written, and does not sit idle while the database works."""
    settings = make_settings(
        database_url, tmp_path / "data", None, rate_limit_ip_burst=10, rate_limit_ip_sustained=1000
    )

    async def go() -> tuple[list[Any], tuple[float, float], float]:
        async with demo_intake(settings) as (intake, appeal, text):
            outcomes = await asyncio.gather(
                *(
                    intake.take(
                        appeal=appeal,
                        text=text,
                        data=data_of(valid_form(contact_email=f"bot{i}@d{i}.example")),
                        language="en",
                        ip="192.0.2.77",
                    )
                    for i in range(30)
                )
            )
            return outcomes, group_sizes(intake), groups_larger_than(intake, 20)

    outcomes, (groups, submissions), large = asyncio.run(go())
    assert outcomes == [SubmitOutcome.NEW] * 30
    # Two writes for the burst (three on PostgreSQL, where the first submission can go alone while
    # the others reserve their ids), none of them the whole burst.
    assert submissions == 30 and 2 <= groups <= 3 and large == 0
    holds = [r["hold_reason"] for r in db_rows(database_url, "SELECT hold_reason FROM endorsements ORDER BY id")]
    # The first ten in arrival order pass; the twenty after them are held for review once confirmed.
    assert holds == [None] * 10 + ["form.ip"] * 20


def test_with_a_slow_database_no_submission_waits_behind_more_than_one_other_statement(database_url, tmp_path):
    """A database that takes 50 ms a statement (far away, or busy) and ten submitters who each send
    again when answered. A statement leaves the newer half of what waits for the next one, so a
    submission may wait for the statement under way and one more, never longer: what waited
    through one statement goes in the next, whatever arrived since."""
    settings = make_settings(
        database_url, tmp_path / "data", None, rate_limit_ip_burst=1000, rate_limit_ip_sustained=1000
    )
    started = 0  # statements begun
    arrived: dict[str, int] = {}  # submission (its address) → statements begun when it came
    placed: dict[str, int] = {}  # submission → the statement that wrote it

    async def go() -> list[Any]:
        async with demo_intake(settings) as (intake, appeal, text):
            start_writing, write = intake._start_writing, intake._write

            def noted() -> None:
                arrived[intake._waiting[-1].record["email_canonical"]] = started
                start_writing()

            async def slow(group: list[Any], **kwargs: Any) -> None:
                nonlocal started
                started += 1
                placed.update((submission.record["email_canonical"], started) for submission in group)
                await asyncio.sleep(0.05)
                await write(group, **kwargs)

            intake._start_writing = noted  # type: ignore[method-assign]
            intake._write = slow  # type: ignore[method-assign]

            async def submitter(n: int) -> list[Any]:
                return [
                    await intake.take(
                        appeal=appeal,
                        text=text,
                        data=data_of(valid_form(contact_email=f"s{n}x{i}@d{n}x{i}.example")),
                        language="en",
                        ip=f"192.0.2.{n}",
                    )
                    for i in range(6)
                ]

            return await asyncio.gather(*(submitter(n) for n in range(10)))

    outcomes = asyncio.run(go())
    assert outcomes == [[SubmitOutcome.NEW] * 6] * 10
    waited = [placed[submission] - came for submission, came in arrived.items()]
    assert len(waited) == 60 and min(waited) == 1 and max(waited) == 2, waited


def _sqlite_path(database_url: str) -> str:
    return database_url[len("sqlite:///") :]


CRASHING_WRITER = """
import asyncio, os, sys, time
from petition.abuse import limits

original = limits.Verdict.of.__func__
calls = 0


def of(cls, buckets):
    # The fifth submission's verdict: four are written in this group's transaction by now.
    global calls
    calls += 1
    if calls == 5:
        with open(sys.argv[2], "w") as marker:
            marker.write("writing")
        time.sleep(120)  # the test kills the process here
    return original(cls, buckets)


limits.Verdict.of = classmethod(of)

from petition.appeals.queries import DEMO_SLUG, current_text, get_appeal
from petition.db import Database
from petition.endorsements.forms import parse_endorsement_form
from petition.endorsements.intake import Intake
from petition.outbox.messages import Mailer
from tests.conftest import make_settings
from tests.support import valid_form


async def main():
    settings = make_settings(sys.argv[1], sys.argv[3], None, rate_limit_ip_burst=1000, rate_limit_ip_sustained=1000)
    db = Database(settings.database_url)
    await db.connect()
    appeal = dict(await get_appeal(db, slug=DEMO_SLUG))
    text = dict(await current_text(db, appeal=appeal, language="en"))
    intake = Intake(db, settings, Mailer(settings))
    forms = [valid_form(contact_email=f"crash{i}@d{i}.example") for i in range(10)]
    await asyncio.gather(
        *(
            intake.take(appeal=appeal, text=text, data=parse_endorsement_form(f).data, language="en", ip="198.51.100.7")
            for f in forms
        )
    )


asyncio.run(main())
"""


def test_a_process_killed_while_it_writes_a_group_leaves_none_of_it(roomy_settings, database_url, tmp_path):
    """Power cut or kill -9 in the middle of a group: all of it or none of it is stored, never some
    submissions without their emails or limits counted for submissions that were not stored."""
    if not database_url.startswith("sqlite"):
        pytest.skip("the embedded default's writer; PostgreSQL's group is one statement")
    asyncio.run(_ensure_demo(roomy_settings))
    marker = tmp_path / "writing"
    script = tmp_path / "crashing_writer.py"
    script.write_text(CRASHING_WRITER)
    root = Path(__file__).resolve().parents[2]
    process = subprocess.Popen(
        [sys.executable, str(script), database_url, str(marker), str(tmp_path / "data")],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
    )
    try:
        wait_for(marker.exists, timeout=60)
    finally:
        process.kill()
        process.wait()
    assert db_rows(database_url, "SELECT id FROM endorsements") == []
    assert db_rows(database_url, "SELECT id FROM outbox") == []
    assert db_rows(database_url, "SELECT id FROM rate_events") == []
    assert db_rows(database_url, "PRAGMA integrity_check") == [{"integrity_check": "ok"}]
    # The next process writes as if nothing happened.
    assert submit_together(roomy_settings, [valid_form(contact_email="after@crash.example")]) == [SubmitOutcome.NEW]


async def _ensure_demo(settings: Settings) -> None:
    db = Database(settings.database_url)
    await db.connect()
    try:
        await ensure_demo_appeal(db)
    finally:
        await db.disconnect()


LOCK_HOLDER = """
import sqlite3, sys, time
connection = sqlite3.connect(sys.argv[1], isolation_level=None)
connection.execute("BEGIN IMMEDIATE")
connection.execute(
    "INSERT INTO rate_events (bucket, key_hash, created_at) VALUES ('other', 'x', '2000-01-01 00:00:00.000000')"
)
print("locked", flush=True)
time.sleep(1.5)
connection.execute("COMMIT")
"""


def test_submissions_wait_for_another_process_that_holds_the_write_lock(roomy_settings, database_url):
    """A `petition worker` (or a backup) holding SQLite's write lock for a while: the submissions
    that arrive meanwhile wait for it (busy timeout) and are all stored, none fails."""
    if not database_url.startswith("sqlite"):
        pytest.skip("SQLite's one writer; PostgreSQL locks rows")
    asyncio.run(_ensure_demo(roomy_settings))
    with subprocess.Popen(
        [sys.executable, "-c", LOCK_HOLDER, _sqlite_path(database_url)], stdout=subprocess.PIPE, text=True
    ) as holder:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
        forms = [valid_form(contact_email=f"waits{i}@d{i}.example") for i in range(12)]
        outcomes = submit_together(roomy_settings, forms)
        assert holder.wait(30) == 0
    assert outcomes == [SubmitOutcome.NEW] * 12
    assert len(db_rows(database_url, "SELECT id FROM endorsements")) == 12
    assert len(db_rows(database_url, "SELECT id FROM outbox")) == 12
    assert len(db_rows(database_url, "SELECT id FROM rate_events WHERE bucket = 'other'")) == 1
