"""The public log on the database, over HTTP: what each change of the public list appends,
what anonymous entries hold back, proofs that verify against signed checkpoints."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from typing import Any

import pytest
import sqlalchemy as sa

from petition.appeals.states import Moderation
from petition.db import Database
from petition.endorsements.lifecycle import Event, Lifecycle
from petition.endorsements.public_record import note_public_changes
from petition.endorsements.states import EndorsementState
from petition.endorsements.tables import endorsements
from petition.organisers.appeals import update_settings
from petition.organisers.moderation import correct_endorsement
from petition.transparency import merkle, store
from petition.transparency.keys import log_signer
from petition.transparency.note import Checkpoint, Verifier, open_note
from tests.factories import add_endorsements
from tests.organisers.support import add_organiser, db_of, make_appeal

S = EndorsementState


class Log:
    """The log as an auditor sees it, over HTTP, and the app's own life cycle to change the list."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.db: Database = db_of(client)
        self.lifecycle = Lifecycle(self.db, client.app.state.services.mailer)
        self.organiser = add_organiser(client, f"mod{id(self)}@organisers.example", "moderator")

    def call(self, fn: Any) -> Any:
        return self.client.portal.call(fn)

    def checkpoint(self, at_least: int = 0) -> tuple[Checkpoint, str]:
        """The latest checkpoint, verified with /log/key, once it holds `at_least` entries (the
        app's own worker appends within its poll interval)."""
        deadline = time.monotonic() + 10
        while True:
            note = self.client.get("/log/checkpoint")
            key = self.client.get("/log/key")
            if note.status_code == 200:
                verifier = Verifier.parse(key.text.strip())
                checkpoint = Checkpoint.parse(open_note(note.text, verifier))
                if checkpoint.size >= at_least:
                    return checkpoint, note.text
            assert time.monotonic() < deadline, f"no checkpoint of {at_least} entries within 10 s"
            time.sleep(0.05)

    def entries(self, start: int, end: int) -> list[dict[str, Any]]:
        response = self.client.get("/log/entries", params={"start": start, "end": end})
        assert response.status_code == 200, response.text
        return [
            json.loads(item["leaf"]) | {"_index": item["index"], "_leaf": item["leaf"]}
            for item in response.json()["entries"]
        ]

    def proof(self, path: str, **params: int) -> list[bytes]:
        response = self.client.get(f"/log/proof/{path}", params=params)
        assert response.status_code == 200, response.text
        return [base64.b64decode(value) for value in response.json()["hashes"]]

    def confirmed(self, appeal: dict[str, Any], **fields: Any) -> int:
        """An endorsement submitted and confirmed by its mailbox, as the life cycle does it."""
        [endorsement_id] = add_endorsements(self.client, appeal=appeal["id"], state=S.PENDING.value, **fields)
        row = self.row(endorsement_id)
        outcome, _ = self.call(lambda: self.lifecycle.confirm(endorsement_id=endorsement_id, nonce=row["token_nonce"]))
        assert outcome.value in ("confirmed", "held"), outcome
        return endorsement_id

    def row(self, endorsement_id: int) -> dict[str, Any]:
        async def get() -> dict[str, Any]:
            found = await self.db.fetch_one(endorsements.select().where(endorsements.c.id == endorsement_id))
            assert found is not None
            return dict(found)

        return self.call(get)  # type: ignore[no-any-return]


@pytest.fixture
def log(client: Any) -> Log:
    return Log(client)


def test_a_listing_is_an_entry_whose_inclusion_and_consistency_verify(log: Log):
    appeal = make_appeal(log.client, "logged", moderation=Moderation.POST)
    empty, _ = log.checkpoint()
    log.confirmed(appeal, organisation_name="Friedenskooperative Nord", city="Kiel", country="DE", visibility="public")
    checkpoint, note = log.checkpoint(at_least=empty.size + 1)
    [entry] = log.entries(checkpoint.size - 1, checkpoint.size)
    assert entry["event"] == "listed" and entry["appeal"] == "logged"
    assert (entry["organisation_name"], entry["city"], entry["country"]) == ("Friedenskooperative Nord", "Kiel", "DE")
    assert entry["_leaf"] == json.dumps(
        {k: v for k, v in entry.items() if not k.startswith("_")},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )  # canonical JSON, byte for byte
    index = entry["_index"]
    proof = log.proof("inclusion", index=index, size=checkpoint.size)
    merkle.verify_inclusion(index, checkpoint.size, merkle.leaf_hash(entry["_leaf"].encode()), proof, checkpoint.root)
    with pytest.raises(merkle.ProofError):  # a leaf that says something else is not in it
        forged = entry["_leaf"].replace("Kiel", "Kyiv")
        merkle.verify_inclusion(index, checkpoint.size, merkle.leaf_hash(forged.encode()), proof, checkpoint.root)
    # The next listing: the new checkpoint extends the one an auditor kept.
    log.confirmed(appeal, organisation_name="Second", visibility="public")
    newer, _ = log.checkpoint(at_least=checkpoint.size + 1)
    consistency = log.proof("consistency", first=checkpoint.size, second=newer.size)
    merkle.verify_consistency(checkpoint.size, newer.size, consistency, checkpoint.root, newer.root)


def test_an_anonymous_entry_names_no_one(log: Log):
    appeal = make_appeal(log.client, "quiet", moderation=Moderation.POST)
    before, _ = log.checkpoint()
    log.confirmed(
        appeal,
        organisation_name="Belarusian Exile Group",
        city="Vilnius",
        website="https://exile-group.example",
        contact_email="head@exile-group.example",
        country="BY",
        visibility="anonymous",
    )
    checkpoint, _ = log.checkpoint(at_least=before.size + 1)
    [entry] = log.entries(checkpoint.size - 1, checkpoint.size)
    assert set(entry) - {"_index", "_leaf"} == {"appeal", "event", "entry", "country", "visibility", "at", "commitment"}
    assert entry["country"] == "BY" and entry["visibility"] == "anonymous"
    # Its day only: a moment, next to its country, could point at a group seen acting then.
    assert len(entry["at"]) == len("2026-12-02") and entry["at"][4] == "-" and "T" not in entry["at"]
    for secret in ("Belarusian", "Exile", "Vilnius", "exile-group", "head@"):
        assert secret.lower() not in entry["_leaf"].lower()


def test_withdrawal_rejection_and_correction_append_and_never_delete(log: Log):
    appeal = make_appeal(log.client, "changes", moderation=Moderation.POST)
    start, _ = log.checkpoint()
    first = log.confirmed(appeal, organisation_name="Withdraws Later", visibility="public")
    second = log.confirmed(appeal, organisation_name="Rejected Later", visibility="public")
    third = log.confirmed(appeal, organisation_name="Typo Nmae", visibility="public")
    listed, _ = log.checkpoint(at_least=start.size + 3)
    ids = {e["organisation_name"]: e["entry"] for e in log.entries(start.size, listed.size)}

    nonce, typo = log.row(first)["token_nonce"], log.row(third)
    log.call(lambda: log.lifecycle.withdraw(endorsement_id=first, nonce=nonce))
    log.call(lambda: log.lifecycle.decide(ids=[second], event=Event.REJECT, organiser_id=log.organiser))
    correction = log.call(
        lambda: correct_endorsement(
            log.db, row=typo, submitted={"organisation_name": "Typo Name"}, organiser_id=log.organiser
        )
    )
    assert correction.changed == ["organisation_name"]
    after, _ = log.checkpoint(at_least=listed.size + 3)
    later = log.entries(listed.size, after.size)
    events = {(e["entry"], e["event"]) for e in later}
    assert (ids["Withdraws Later"], "withdrawn") in events
    assert (ids["Rejected Later"], "delisted") in events
    renamed = [e for e in later if e["entry"] == ids["Typo Nmae"]]
    assert [(e["event"], e["organisation_name"]) for e in renamed] == [("listed", "Typo Name")]
    # Nothing was taken out: the first entries are still there, word for word.
    assert [e["organisation_name"] for e in log.entries(start.size, listed.size)] == [
        "Withdraws Later",
        "Rejected Later",
        "Typo Nmae",
    ]
    merkle.verify_consistency(
        listed.size, after.size, log.proof("consistency", first=listed.size, second=after.size), listed.root, after.root
    )
    # A second rejection changes nothing and appends nothing.
    log.call(lambda: log.lifecycle.decide(ids=[second], event=Event.REJECT, organiser_id=log.organiser))
    time.sleep(0.3)
    assert log.checkpoint()[0].size == after.size


def test_pre_moderation_logs_at_approval_and_a_moderation_change_delists(log: Log):
    appeal = make_appeal(log.client, "moderated", moderation=Moderation.PRE)
    start, _ = log.checkpoint()
    waiting = log.confirmed(appeal, organisation_name="Waits For Approval", visibility="public")
    time.sleep(0.3)  # the worker polls every 0.05 s in the tests: it had its chance to append
    assert log.checkpoint()[0].size == start.size  # confirmed is not listed under pre-moderation
    log.call(lambda: log.lifecycle.decide(ids=[waiting], event=Event.APPROVE, organiser_id=log.organiser))
    approved, _ = log.checkpoint(at_least=start.size + 1)
    [entry] = log.entries(start.size, approved.size)
    assert (entry["event"], entry["organisation_name"]) == ("listed", "Waits For Approval")

    post = make_appeal(log.client, "switches", moderation=Moderation.POST)
    listed_by_confirmation = log.confirmed(post, organisation_name="Listed By Confirming", visibility="public")
    before_switch, _ = log.checkpoint(at_least=approved.size + 1)
    log.call(
        lambda: update_settings(
            log.db, appeal_id=post["id"], moderation=Moderation.PRE, default_language="en", addressees=""
        )
    )
    switched, _ = log.checkpoint(at_least=before_switch.size + 1)
    [delisted] = log.entries(before_switch.size, switched.size)
    assert delisted["event"] == "delisted"
    assert log.row(listed_by_confirmation)["state"] == S.CONFIRMED.value


def test_a_row_deleted_behind_the_applications_back_stays_in_the_log(log: Log):
    appeal = make_appeal(log.client, "tampered", moderation=Moderation.POST)
    start, _ = log.checkpoint()
    victim = log.confirmed(appeal, organisation_name="Inconvenient Group", visibility="public")
    listed, _ = log.checkpoint(at_least=start.size + 1)

    async def tamper() -> None:
        async with log.db.write():
            await log.db.execute(endorsements.delete().where(endorsements.c.id == victim))

    log.call(tamper)
    time.sleep(0.3)
    after, _ = log.checkpoint()
    assert after.size == listed.size  # nothing appended: the log still lists it, the list does not
    [entry] = log.entries(start.size, listed.size)
    assert entry["organisation_name"] == "Inconvenient Group"


def test_bad_requests_are_answered_400_with_json(log: Log):
    log.checkpoint()
    for path, params in (
        ("/log/entries", {"start": "1", "end": "0"}),
        ("/log/entries", {"start": "0", "end": "5000"}),
        ("/log/entries", {"start": "x", "end": "1"}),
        ("/log/entries", {"start": "0", "end": "99"}),
        ("/log/proof/inclusion", {"index": "0", "size": "99"}),
        ("/log/proof/inclusion", {"index": "-1", "size": "1"}),
        ("/log/proof/consistency", {"first": "2", "second": "1"}),
        ("/log/proof/consistency", {"first": "0"}),
    ):
        response = log.client.get(path, params=params)
        assert response.status_code == 400, (path, params, response.text)
        assert "error" in response.json()


def test_two_workers_append_in_turn(log: Log, settings: Any):
    """Appends from several workers at once take turns: every leaf once, the tree consistent."""
    appeal = make_appeal(log.client, "crowded", moderation=Moderation.POST)
    start, _ = log.checkpoint()
    ids = add_endorsements(log.client, 60, appeal=appeal["id"], state=S.PENDING.value)

    async def race() -> None:
        dbs = [Database(settings.database_url) for _ in range(3)]
        for db in dbs:
            await db.connect()
        try:
            async with log.db.write():
                await log.db.execute(
                    endorsements.update().where(endorsements.c.id.in_(ids)).values(state=S.CONFIRMED.value)
                )
                await note_public_changes(log.db, ids)
            # The deployment's own key, as every worker's: a key of the test's would have the app's
            # worker sign the same size again with its own, between a reader's two requests.
            signer = await log_signer(log.db, settings)
            await asyncio.gather(*(store.append(db, signer, batch=7) for db in dbs for _ in range(4)))
        finally:
            for db in dbs:
                await db.disconnect()

    log.call(race)
    final, _ = log.checkpoint(at_least=start.size + 60)
    leaves = log.entries(start.size, final.size)
    assert len({e["entry"] for e in leaves}) == 60 == len(leaves)
    merkle.verify_consistency(
        start.size, final.size, log.proof("consistency", first=start.size, second=final.size), start.root, final.root
    )
    count = log.call(lambda: log.db.fetch_val(sa.text("SELECT count(*) FROM public_record_events")))
    assert count == 0


def test_switching_to_post_moderation_lists_the_confirmed_everywhere(log: Log):
    """Found by the property test: an endorsement confirmed under pre-moderation, listed by the
    switch to post-moderation, was counted and in the log but missing from the newest-first
    lists (the appeal page, the JSON API), which read only rows with a public date."""
    appeal = make_appeal(log.client, "switched-on", moderation=Moderation.PRE)
    start, _ = log.checkpoint()
    log.confirmed(appeal, organisation_name="Confirmed Before The Switch", visibility="public")
    log.call(
        lambda: update_settings(
            log.db, appeal_id=appeal["id"], moderation=Moderation.POST, default_language="en", addressees=""
        )
    )
    listed, _ = log.checkpoint(at_least=start.size + 1)
    [entry] = log.entries(start.size, listed.size)
    assert (entry["event"], entry["organisation_name"]) == ("listed", "Confirmed Before The Switch")
    log.client.app.state.services.public_cache.invalidate()
    items = log.client.get("/api/appeals/switched-on/endorsements").json()["items"]
    assert [item["organisation_name"] for item in items] == ["Confirmed Before The Switch"]
    # And back: it leaves the lists and the log says so.
    log.call(
        lambda: update_settings(
            log.db, appeal_id=appeal["id"], moderation=Moderation.PRE, default_language="en", addressees=""
        )
    )
    log.client.app.state.services.public_cache.invalidate()
    assert log.client.get("/api/appeals/switched-on/endorsements").json()["items"] == []
    back, _ = log.checkpoint(at_least=listed.size + 1)
    assert [e["event"] for e in log.entries(listed.size, back.size)] == ["delisted"]


def test_a_change_committed_during_an_append_is_not_lost(log: Log, settings: Any):
    """PostgreSQL hands out the queue's ids at insert time, not at commit: a change holding a
    lower id may commit while an append runs. Its leaf must wait for the next append, not be
    deleted with the ones appended (it was, when the append deleted `id <= last`)."""
    if log.db.is_sqlite:
        pytest.skip("SQLite has one writer: no change commits while an append runs")
    import asyncpg

    from petition.endorsements.tables import public_record_events

    url = settings.database_url
    leaf = '{{"appeal":"race","entry":"{0}"}}'

    async def race() -> None:
        slow = await asyncpg.connect(url)
        fast = await asyncpg.connect(url)
        try:
            insert = "INSERT INTO public_record_events (entry_id, leaf, created_at) VALUES ($1, $2, now()) RETURNING id"
            tx = slow.transaction()
            await tx.start()
            low = await slow.fetchval(insert, "slow", leaf.format("slow"))
            high = await fast.fetchval(insert, "fast", leaf.format("fast"))
            assert low < high
            original = store.latest
            committed = False

            async def commit_then_latest(db: Database) -> Any:
                nonlocal committed
                if not committed:
                    committed = True
                    await tx.commit()  # the slow change commits between the append's SELECT and its DELETE
                return await original(db)

            store.latest = commit_then_latest  # type: ignore[assignment]
            try:
                await store.append(log.db, await log_signer(log.db, settings))
            finally:
                store.latest = original  # type: ignore[assignment]
            await store.append(log.db, await log_signer(log.db, settings))
            left = await log.db.fetch_val(sa.select(sa.func.count()).select_from(public_record_events))
            assert left == 0
        finally:
            await slow.close()
            await fast.close()

    log.call(race)
    checkpoint, _ = log.checkpoint()
    entries = {e["entry"] for e in log.entries(max(0, checkpoint.size - 10), checkpoint.size)}
    assert {"slow", "fast"} <= entries


def _resubmit(log: Log, appeal: dict[str, Any], endorsement_id: int, **changes: Any) -> str:
    """A new submission for the record's mailbox (what the form does), waiting beside it: its nonce."""
    from petition.appeals.tables import appeal_texts, appeals
    from petition.endorsements.forms import parse_endorsement_form
    from petition.endorsements.lifecycle import submit_endorsement
    from petition.endorsements.tables import endorsement_versions

    row = log.row(endorsement_id)
    form = {
        "organisation_name": row["organisation_name"],
        "country": row["country"],
        "city": row["city"],
        "organisation_type": row["organisation_type"],
        "website": "",
        "contact_name": "A Contact",
        "contact_role": "",
        "contact_email": row["contact_email"],
        "authorised": "yes",
        "consent": "yes",
        "visibility": row["visibility"],
        "comment": "",
        **changes,
    }
    parsed = parse_endorsement_form(form)
    assert parsed.ok, parsed.errors

    async def submit() -> str:
        appeal_row = await log.db.fetch_one(appeals.select().where(appeals.c.id == appeal["id"]))
        text = await log.db.fetch_one(appeal_texts.select().where(appeal_texts.c.appeal_id == appeal["id"]))
        mailer = log.client.app.state.services.mailer
        await submit_endorsement(log.db, mailer=mailer, appeal=appeal_row, text=text, data=parsed.data, language="en")
        version = await log.db.fetch_one(
            endorsement_versions.select()
            .where(endorsement_versions.c.endorsement_id == endorsement_id)
            .order_by(endorsement_versions.c.id.desc())
        )
        assert version is not None
        return str(version["token_nonce"])

    return log.call(submit)  # type: ignore[no-any-return]


def test_a_named_organisation_that_comes_back_anonymous_is_a_new_entry(log: Log):
    """Review finding: the entry id followed the record, so the log said for good that a group
    once named still endorses, anonymously. One entry is one listing: the anonymous listing is
    another entry, tied to the named one by nothing in the log, and the old receipt opens nothing."""
    appeal = make_appeal(log.client, "comes-back", moderation=Moderation.POST)
    start, _ = log.checkpoint()
    first = log.confirmed(appeal, organisation_name="Named Then Hidden", country="BY", visibility="public")
    named, _ = log.checkpoint(at_least=start.size + 1)
    [listed] = log.entries(start.size, named.size)
    nonce = log.row(first)["token_nonce"]
    log.call(lambda: log.lifecycle.withdraw(endorsement_id=first, nonce=nonce))
    again = _resubmit(log, appeal, first, visibility="anonymous")
    outcome, _row = log.call(lambda: log.lifecycle.confirm(endorsement_id=first, nonce=again))
    assert outcome.value == "confirmed"
    after, _ = log.checkpoint(at_least=named.size + 2)
    later = log.entries(named.size, after.size)
    assert [(e["event"], e["visibility"]) for e in later] == [("withdrawn", "public"), ("listed", "anonymous")]
    assert later[0]["entry"] == listed["entry"] != later[1]["entry"]
    assert "Named Then Hidden" not in later[1]["_leaf"]


def test_a_visibility_change_while_listed_ends_the_named_entry(log: Log):
    """No page changes a listed record's visibility today (a contact withdraws and endorses
    again); should one ever, `note_public_changes` ends the named entry and starts another."""
    appeal = make_appeal(log.client, "goes-quiet", moderation=Moderation.POST)
    start, _ = log.checkpoint()
    first = log.confirmed(appeal, organisation_name="Goes Quiet", country="BY", visibility="public")
    named, _ = log.checkpoint(at_least=start.size + 1)

    async def go_quiet() -> None:
        async with log.db.write():
            await log.db.execute(endorsements.update().where(endorsements.c.id == first).values(visibility="anonymous"))
            await note_public_changes(log.db, [first])

    log.call(go_quiet)
    after, _ = log.checkpoint(at_least=named.size + 2)
    later = log.entries(named.size, after.size)
    assert [(e["event"], e["visibility"]) for e in later] == [("withdrawn", "public"), ("listed", "anonymous")]
    assert later[0]["entry"] != later[1]["entry"] and "Goes Quiet" not in later[1]["_leaf"]


def test_a_purged_record_leaves_nothing_a_new_one_could_inherit(log: Log):
    """Review finding: SQLite gives a purged newest row's id to the next record, which inherited
    the old entry (and its receipt showed the new organisation)."""
    import datetime as dt

    from petition.endorsements.lifecycle import purge_stale
    from petition.endorsements.tables import public_record_heads
    from petition.schema import utcnow

    appeal = make_appeal(log.client, "purged", moderation=Moderation.POST)
    gone = log.confirmed(appeal, organisation_name="Old Public Org", visibility="public")
    nonce = log.row(gone)["token_nonce"]
    log.call(lambda: log.lifecycle.withdraw(endorsement_id=gone, nonce=nonce))

    async def age_and_purge() -> None:
        async with log.db.write():
            await log.db.execute(
                endorsements.update()
                .where(endorsements.c.id == gone)
                .values(updated_at=utcnow() - dt.timedelta(days=90))
            )
        await purge_stale(log.db, cutoff=utcnow() - dt.timedelta(days=30))

    log.call(age_and_purge)
    heads = log.call(
        lambda: log.db.fetch_val(
            sa.select(sa.func.count())
            .select_from(public_record_heads)
            .where(public_record_heads.c.endorsement_id == gone)
        )
    )
    assert heads == 0


def test_workers_on_two_hosts_sign_with_one_key(log: Log, settings: Any, tmp_path: Any):
    """Review finding: each DATA_DIR made a key of its own, so workers on two hosts re-signed each
    other's checkpoints in turn and /log/key changed every few seconds."""
    import dataclasses

    from petition.transparency.keys import log_signer

    other_host = dataclasses.replace(settings, data_dir=tmp_path / "other-host")

    async def keys() -> tuple[str, str]:
        first = await log_signer(log.db, settings)
        second = await log_signer(log.db, other_host)
        return first.vkey(), second.vkey()

    first, second = log.call(keys)
    assert first == second
    log.checkpoint()
    assert log.client.get("/log/key").text.strip() == first
