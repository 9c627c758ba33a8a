"""A DNS server (dnslib) and an HTTPS server on 127.0.0.1, for domain proofs without the network."""

from __future__ import annotations

import datetime as dt
import http.server
import ssl
import tempfile
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from dnslib import QTYPE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSServer

from tests.support import free_port


class Zone(BaseResolver):  # type: ignore[misc]
    """Answers from a dict: (name without the final dot, "A" | "TXT") → values; NXDOMAIN else."""

    def __init__(self) -> None:
        self.records: dict[tuple[str, str], list[str]] = {}
        self.asked: list[tuple[str, str]] = []

    def set(self, name: str, kind: str, *values: str) -> None:
        self.records[(name, kind)] = list(values)

    def remove(self, name: str, kind: str) -> None:
        self.records.pop((name, kind), None)

    def resolve(self, request: DNSRecord, handler: Any) -> DNSRecord:
        reply = request.reply()
        name = str(request.q.qname).rstrip(".").lower()
        kind = QTYPE[request.q.qtype]
        self.asked.append((name, kind))
        values = self.records.get((name, kind))
        if values is None:
            if not any(key[0] == name for key in self.records):
                reply.header.rcode = 3  # NXDOMAIN
            return reply
        for value in values:
            data = A(value) if kind == "A" else TXT(value)
            reply.add_answer(RR(request.q.qname, request.q.qtype, rdata=data, ttl=60))
        return reply


class LoopbackDNS:
    def __init__(self) -> None:
        self.zone = Zone()
        self.port = free_port()
        self.server = DNSServer(self.zone, port=self.port, address="127.0.0.1", logger=_Quiet())

    def __enter__(self) -> LoopbackDNS:
        # dnslib's start_thread polls for shutdown every 0.5 s: each test waited that long to stop it.
        self.server.thread = threading.Thread(
            target=self.server.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.server.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.server.server.server_close()

    @property
    def nameservers(self) -> str:
        return f"127.0.0.1:{self.port}"


class _Quiet:
    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


def self_signed(names: Iterable[str]) -> tuple[bytes, bytes]:
    """A certificate (PEM) for `names`, signed by its own key (PEM): trusted by the tests only."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "petition domain-proof test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return (
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class LoopbackHTTPS:
    """Answers GETs by (Host without port, path); records every request it was sent."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        cert, key = self_signed(self.names)
        self.ca = cert.decode("ascii")
        self.answers: dict[tuple[str, str], Answer] = {}
        self.requests: list[tuple[str, str]] = []
        self._dir = tempfile.TemporaryDirectory()
        folder = Path(self._dir.name)
        (folder / "cert.pem").write_bytes(cert)
        (folder / "key.pem").write_bytes(key)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(folder / "cert.pem", folder / "key.pem")
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the standard library's name
                host = (self.headers.get("Host") or "").rpartition(":")[0] or (self.headers.get("Host") or "")
                owner.requests.append((host, self.path))
                answer = owner.answers.get((host, self.path), Answer(404, b"not found"))
                self.send_response(answer.status)
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.port = int(self.server.server_address[1])
        self._thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)

    def __enter__(self) -> LoopbackHTTPS:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(5)
        self._dir.cleanup()

    def serve(self, host: str, path: str, body: bytes | str, status: int = 200, **headers: str) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.answers[(host, path)] = Answer(status, data, {k.replace("_", "-"): v for k, v in headers.items()})

    def hosts_asked(self) -> set[str]:
        return {host for host, _path in self.requests}
