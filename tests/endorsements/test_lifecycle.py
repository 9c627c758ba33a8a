"""The life cycle's table, proved on the database: every event from every state.

An event the table allows moves the record to its target (or deletes it), writes exactly
one audit row in the same transaction and tells the public side once; one it does not
allow changes nothing, writes nothing and tells nobody.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest
import sqlalchemy as sa

from petition.appeals.queries import current_text, get_appeal_by_id
from petition.appeals.states import Moderation
from petition.audit.actions import AuditAction
from petition.audit.tables import audit_log
from petition.db import Database
from petition.endorsements import lifecycle
from petition.endorsements.lifecycle import (
    MAILBOX_CONFIRMED,
    SUBMITTED_FIELDS,
    TRANSITIONS,
    Actor,
    Event,
    Lifecycle,
    may,
    purge_stale,
    submit_endorsement,
)
from petition.endorsements.states import HELD, EndorsementState, HoldReason
from petition.endorsements.tables import endorsement_versions, endorsements
from petition.schema import utcnow
from tests.factories import add_endorsements, endorsement_row
from tests.organisers.support import add_organiser, db_of, make_appeal

S = EndorsementState
RETENTION = dt.timedelta(days=30)


class World:
    """One app's database and a life cycle whose hook writes down whom it told."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.db: Database = db_of(client)
        self.told: list[int | None] = []
        self.lifecycle = Lifecycle(self.db, client.app.state.services.mailer, on_public_change=self.told.append)
        self.appeal = make_appeal(client, f"cycle-{id(self)}", moderation=Moderation.POST)
        self.organiser_id = add_organiser(client, f"moderator{id(self)}@organisers.example", "moderator")

    def call(self, fn: Any) -> Any:
        return self.client.portal.call(fn)

    def record_in(self, state: EndorsementState, **overrides: Any) -> dict[str, Any]:
        """A record in `state`, as the life cycle leaves it there: confirmed by its mailbox unless pending."""
        overrides.setdefault("confirmed_at", None if state == S.PENDING else utcnow())
        [endorsement_id] = add_endorsements(self.client, appeal=self.appeal["id"], state=state.value, **overrides)
        return self.row(endorsement_id)  # type: ignore[return-value]

    def row(self, endorsement_id: int) -> dict[str, Any] | None:
        async def get() -> dict[str, Any] | None:
            found = await self.db.fetch_one(endorsements.select().where(endorsements.c.id == endorsement_id))
            return dict(found) if found is not None else None

        return self.call(get)  # type: ignore[no-any-return]

    def audit(self, endorsement_id: int) -> list[dict[str, Any]]:
        async def get() -> list[dict[str, Any]]:
            return [
                dict(r)
                for r in await self.db.fetch_all(
                    audit_log.select().where(
                        audit_log.c.target_type == "endorsement", audit_log.c.target_id == endorsement_id
                    )
                )
            ]

        return self.call(get)  # type: ignore[no-any-return]

    def waiting_submission(self, row: dict[str, Any], *, hold_reason: str | None) -> str:
        """A later submission beside the record, as its owner would confirm it: its link's nonce."""
        nonce = lifecycle.new_nonce()

        async def insert() -> None:
            async with self.db.write():
                await self.db.execute(
                    endorsement_versions.insert().values(
                        endorsement_id=row["id"],
                        token_nonce=nonce,
                        hold_reason=hold_reason,
                        created_at=utcnow(),
                        data=json.dumps({name: row[name] for name in SUBMITTED_FIELDS}),
                    )
                )

        self.call(insert)
        return nonce

    def prepare(self, event: Event, row: dict[str, Any]) -> dict[str, Any]:
        """The record as it is when `event` comes: a purge comes for what is past the retention period."""
        if event is not Event.PURGE:
            return row

        async def age() -> None:
            async with self.db.write():
                await self.db.execute(
                    endorsements.update()
                    .where(endorsements.c.id == row["id"])
                    .values(updated_at=utcnow() - RETENTION - dt.timedelta(days=10))
                )

        self.call(age)
        return self.row(row["id"])  # type: ignore[return-value]

    def perform(self, event: Event, row: dict[str, Any]) -> None:
        """Make `event` happen to the record, the way its actor makes it."""
        lc = self.lifecycle
        if event is Event.SUBMIT:

            async def submit() -> None:
                appeal = await get_appeal_by_id(self.db, appeal_id=row["appeal_id"])
                assert appeal is not None
                text = await current_text(self.db, appeal=appeal, language="en")
                assert text is not None
                data = endorsement_row(
                    {"id": row["appeal_id"], "moderation": "post"}, 0, contact_email=row["contact_email"]
                )
                await submit_endorsement(self.db, mailer=lc.mailer, appeal=appeal, text=text, data=data, language="en")

            self.call(submit)
        elif event in (Event.CONFIRM, Event.HOLD):
            # The owner presses Confirm on a later submission's link (a pending record's own link
            # works alike); a sender's limit held that submission back for HOLD.
            nonce = self.waiting_submission(row, hold_reason=HoldReason.IP.value if event is Event.HOLD else None)
            self.call(lambda: lc.confirm(endorsement_id=row["id"], nonce=nonce))
        elif event in (Event.APPROVE, Event.REJECT, Event.RELEASE):
            self.call(lambda: lc.decide(ids=[row["id"]], event=event, organiser_id=self.organiser_id))
        elif event is Event.WITHDRAW:
            self.call(lambda: lc.withdraw(endorsement_id=row["id"], nonce=row["token_nonce"]))
        elif event is Event.PURGE:
            self.call(lambda: purge_stale(self.db, cutoff=utcnow() - RETENTION))
        else:
            raise AssertionError(f"no way to make {event} happen")


def expected_event(event: Event, state: EndorsementState) -> Event:
    """What the owner's Confirm makes of a record: an earlier rejection or hold holds it again."""
    if event is Event.CONFIRM and state in (S.REJECTED, HELD):
        return Event.HOLD
    return event


def test_the_table_covers_every_event_and_says_who_makes_it():
    assert set(TRANSITIONS) == set(Event)
    for event, move in TRANSITIONS.items():
        assert move.by, event
        # Every change of an existing record is audited; a submission's record is its own trail.
        assert (move.audit is None) == (event is Event.SUBMIT), event
    assert TRANSITIONS[Event.SUBMIT].sources == frozenset() and TRANSITIONS[Event.SUBMIT].target == S.PENDING
    assert TRANSITIONS[Event.PURGE].target is None
    assert TRANSITIONS[Event.APPROVE].by == {Actor.ORGANISER, Actor.SYSTEM}
    assert TRANSITIONS[Event.WITHDRAW].by == TRANSITIONS[Event.CONFIRM].by == {Actor.CONTACT}
    # The audit page can filter by each action the life cycle writes.
    assert {move.audit for move in TRANSITIONS.values() if move.audit} <= set(AuditAction)


@pytest.mark.parametrize("event", list(Event))
def test_every_event_from_every_state(client, event):
    world = World(client)
    # All made first: SQLite hands a deleted row's id to the next row inserted.
    records = {state: world.record_in(state, visibility="anonymous") for state in S}
    for state, row in records.items():
        row = world.prepare(event, row)
        told = len(world.told)
        happens = expected_event(event, state)
        world.perform(event, row)
        after = world.row(row["id"])
        audit = world.audit(row["id"])
        move = TRANSITIONS[happens]
        if event is Event.SUBMIT:
            # A known address: the submission waits beside the record (or is answered "already"),
            # which stays as it was; nothing is audited, nobody is told.
            assert after == row, state
            assert audit == [] and len(world.told) == told, state
        elif may(happens, state):
            if move.target is None:
                assert after is None, (event, state)
            else:
                assert after is not None and after["state"] == move.target, (event, state, after)
            assert [(a["action"], a["organiser_id"] is None) for a in audit] == [
                (move.audit, Actor.ORGANISER not in move.by)
            ], (event, state, audit)
            # Names nothing: the record's number says which.
            assert all("Peace Group" not in a["detail"] and "@" not in a["detail"] for a in audit), audit
            if event is not Event.PURGE:  # what a purge deletes was never listed
                assert world.told[told:] == [row["appeal_id"]], (event, state)
        else:
            assert after == row, (event, state)
            assert audit == [], (event, state)
            assert len(world.told) == told, (event, state)


def test_a_new_submission_is_pending_and_not_audited(client):
    world = World(client)
    row = dict(
        endorsement_row({"id": world.appeal["id"], "moderation": "post"}, 0, contact_email="new@cycle.example"),
        id=0,
        token_nonce="",
    )
    world.perform(Event.SUBMIT, row)

    async def find() -> Any:
        return await world.db.fetch_one(
            endorsements.select().where(endorsements.c.email_canonical == "new@cycle.example")
        )

    found = world.call(find)
    assert found is not None and found["state"] == TRANSITIONS[Event.SUBMIT].target
    assert world.audit(found["id"]) == []


@pytest.mark.parametrize("event", [event for event, move in TRANSITIONS.items() if move.audit is not None])
def test_a_change_and_its_audit_row_commit_together(client, monkeypatch, event):
    """The audit row fails to be written: the change it records is not made either."""
    world = World(client)
    state = next(state for state in S if may(event, state) and expected_event(event, state) is event)
    row = world.prepare(event, world.record_in(state))

    async def audit_down(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("audit trail unavailable")

    monkeypatch.setattr(lifecycle, "record", audit_down)
    monkeypatch.setattr(lifecycle, "record_many", audit_down)
    with pytest.raises(RuntimeError, match="audit trail unavailable"):
        world.perform(event, row)
    assert world.row(row["id"]) == row, event
    assert world.told == []


def test_organisers_never_move_what_its_mailbox_did_not_confirm(client):
    """A record in a decision's source state that its mailbox never confirmed (made so by an
    earlier release's data) stays where it is."""
    world = World(client)
    for event in (Event.APPROVE, Event.RELEASE):
        assert TRANSITIONS[event].target in MAILBOX_CONFIRMED
        for state in (S.REJECTED, HELD):
            if not may(event, state):
                continue
            row = world.record_in(state, confirmed_at=None)
            world.perform(event, row)
            assert world.row(row["id"]) == row, (event, state)
            assert world.audit(row["id"]) == []


def test_a_bulk_decision_audits_each_changed_record_once_and_tells_each_appeal_once(client):
    world = World(client)
    other = make_appeal(client, "cycle-other", moderation=Moderation.PRE)
    here = add_endorsements(client, 3, appeal=world.appeal["id"])
    there = add_endorsements(client, 2, appeal=other["id"])
    pending = add_endorsements(client, 1, appeal=other["id"], state="pending", confirmed_at=None)
    changed = world.call(
        lambda: world.lifecycle.decide(
            ids=[*here, *there, *pending, *here], event=Event.APPROVE, organiser_id=world.organiser_id
        )
    )
    assert changed == sorted([*here, *there])
    assert sorted(world.told) == sorted([world.appeal["id"], other["id"]])

    async def rows() -> list[Any]:
        return list(
            await world.db.fetch_all(
                sa.select(audit_log.c.target_id, audit_log.c.action, audit_log.c.organiser_id).order_by(
                    audit_log.c.target_id
                )
            )
        )

    assert [(r["target_id"], r["action"], r["organiser_id"]) for r in world.call(rows)] == [
        (i, AuditAction.APPROVE, world.organiser_id) for i in sorted([*here, *there])
    ]


def test_this_processs_public_pages_show_each_change_at_once(make_site, smtp, database_url):
    """Through HTTP, as people make them: a confirmation, decisions, a withdrawal, the appeal's status."""
    from tests.conftest import BASE_URL
    from tests.organisers.support import csrf, login
    from tests.support import csrf_from, links, run_sql, wait_for_mail

    site = make_site(ip="198.51.100.95")
    client = site.client
    # Kept for an hour: only the life cycle's hook can make a page below show the change.
    client.app.state.services.public_cache.ttl = 3600

    def total() -> int:
        return int(client.get("/api/appeals/protect-deserters").json()["counts"]["total"])

    def named() -> bool:
        return "Fresh Group" in client.get("/appeals/protect-deserters/signatories").text

    def press(url: str) -> None:
        path = url.replace(BASE_URL, "")
        answer = client.post(path, data={"csrf_token": csrf_from(client.get(path).text)}, follow_redirects=False)
        assert answer.status_code == 303

    assert (total(), named()) == (0, False)
    site.endorse(contact_email="desk@fresh-group.example", organisation_name="Fresh Group")
    press(links(wait_for_mail(smtp, "desk@fresh-group.example")[0], BASE_URL)[0])
    assert (total(), named()) == (1, True)

    add_organiser(client, "mod@organisers.example", "admin")
    login(client, "mod@organisers.example")
    [row] = run_sql(database_url, "SELECT id, appeal_id FROM endorsements")
    for decision, expected in (("reject", (0, False)), ("approve", (1, True))):
        answer = client.post(
            f"/admin/endorsements/{row['id']}/decision",
            data={"csrf_token": csrf(client, "/admin/"), "decision": decision},
        )
        assert answer.status_code == 200
        assert (total(), named()) == expected, decision

    [thanks] = wait_for_mail(smtp, "desk@fresh-group.example", count=2)[1:]
    press(next(url for url in links(thanks, BASE_URL) if "/withdraw/" in url))
    assert (total(), named()) == (0, False)

    assert client.get("/api/appeals/protect-deserters").json()["status"] == "open"
    closed = client.post(
        f"/admin/appeals/{row['appeal_id']}/status",
        data={"csrf_token": csrf(client, "/admin/"), "status": "closed", "confirm_close": "yes"},
    )
    assert closed.status_code == 200
    assert client.get("/api/appeals/protect-deserters").json()["status"] == "closed"
