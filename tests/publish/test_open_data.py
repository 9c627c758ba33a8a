"""Open data: the JSON API with filters and pages, CSV per RFC 4180, OpenAPI, revalidation."""

from __future__ import annotations

import csv
import io

import pytest
from openapi_spec_validator import validate
from starlette.routing import Mount, Route

from tests.factories import add_endorsements

SLUG = "protect-deserters"


def test_csv_is_rfc4180_and_formula_cells_are_prefixed(client):
    add_endorsements(
        client, organisation_name='=HYPERLINK("http://evil.example","click")', country="DE", city="+49 Berlin"
    )
    add_endorsements(client, organisation_name="-Minus Group", country="FR", city="@home")
    add_endorsements(client, organisation_name='\tTabbed, "Quoted" Group', country="IT", city="\rReturn")
    add_endorsements(client, organisation_name="Plain Group", country="AT", city="Wien")
    response = client.get(f"/appeals/{SLUG}/endorsements.csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["content-disposition"] == f'attachment; filename="{SLUG}-endorsements.csv"'
    raw = response.content.decode("utf-8")
    # CRLF after every record, the header first: the contract's columns, then the domain proof's,
    # the EU Transparency Register number and the second officer's countersignature.
    assert raw.startswith(
        "organisation_name,country,city,organisation_type,website,endorsed_at,"
        "domain_verified,domain_verified_at,domain_proof,transparency_register,confirmed_by_two_officers\r\n"
    )
    assert raw.endswith("\r\n") and "\n" not in raw.replace("\r\n", "")
    rows = {r["country"]: r for r in csv.DictReader(io.StringIO(raw, newline=""))}
    assert rows["DE"]["organisation_name"] == '\'=HYPERLINK("http://evil.example","click")'
    assert rows["DE"]["city"] == "'+49 Berlin"
    assert rows["FR"]["organisation_name"] == "'-Minus Group"
    assert rows["FR"]["city"] == "'@home"
    assert rows["IT"]["organisation_name"] == '\'\tTabbed, "Quoted" Group'
    assert rows["IT"]["city"] == "'\rReturn"
    assert rows["AT"]["organisation_name"] == "Plain Group"
    # Quotes are doubled inside a quoted field (RFC 4180, 2.7).
    assert '"\'=HYPERLINK(""http://evil.example"",""click"")"' in raw


def test_csv_filters_by_country_and_names_the_file_after_it(client):
    add_endorsements(client, organisation_name="Berlin Group", country="DE")
    add_endorsements(client, organisation_name="Paris Group", country="FR")
    response = client.get(f"/appeals/{SLUG}/endorsements.csv", params={"country": "fr"})
    assert [r["organisation_name"] for r in csv.DictReader(io.StringIO(response.text))] == ["Paris Group"]
    assert "endorsements-FR.csv" in response.headers["content-disposition"]


def test_openapi_document_is_valid_and_lists_every_json_route(client):
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    document = response.json()
    validate(document)  # raises on an invalid OpenAPI 3 document

    json_routes: set[tuple[str, str]] = set()

    def walk(routes, prefix=""):
        for route in routes:
            if isinstance(route, Mount):
                walk(route.routes or [], prefix + route.path)
            elif isinstance(route, Route):
                path = prefix + route.path
                if path.startswith("/api/") or path == "/healthz":
                    for method in route.methods or {"GET"}:
                        if method != "HEAD":
                            json_routes.add((path, method.lower()))

    walk(client.app.routes)
    json_routes.discard(("/api/openapi.json", "get"))  # the description itself
    assert ("/api/appeals/{slug}/endorsements", "get") in json_routes
    documented = {(path, method) for path, ops in document["paths"].items() for method in ops}
    missing = json_routes - documented
    assert not missing, f"JSON routes without an OpenAPI description: {sorted(missing)}"
    assert not documented - json_routes - {("/api/openapi.json", "get")}, "documented routes that do not exist"


def test_api_pages_and_filters(client):
    for i in range(105):
        add_endorsements(
            client,
            organisation_name=f"Group {i:03d}",
            country="DE" if i % 3 else "FR",
            organisation_type="union" if i % 5 == 0 else "peace",
        )
    first = client.get(f"/api/appeals/{SLUG}/endorsements").json()
    assert len(first["items"]) == 100
    assert first["items"][0]["organisation_name"] == "Group 104"  # newest first
    assert set(first["items"][0]) == {
        "organisation_name",
        "country",
        "city",
        "organisation_type",
        "website",
        "endorsed_at",
        # The domain proof's (petition.identity): null for these.
        "domain_verified",
        "domain_verified_at",
        "domain_proof",
        # The EU Transparency Register number an organisation gave: null for these.
        "transparency_register",
        # A second officer's countersignature (petition.identity.countersign): false for these.
        "confirmed_by_two_officers",
    }
    assert first["next"].endswith(f"/api/appeals/{SLUG}/endorsements?page=2")
    second = client.get(first["next"]).json()
    assert len(second["items"]) == 5 and second["next"] is None
    names = [i["organisation_name"] for i in first["items"] + second["items"]]
    assert len(set(names)) == 105

    french = client.get(f"/api/appeals/{SLUG}/endorsements", params={"country": "FR"}).json()
    assert {i["country"] for i in french["items"]} == {"FR"} and len(french["items"]) == 35
    unions = client.get(f"/api/appeals/{SLUG}/endorsements", params={"type": "union"}).json()
    assert {i["organisation_type"] for i in unions["items"]} == {"union"} and len(unions["items"]) == 21
    both = client.get(f"/api/appeals/{SLUG}/endorsements", params={"type": "union", "country": "FR"}).json()
    assert len(both["items"]) == 7


@pytest.mark.parametrize(
    "query", [{"page": "0"}, {"page": "x"}, {"country": "XX"}, {"country": "DEU"}, {"type": "unknown"}]
)
def test_api_rejects_bad_filters_with_a_json_error(client, query):
    response = client.get(f"/api/appeals/{SLUG}/endorsements", params=query)
    assert response.status_code == 400
    assert "error" in response.json()


def test_unknown_appeal_is_a_json_404(client):
    response = client.get("/api/appeals/no-such-appeal")
    assert response.status_code == 404 and response.json() == {"error": "no such appeal"}


@pytest.mark.parametrize(
    "path",
    [
        f"/api/appeals/{SLUG}",
        f"/api/appeals/{SLUG}/endorsements",
        "/api/appeals",
        f"/appeals/{SLUG}/endorsements.csv",
        f"/appeals/{SLUG}/signatories",
        "/api/openapi.json",
    ],
)
def test_public_lists_revalidate_with_etags(client, path):
    add_endorsements(client, organisation_name="First Group", country="DE")
    first = client.get(path)
    etag = first.headers["etag"]
    # Strong, or weak for a gzipped body (petition.compression): the client here accepts gzip.
    assert etag.removeprefix("W/").startswith('"') and first.headers["cache-control"].startswith("public, max-age=")
    assert "set-cookie" not in first.headers  # nothing per visitor: a shared cache may keep it

    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == etag
    assert client.get(path, headers={"If-None-Match": f'"other", W/{etag.removeprefix("W/")}'}).status_code == 304
    assert client.get(path, headers={"If-None-Match": '"stale"'}).status_code == 200


def test_a_new_endorsement_changes_the_etag(client):
    add_endorsements(client, organisation_name="First Group", country="DE")
    paths = [
        f"/api/appeals/{SLUG}",
        f"/api/appeals/{SLUG}/endorsements",
        f"/appeals/{SLUG}/endorsements.csv",
        f"/appeals/{SLUG}/signatories",
    ]
    before = {p: client.get(p).headers["etag"] for p in paths}
    add_endorsements(client, organisation_name="Second Group", country="FR")
    for path in paths:
        response = client.get(path, headers={"If-None-Match": before[path]})
        assert response.status_code == 200, path
        assert response.headers["etag"] != before[path]
