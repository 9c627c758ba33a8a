"""Edges an attacker tries first: odd paths, NUL bytes, slow clients, proxies, a closed appeal."""

from __future__ import annotations

import logging
import re
import socket
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import BASE_URL, make_settings
from tests.support import LiveServer, free_port, links, run_sql, sqlite_pass_only, valid_form, wait_for_mail

SLUG = "protect-deserters"


def test_a_double_slash_path_never_links_to_another_site(client):
    page = client.get(f"{BASE_URL}//evil.example/")
    assert page.status_code == 404
    hrefs = re.findall(r'(?:href|action)="([^"]*)"', page.text)
    assert hrefs and not [h for h in hrefs if h.startswith("//") or "://" in h], hrefs


@pytest.mark.parametrize(
    "path",
    [
        f"/appeals/{SLUG}%00",
        "/appeals/%00/signatories",
        f"/api/appeals/{SLUG}/endorsements?country=%00",
        "/admin/login?next=%00",
    ],
)
def test_a_nul_byte_in_a_path_or_query_is_a_clear_400(client, path):
    answer = client.get(path)
    assert answer.status_code == 400


def test_a_confirmation_link_used_after_the_appeal_closed_confirms_nothing(site, smtp, database_url):
    site.endorse(contact_email="late@closing.example", organisation_name="Late Group")
    [link] = links(wait_for_mail(smtp, "late@closing.example")[0], BASE_URL)
    run_sql(database_url, "UPDATE appeals SET status = 'closed' WHERE slug = :slug", slug=SLUG)
    path = link.replace(BASE_URL, "")
    page = site.client.get(path)
    assert page.status_code == 410 and "closed" in page.text.lower()
    csrf = site.csrf("/privacy/data")
    answer = site.client.post(path, data={"csrf_token": csrf}, follow_redirects=False)
    assert answer.status_code == 410
    assert run_sql(database_url, "SELECT state, listed_at FROM endorsements") == [
        {"state": "pending", "listed_at": None}
    ]


@pytest.fixture(params=["httptools", "h11"])
def slow_server(request, database_url: str, tmp_path: Path):
    """`petition serve` with each HTTP parser it can run: httptools (the default) and h11."""
    port = free_port()
    settings = make_settings(
        database_url, tmp_path / "data", None, base_url=f"http://127.0.0.1:{port}", request_read_timeout=0.5
    )
    server = LiveServer(settings, port, http=request.param)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sent before closing the connection; fails if it is still open after `seconds`."""
    sock.settimeout(seconds)
    received = b""
    while True:
        try:
            chunk = sock.recv(4096)
        except TimeoutError:
            pytest.fail(f"the connection was still open after {seconds} s: {received!r}")
        if not chunk:
            return received
        received += chunk


def test_headers_that_trickle_in_are_cut_off(slow_server):
    with socket.create_connection(("127.0.0.1", slow_server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # and never the blank line
        assert b"408" in _closed_within(sock, 10)


def test_a_kept_alive_connection_cannot_trickle_its_next_request(slow_server):
    with socket.create_connection(("127.0.0.1", slow_server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        sock.settimeout(5)
        assert b"200" in sock.recv(4096)
        sock.sendall(b"GE")
        assert b"408" in _closed_within(sock, 10)


@sqlite_pass_only  # the body is cut off before any handler touches the database
def test_a_body_that_trickles_in_is_cut_off(slow_server):
    with socket.create_connection(("127.0.0.1", slow_server.port)) as sock:
        sock.sendall(
            b"POST /privacy/data HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nconta"
        )
        assert b"408" in _closed_within(sock, 10)


def _serve(database_url: str, tmp_path: Path, **overrides):
    port = free_port()
    settings = make_settings(
        database_url, tmp_path / "data", None, base_url=f"http://127.0.0.1:{port}", rate_limit_ip_burst=1, **overrides
    )
    server = LiveServer(settings, port)
    server.start()
    return server


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # the 303 is the answer
        return None


def _endorse(server: LiveServer, email: str, forwarded_for: str) -> None:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(), _NoRedirect())
    with opener.open(f"{server.url}/appeals/{SLUG}", timeout=10) as page:
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.read().decode()).group(1)
    form = urllib.parse.urlencode({**valid_form(contact_email=email), "csrf_token": token}).encode()
    request = urllib.request.Request(
        f"{server.url}/appeals/{SLUG}/endorse", data=form, headers={"X-Forwarded-For": forwarded_for}
    )
    try:
        opener.open(request, timeout=10)
    except urllib.error.HTTPError as answer:
        assert answer.code == 303, answer.code
    else:
        pytest.fail("expected a 303")


def _holds(database_url: str) -> dict[str, str | None]:
    return {
        r["email_canonical"]: r["hold_reason"]
        for r in run_sql(database_url, "SELECT email_canonical, hold_reason FROM endorsements")
    }


def test_behind_a_proxy_in_proxy_ips_each_visitor_is_counted_on_their_own(database_url, tmp_path):
    server = _serve(database_url, tmp_path, proxy_ips="127.0.0.1")
    try:
        _endorse(server, "one@visitor.example", "203.0.113.1")
        _endorse(server, "two@visitor.example", "203.0.113.2")
    finally:
        server.stop()
    assert _holds(database_url) == {"one@visitor.example": None, "two@visitor.example": None}


def test_forwarded_for_is_ignored_unless_the_proxy_is_listed_and_the_log_says_how_once(database_url, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="petition.server")
    import petition.server

    petition.server._hinted = False
    server = _serve(database_url, tmp_path)
    try:
        for i in range(3):
            _endorse(server, f"v{i}@visitor.example", f"203.0.113.{i}")
    finally:
        server.stop()
    # Without PROXY_IPS a forged or proxied X-Forwarded-For counts for nothing: one address.
    assert _holds(database_url) == {
        "v0@visitor.example": None,
        "v1@visitor.example": "form.ip",
        "v2@visitor.example": "form.ip",
    }
    hints = [r for r in caplog.records if "PROXY_IPS" in r.getMessage()]
    assert len(hints) == 1
    assert "127.0.0.1" not in hints[0].getMessage()


def test_proxy_ips_is_read_from_the_environment(tmp_path):
    from petition.settings import load_settings

    settings = load_settings(env_file=None, data_dir=str(tmp_path), proxy_ips="10.0.0.0/8, 127.0.0.1")
    assert [str(n) for n in settings.proxy_ips] == ["10.0.0.0/8", "127.0.0.1/32"]
