"""Random sequences of what people and organisers do: the log always verifies, always agrees
with the public list, and its anonymous entries never name anyone."""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from petition.appeals.queries import get_appeal_by_id
from petition.appeals.states import Moderation
from petition.endorsements.lifecycle import Event, Lifecycle
from petition.endorsements.states import EndorsementState
from petition.endorsements.tables import endorsements
from petition.organisers.appeals import update_settings
from petition.organisers.moderation import correct_endorsement
from petition.publish.queries import list_named
from petition.transparency import merkle, store
from petition.transparency.keys import log_signer
from tests.factories import add_endorsements
from tests.organisers.support import add_organiser, db_of, make_appeal

S = EndorsementState
_serial = itertools.count()

ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["confirm", "approve", "reject", "release", "withdraw", "rename", "moderation"]),
        st.integers(0, 3),
    ),
    min_size=1,
    max_size=14,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(actions=ACTIONS, visibilities=st.lists(st.sampled_from(["public", "anonymous"]), min_size=4, max_size=4))
def test_any_sequence_leaves_a_verifiable_log_that_agrees_with_the_list(client: Any, actions: Any, visibilities: Any):
    note(f"actions={actions!r} visibilities={visibilities!r}")
    db = db_of(client)
    lifecycle = Lifecycle(db, client.app.state.services.mailer)
    n = next(_serial)
    organiser = add_organiser(client, f"prop{n}@organisers.example", "moderator")
    appeal = make_appeal(client, f"prop-{n}", moderation=Moderation.POST)
    names = [f"Organisation {n}-{i} Secretname{n}x{i}" for i in range(4)]
    ids = add_endorsements(
        client,
        rows=[
            {"organisation_name": name, "city": f"Hiddencity{n}x{i}", "visibility": visibility}
            for i, (name, visibility) in enumerate(zip(names, visibilities, strict=True))
        ],
        appeal=appeal["id"],
        state=S.PENDING.value,
    )
    signer = client.portal.call(lambda: log_signer(db, client.app.state.services.settings))

    def call(fn: Any) -> Any:
        return client.portal.call(fn)

    async def row(endorsement_id: int) -> Any:
        return await db.fetch_one(endorsements.select().where(endorsements.c.id == endorsement_id))

    moderation = Moderation.POST
    checkpoints = []
    for action, which in actions:
        endorsement_id = ids[which]
        current = call(lambda endorsement_id=endorsement_id: row(endorsement_id))
        if action == "confirm":
            call(
                lambda e=endorsement_id, nonce=current["token_nonce"]: lifecycle.confirm(endorsement_id=e, nonce=nonce)
            )
        elif action in ("approve", "reject", "release"):
            event = {"approve": Event.APPROVE, "reject": Event.REJECT, "release": Event.RELEASE}[action]
            call(lambda e=endorsement_id, event=event: lifecycle.decide(ids=[e], event=event, organiser_id=organiser))
        elif action == "withdraw":
            call(
                lambda e=endorsement_id, nonce=current["token_nonce"]: lifecycle.withdraw(endorsement_id=e, nonce=nonce)
            )
        elif action == "rename" and current["state"] != S.WITHDRAWN.value:
            new_name = current["organisation_name"] + " e.V."
            call(
                lambda current=current, new_name=new_name: correct_endorsement(
                    db, row=current, submitted={"organisation_name": new_name[:200]}, organiser_id=organiser
                )
            )
        elif action == "moderation":
            moderation = Moderation.PRE if moderation == Moderation.POST else Moderation.POST
            call(
                lambda m=moderation: update_settings(
                    db, appeal_id=appeal["id"], moderation=m, default_language="en", addressees=""
                )
            )
        call(lambda: store.append(db, signer))
        checkpoints.append(call(lambda: store.latest(db)))

    final = checkpoints[-1]
    leaves = call(lambda: store.entries(db, 0, final.size))
    assert [index for index, _ in leaves] == list(range(final.size))
    hashes = [merkle.leaf_hash(leaf.encode()) for _, leaf in leaves]
    assert merkle.root_of(hashes) == final.root
    for index in range(final.size):
        proof = call(lambda index=index: store.inclusion_proof(db, index, final.size))
        merkle.verify_inclusion(index, final.size, hashes[index], proof, final.root)
    for earlier in checkpoints:
        proof = call(lambda earlier=earlier: store.consistency_proof(db, earlier.size, final.size))
        merkle.verify_consistency(earlier.size, final.size, proof, earlier.root, final.root)
    # Anonymous entries name no one; the log's listed and named set is the public list.
    latest: dict[str, dict[str, Any]] = {}
    for _, text in leaves:
        leaf = json.loads(text)
        if leaf["visibility"] == "anonymous":
            assert "Secretname" not in text and "Hiddencity" not in text
        if leaf["appeal"] == appeal["slug"]:
            latest[leaf["entry"]] = leaf
    logged = sorted(
        (leaf["organisation_name"], leaf["city"])
        for leaf in latest.values()
        if leaf["event"] == "listed" and leaf["visibility"] == "public"
    )
    fresh = call(lambda: get_appeal_by_id(db, appeal_id=appeal["id"]))
    listed = call(lambda: list_named(db, appeal=fresh, limit=100))
    assert logged == sorted((r["organisation_name"], r["city"]) for r in listed)
