"""The deployment recipe of deploy/, run: Debian's nginx with deploy/nginx/petition.conf in front
of two `petition serve` processes, visitors arriving from different loopback addresses.

The site file is used as shipped; only what a host changes in it is replaced (the web processes'
ports, the listening ports, the certificate, the log directory), and each replacement must find
its text, so a changed site file fails here instead of being tested in a copy. It is included in
a minimal nginx.conf of the test's own, as Debian's nginx.conf includes sites-enabled/*.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import shutil
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.support import PROJECT_ROOT, csrf_from, db_rows, free_port, valid_form, wait_for
from tests.test_startup import Process

DEPLOY = PROJECT_ROOT / "deploy"
SLUG = "protect-deserters"
BURST = 3


def _nginx_binary() -> str:
    found = shutil.which("nginx") or shutil.which("nginx", path="/usr/sbin")
    if found is None:
        message = "nginx is not installed (Debian: apt-get install nginx; scripts/bootstrap test does)"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message}, and CI needs this test to run")
        pytest.skip(message)
    return found


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def _self_signed(directory: Path) -> None:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "appeal.example.org")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
        .sign(key, hashes.SHA256())
    )
    directory.mkdir()
    (directory / "fullchain.pem").write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    (directory / "privkey.pem").write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"deploy/nginx/petition.conf no longer holds {old!r}: update this test with it"
    return text.replace(old, new)


def site_config(web_ports: list[int], http_port: int, https_port: int, directory: Path) -> str:
    """deploy/nginx/petition.conf with this host's values in place of the placeholders."""
    text = (DEPLOY / "nginx" / "petition.conf").read_text()
    text = _replace(text, "server 127.0.0.1:8001 ", f"server 127.0.0.1:{web_ports[0]} ")
    text = _replace(text, "server 127.0.0.1:8002 ", f"server 127.0.0.1:{web_ports[1]} ")
    text = _replace(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
    text = _replace(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https_port} ssl http2;")
    # Loopback over IPv4 only: a container may have no IPv6.
    text = _replace(text, "listen [::]:80;\n", "")
    text = _replace(text, "listen [::]:443 ssl http2;\n", "")
    text = _replace(text, "/etc/letsencrypt/live/appeal.example.org/", f"{directory / 'tls'}/")
    text = _replace(text, "/var/log/nginx/", f"{directory / 'log'}/")
    return text


@pytest.fixture
def nginx_in_front(database_url: str, tmp_path: Path) -> Iterator[tuple[int, int, Path]]:
    """Two web processes behind nginx: (nginx's https port, its http port, the access log)."""
    if not database_url.startswith("postgresql://"):
        pytest.skip("several web processes share PostgreSQL; this runs in the PostgreSQL pass")
    binary = _nginx_binary()
    web = []
    try:
        for _ in range(2):
            port = free_port()
            process = Process(
                ["serve", "--host", "127.0.0.1", "--port", str(port)],
                database_url,
                tmp_path / "data",
                PROXY_IPS="127.0.0.1",
                RUN_WORKER="false",
                RATE_LIMIT_IP_BURST=str(BURST),
                LOG_FORMAT="json",
            )
            web.append((process, port))
        # One nginx process (master_process off), as the user running the tests: no worker that
        # drops to `nobody` and no longer reaches these files.
        directory = tmp_path / "nginx"
        (directory / "log").mkdir(parents=True)
        _self_signed(directory / "tls")
        http_port, https_port = free_port(), free_port()
        (directory / "petition.conf").write_text(site_config([p for _, p in web], http_port, https_port, directory))
        temp = "\n".join(
            f"    {kind}_temp_path {directory / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (directory / "nginx.conf").write_text(
            "daemon off;\n"
            "master_process off;\n"
            f"pid {directory / 'nginx.pid'};\n"
            f"error_log {directory / 'log' / 'error.log'} warn;\n"
            "events { worker_connections 64; }\n"
            "http {\n"
            f"{temp}\n"
            f"    include {directory / 'petition.conf'};\n"
            "}\n"
        )
        for process, port in web:
            wait_for(
                lambda process=process, port=port: _listening(port) or process.process.poll() is not None, timeout=60
            )
            assert _listening(port), process.log
        nginx = subprocess.Popen(
            [
                binary,
                "-p",
                str(directory),
                "-e",
                str(directory / "log" / "error.log"),
                "-c",
                str(directory / "nginx.conf"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(lambda: _listening(https_port) or nginx.poll() is not None, timeout=20)
            if nginx.poll() is not None:
                assert nginx.stderr is not None
                pytest.fail(f"nginx did not start: {nginx.stderr.read()}")
            yield https_port, http_port, directory / "log" / "petition.access.log"
        finally:
            nginx.terminate()
            nginx.wait(10)
            if nginx.stderr is not None:
                nginx.stderr.close()
    finally:
        for process, _ in web:
            process.stop()


def visitor(address: str, https_port: int) -> httpx2.Client:
    """A browser on `address`: nginx sees it as $remote_addr."""
    return httpx2.Client(
        base_url=f"https://127.0.0.1:{https_port}",
        transport=httpx2.HTTPTransport(local_address=address, verify=False),
        headers={"Host": "appeal.example.org"},
        timeout=20,
    )


def endorse(client: httpx2.Client, email: str, **headers: str) -> httpx2.Response:
    page = client.get(f"/appeals/{SLUG}")
    assert page.status_code == 200, page.text
    form = valid_form(contact_email=email, organisation_name=f"Org of {email}")
    form["csrf_token"] = csrf_from(page.text)
    return client.post(f"/appeals/{SLUG}/endorse", data=form, headers=headers, follow_redirects=False)


def test_behind_nginx_each_visitor_is_counted_on_their_own_and_a_forged_forwarded_for_changes_nothing(
    nginx_in_front: tuple[int, int, Path], database_url: str
):
    https_port, http_port, access_log = nginx_in_front
    busy = [f"busy{i}@one.example" for i in range(BURST + 2)]
    with visitor("127.0.0.2", https_port) as flooder, visitor("127.0.0.3", https_port) as other:
        answers = [
            # Each claims to forward for somebody else: nginx appends the address it saw, and
            # petition believes only that last one.
            endorse(flooder, email, **{"X-Forwarded-For": f"203.0.113.{i + 9}"})
            for i, email in enumerate(busy)
        ]
        assert [a.status_code for a in answers] == [303] * len(busy), [a.text for a in answers]
        # The second visitor, after the first used up its burst: not held, so petition did not
        # count both as nginx's 127.0.0.1.
        answer = endorse(other, "calm@two.example")
        assert answer.status_code == 303
        request_id = answer.headers["x-request-id"]
        # Plain http only sends visitors to https.
        with httpx2.Client(timeout=10) as plain:
            moved = plain.get(f"http://127.0.0.1:{http_port}/appeals/{SLUG}", headers={"Host": "appeal.example.org"})
        assert (moved.status_code, moved.headers["location"]) == (301, f"https://appeal.example.org/appeals/{SLUG}")

    held = {
        row["email_canonical"]: row["hold_reason"]
        for row in db_rows(database_url, "SELECT email_canonical, hold_reason FROM endorsements")
    }
    assert [held[email] for email in busy] == [None] * BURST + ["form.ip"] * 2
    assert held["calm@two.example"] is None

    lines = access_log.read_text().splitlines()
    # Both web processes answered, and petition kept nginx's request id (from PROXY_IPS only).
    upstreams = {re.findall(r"127\.0\.0\.1:\d+", line)[-1] for line in lines if "127.0.0.1:" in line}
    assert len(upstreams) == 2, lines
    assert re.fullmatch(r"[0-9a-f]{32}", request_id)
    assert any(line.split()[1] == request_id for line in lines), (request_id, lines)
    # No visitor address and no path in nginx's log: paths carry tokens.
    text = access_log.read_text()
    assert "127.0.0.2" not in text and "127.0.0.3" not in text and "/appeals" not in text


def test_nginx_lets_petition_answer_bodies_up_to_its_own_limits(nginx_in_front: tuple[int, int, Path]):
    https_port, _, _ = nginx_in_front
    with visitor("127.0.0.2", https_port) as client:

        def post(path: str, megabytes: float) -> httpx2.Response:
            body = b"x" * int(megabytes * 1024 * 1024)
            return client.post(path, content=body, headers={"Content-Type": "application/x-www-form-urlencoded"})

        # Over a form's 1 MiB: petition's own refusal (plain text), not nginx's page.
        refused = post(f"/appeals/{SLUG}/endorse", 1.5)
        assert (refused.status_code, refused.headers["content-type"]) == (413, "text/plain; charset=utf-8")
        # Far over it nginx refuses before reading (its page: text/html without a charset).
        far = post(f"/appeals/{SLUG}/endorse", 3)
        assert (far.status_code, far.headers["content-type"]) == (413, "text/html")
        # A dossier to check gets its 20 MiB through nginx, and petition's page in the reader's
        # language says when a file is larger.
        assert post("/verify", 3).status_code != 413
        too_large = post("/verify", 20.5)
        assert (too_large.status_code, too_large.headers["content-type"]) == (413, "text/html; charset=utf-8")
