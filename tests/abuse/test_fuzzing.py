"""Fuzzing: random and hostile input never makes the site answer 500.

Bounded and repeatable: a fixed number of examples, derandomized.
"""

from __future__ import annotations

import hypothesis.strategies as st
import schemathesis
from hypothesis import HealthCheck, given, settings
from starlette.testclient import TestClient

from petition.app import create_app
from petition.endorsements.forms import FIELDS, HONEYPOT_FIELD, parse_endorsement_form
from tests.conftest import BASE_URL, make_settings
from tests.delivery.conftest import live_server
from tests.support import csrf_from

FUZZ = settings(
    max_examples=300,
    derandomize=True,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=400)
field_values = st.one_of(
    text,
    st.sampled_from(
        [
            "",
            "yes",
            "DE",
            "RU",
            "peace",
            "public",
            "anonymous",
            "a@b.c",
            "x" * 5000,
            "\u202e\u0000",
            "https://",
            "@",
            "==1+1",
        ]
    ),
)
forms = st.dictionaries(st.sampled_from([*FIELDS, HONEYPOT_FIELD, "other"]), field_values, max_size=16)


@FUZZ
@given(forms)
def test_form_validation_never_raises_and_keeps_values_short(form):
    parsed = parse_endorsement_form(form)
    assert all(len(v) <= 2000 for v in parsed.values.values())
    if parsed.ok:
        assert parsed.data["country"] and parsed.data["email_canonical"]
        assert len(parsed.data["organisation_name"]) <= 200


def test_endorse_endpoint_never_answers_500(database_url, tmp_path, smtp):
    app_settings = make_settings(
        database_url, tmp_path / "data", smtp, rate_limit_ip_burst=100000, rate_limit_ip_sustained=100000
    )
    with TestClient(create_app(app_settings), base_url=BASE_URL) as client:
        csrf = csrf_from(client.get("/appeals/protect-deserters").text)

        @settings(max_examples=200, derandomize=True, deadline=None)
        @given(forms)
        def post(form):
            answer = client.post(
                "/appeals/protect-deserters/endorse", data={**form, "csrf_token": csrf}, follow_redirects=False
            )
            assert answer.status_code in (303, 400), (answer.status_code, form)

        post()


def test_openapi_description_fuzzed_finds_no_server_error(database_url, tmp_path, smtp):
    # A real server on loopback: the application's database belongs to its own event loop.
    with live_server(make_settings(database_url, tmp_path / "data", smtp)) as server:
        schema = schemathesis.openapi.from_url(server.url + "/api/openapi.json")
        schema.config.base_url = server.url
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 3
        failures = []
        statuses = []
        for op in operations:

            @settings(max_examples=60, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck))
            @given(op.as_strategy())
            def call(case):
                response = case.call(base_url=server.url)
                statuses.append(response.status_code)
                if response.status_code >= 500:
                    failures.append((case.path, case.path_parameters, case.query, response.status_code))

            call()
        assert failures == []
        assert len(statuses) >= 100 and 200 in statuses and (400 in statuses or 404 in statuses)
