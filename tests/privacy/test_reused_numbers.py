"""A record's number can come back (SQLite gives a deleted last row's id to the next one): the
audit rows of the record that had it before are not the new one's."""

from __future__ import annotations

import datetime as dt

from petition.appeals.states import Moderation
from petition.endorsements.lifecycle import purge_stale
from petition.privacy.queries import export_data
from petition.schema import utcnow
from petition.templating import make_environment
from tests.factories import add_endorsements
from tests.organisers.support import audit_rows, endorsement, make_appeal, run


def test_a_data_copy_shows_no_event_of_an_earlier_record_with_the_same_number(client):
    appeal = make_appeal(client, "numbers", moderation=Moderation.POST)
    [gone] = add_endorsements(client, 1, appeal=appeal["id"], state="pending", confirmed_at=None)
    run(client, purge_stale, cutoff=utcnow() + dt.timedelta(seconds=1))
    assert [(r["action"], r["target_id"]) for r in audit_rows(client)] == [("endorsement.purge", gone)]
    # The next record with that number (SQLite hands it out by itself; PostgreSQL is told to).
    [new] = add_endorsements(client, 1, appeal=appeal["id"], id=gone, contact_email="new@numbers.example")
    assert new == gone
    copy = run(
        client, export_data, env=make_environment(), endorsement_id=new, nonce=endorsement(client, new)["token_nonce"]
    )
    [item] = copy["endorsements"]
    assert item["events"] == []
