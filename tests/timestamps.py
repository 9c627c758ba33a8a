"""A local RFC 3161 timestamp authority on loopback, for the trusted-time tests.

An `http.server` in a thread of the test process answers `application/timestamp-query` with
tokens made by pyHanko's DummyTimeStamper, under a TSA certificate (EKU id-kp-timeStamping,
critical) issued by a test root — both made here with `cryptography`. The test switches it
down: `down()` answers 503, `stop()` closes the port (connection refused), `up()` brings it back.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


def _certificates() -> tuple[Any, Any, Any]:
    """(root, TSA certificate, TSA key) as asn1crypto objects, for pyHanko."""
    from asn1crypto import keys
    from asn1crypto import x509 as asn1_x509
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    now = dt.datetime.now(dt.UTC)

    def name(cn: str) -> x509.Name:
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

    # pyHanko's DummyTimeStamper signs with RSA only.
    root_key = ec.generate_private_key(ec.SECP256R1())
    tsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = (
        x509.CertificateBuilder()
        .subject_name(name("Test timestamp root"))
        .issuer_name(name("Test timestamp root"))
        .public_key(root_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    tsa = (
        x509.CertificateBuilder()
        .subject_name(name("Test timestamp authority"))
        .issuer_name(root.subject)
        .public_key(tsa_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(root_key.public_key()), critical=False)
        .sign(root_key, hashes.SHA256())
    )
    der = serialization.Encoding.DER
    key_der = tsa_key.private_bytes(der, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    return (
        asn1_x509.Certificate.load(root.public_bytes(der)),
        asn1_x509.Certificate.load(tsa.public_bytes(der)),
        keys.PrivateKeyInfo.load(key_der),
    )


class TimestampAuthority:
    """The authority at `url`; `requests` counts the tokens it issued."""

    def __init__(self) -> None:
        from pyhanko.sign.timestamps.dummy_client import DummyTimeStamper

        self.root, self.certificate, key = _certificates()
        self._stamper = DummyTimeStamper(tsa_cert=self.certificate, tsa_key=key, certs_to_embed=[self.root])
        self.available = True
        self.requests = 0
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0
        self._start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/tsa"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        authority = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                from asn1crypto import tsp

                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if not authority.available:
                    self._answer(503, "text/plain", b"down for the test\n")
                    return
                if self.headers.get("Content-Type") != "application/timestamp-query":
                    self._answer(415, "text/plain", b"application/timestamp-query only\n")
                    return
                with authority._lock:
                    reply = authority._stamper.request_tsa_response(tsp.TimeStampReq.load(body))
                    authority.requests += 1
                self._answer(200, "application/timestamp-reply", reply.dump())

            def _answer(self, status: int, media_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", media_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler

    def _start(self) -> None:
        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    def down(self) -> None:
        """Answer 503 to every request."""
        self.available = False

    def stop(self) -> None:
        """Close the port: connection refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def up(self) -> None:
        self.available = True
        if self._server is None:
            self._start()

    def validation_context(self, *extra_roots: Any) -> Any:
        """pyHanko's validation context trusting the test root (and `extra_roots`)."""
        from pyhanko_certvalidator import ValidationContext

        return ValidationContext(trust_roots=[self.root, *extra_roots], allow_fetching=False)


@pytest.fixture
def tsa() -> Iterator[TimestampAuthority]:
    authority = TimestampAuthority()
    try:
        yield authority
    finally:
        authority.stop()
