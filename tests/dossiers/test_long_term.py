"""PAdES B-LT (SIGNING_LTV): the signing certificate's chain and its revocation data, fetched from
the CA's CRL address at signing, are embedded so the dossier validates years later with no network.

A test CA on loopback issues the organiser certificate with a CRL distribution point served by an
`http.server` in a thread; the timestamp authority is tests/timestamps.py's. Each validation below
runs with fetching off and the CRL server stopped: what it needs must be in the file.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest

from petition.dossiers.sign import SigningConfig, SigningError, sign_pdf_file, signing_config, timestamp_pdf_file
from petition.settings import SettingsError
from tests.conftest import make_settings
from tests.dossiers.test_trusted_time import _build
from tests.factories import add_endorsements
from tests.timestamps import TimestampAuthority, tsa

__all__ = ["tsa"]


class CertificateAuthority:
    """A root that issued the organiser certificate, and its CRL at http://127.0.0.1:PORT/root.crl."""

    def __init__(self, directory: Path) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import pkcs12
        from cryptography.x509.oid import NameOID

        self.revoked: list[int] = []
        self.fetches = 0
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

        now = dt.datetime.now(dt.UTC)
        self._key = ec.generate_private_key(ec.SECP256R1())
        root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test dossier signing root")])
        self.root = (
            x509.CertificateBuilder()
            .subject_name(root_name)
            .issuer_name(root_name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        signer_key = ec.generate_private_key(ec.SECP256R1())
        self.signer = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Appeal organisers (test)")]))
            .issuer_name(root_name)
            .public_key(signer_key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, True, False, False, False, False, False, False, False), critical=True)
            .add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier(f"http://127.0.0.1:{self.port}/root.crl")],
                            None,
                            None,
                            None,
                        )
                    ]
                ),
                critical=False,
            )
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self.p12 = directory / "organisers.p12"
        self.p12.write_bytes(
            pkcs12.serialize_key_and_certificates(
                b"organisers", signer_key, self.signer, [self.root], serialization.NoEncryption()
            )
        )

    def crl(self) -> bytes:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization

        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.root.subject)
            .last_update(now - dt.timedelta(minutes=5))
            .next_update(now + dt.timedelta(days=7))
            .add_extension(x509.CRLNumber(1), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
        )
        for serial in self.revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder()
                .serial_number(serial)
                .revocation_date(now - dt.timedelta(hours=1))
                .build()
            )
        return builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        authority = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                authority.fetches += 1
                body = authority.crl()
                self.send_response(200)
                self.send_header("Content-Type", "application/pkix-crl")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def asn1(self, cert: Any) -> Any:
        from asn1crypto import x509
        from cryptography.hazmat.primitives import serialization

        return x509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


@dataclass
class Setup:
    ca: CertificateAuthority
    tsa: TimestampAuthority
    roots_pem: Path
    unsigned: Path

    def config(self, *, ltv: bool = True) -> SigningConfig:
        return SigningConfig(str(self.ca.p12), None, self.tsa.url, False, ltv=ltv, trust_roots=str(self.roots_pem))

    def roots(self) -> list[Any]:
        return [self.ca.asn1(self.ca.root), self.tsa.root]


@pytest.fixture
def pki(tmp_path: Path, tsa: TimestampAuthority) -> Iterator[Setup]:
    from asn1crypto import pem
    from cryptography.hazmat.primitives import serialization
    from weasyprint import HTML

    ca = CertificateAuthority(tmp_path)
    roots = tmp_path / "roots.pem"
    roots.write_bytes(ca.root.public_bytes(serialization.Encoding.PEM) + pem.armor("CERTIFICATE", tsa.root.dump()))
    unsigned = tmp_path / "unsigned.pdf"
    HTML(string="<p>Dossier DE</p>").write_pdf(unsigned)
    try:
        yield Setup(ca, tsa, roots, unsigned)
    finally:
        ca.stop()


def _sign(setup: Setup, target: Path, config: SigningConfig) -> bool:
    return sign_pdf_file(str(setup.unsigned), str(target), config, reason="Dossier DE", location="test")


async def _long_term_status(data: bytes, roots: list[Any]) -> Any:
    """The organiser signature checked offline as a reader years later would: fetching off,
    revocation hard-fail, and only what the file's document security store holds."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.dss import DocumentSecurityStore, NoDSSFoundError
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(BytesIO(data))
    [signature] = reader.embedded_regular_signatures
    offline = {"trust_roots": roots, "allow_fetching": False, "revocation_mode": "hard-fail"}
    try:
        context = DocumentSecurityStore.read_dss(reader).as_validation_context(offline)
    except NoDSSFoundError:
        context = ValidationContext(**offline, crls=[])  # nothing embedded: nothing to check against
    return await async_validate_pdf_signature(signature, signer_validation_context=context)


def _dss_crls(data: bytes) -> list[bytes]:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation.dss import DocumentSecurityStore, NoDSSFoundError

    try:
        store = DocumentSecurityStore.read_dss(PdfFileReader(BytesIO(data)))
    except NoDSSFoundError:
        return []
    return [crl.get_object().data for crl in store.crls]


def test_a_b_lt_dossier_validates_offline_where_a_b_t_one_cannot(pki: Setup, tmp_path: Path) -> None:
    long_term, plain = tmp_path / "b-lt.pdf", tmp_path / "b-t.pdf"
    assert _sign(pki, long_term, pki.config()) is True
    fetched = pki.ca.fetches
    assert fetched >= 1  # the CRL came from the CA's own address, at signing
    assert _sign(pki, plain, pki.config(ltv=False)) is True
    assert pki.ca.fetches == fetched  # B-T asks the CA nothing
    pki.ca.stop()  # years later: the CA's server is gone

    data = long_term.read_bytes()
    assert _dss_crls(data), "no CRL in the document security store"
    status = asyncio.run(_long_term_status(data, pki.roots()))
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()
    assert status.timestamp_validity is not None and status.timestamp_validity.trusted

    # The same signature without the embedded data cannot be checked for revocation offline.
    weak = asyncio.run(_long_term_status(plain.read_bytes(), pki.roots()))
    assert weak.intact and not weak.trusted, "a B-T dossier must not pass as B-LT"


def test_a_revoked_signing_certificate_signs_no_b_lt_dossier(pki: Setup, tmp_path: Path) -> None:
    pki.ca.revoked.append(pki.ca.signer.serial_number)
    with pytest.raises(SigningError, match="SIGNING_LTV"):
        _sign(pki, tmp_path / "signed.pdf", pki.config())


def test_a_crl_address_that_does_not_answer_fails_the_signing_with_a_clear_message(pki: Setup, tmp_path: Path) -> None:
    pki.ca.stop()
    with pytest.raises(SigningError, match="CRL or OCSP addresses answer"):
        _sign(pki, tmp_path / "signed.pdf", pki.config())


def test_a_dossier_stamped_later_gets_its_validation_data_with_the_stamp(pki: Setup, tmp_path: Path) -> None:
    pki.tsa.down()
    signed = tmp_path / "signed.pdf"
    assert _sign(pki, signed, pki.config()) is False  # B-B: no timestamp, no DSS yet
    assert _dss_crls(signed.read_bytes()) == []
    pki.tsa.up()
    stamped = tmp_path / "stamped.pdf"
    timestamp_pdf_file(str(signed), str(stamped), pki.tsa.url, pki.config())
    pki.ca.stop()
    data = stamped.read_bytes()
    assert data.startswith(signed.read_bytes())  # an incremental update
    assert _dss_crls(data)
    status = asyncio.run(_long_term_status(data, pki.roots()))
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()


def test_signing_ltv_needs_a_timestamp_url_and_an_existing_roots_file(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="SIGNING_LTV needs TIMESTAMP_URL"):
        make_settings(f"sqlite:///{tmp_path}/x.db", tmp_path, None, signing_ltv=True)
    with pytest.raises(SettingsError, match="SIGNING_TRUST_ROOTS"):
        make_settings(
            f"sqlite:///{tmp_path}/x.db",
            tmp_path,
            None,
            timestamp_url="http://127.0.0.1:9/tsa",
            signing_ltv=True,
            signing_trust_roots=str(tmp_path / "missing.pem"),
        )


def test_a_dossier_built_with_signing_ltv_is_b_lt(database_url: str, tmp_path: Path, pki: Setup) -> None:
    settings = make_settings(
        database_url,
        tmp_path / "data",
        None,
        timestamp_url=pki.tsa.url,
        signing_p12=str(pki.ca.p12),
        signing_ltv=True,
        signing_trust_roots=str(pki.roots_pem),
    )
    config = signing_config(settings)
    assert config.ltv and config.trust_roots == str(pki.roots_pem)
    add_endorsements(database_url, rows=[dict(organisation_name="Friedenskreis Kassel")])
    built, row = asyncio.run(_build(settings))
    assert row["state"] == "done" and not built.timestamp_pending
    pki.ca.stop()
    status = asyncio.run(_long_term_status(built.path.read_bytes(), pki.roots()))
    assert status.intact and status.valid and status.trusted, status.pretty_print_details()


def _verdict(settings: Any, data: bytes) -> str:
    """What /verify tells someone who uploads `data` (the verdict's heading)."""
    from starlette.testclient import TestClient

    from petition.app import create_app
    from tests.conftest import BASE_URL
    from tests.support import csrf_from

    with TestClient(create_app(replace(settings, run_worker=False)), base_url=BASE_URL) as client:
        page = client.get("/verify")
        answer = client.post(
            "/verify",
            data={"csrf_token": csrf_from(page.text)},
            files={"dossier": ("dossier.pdf", data, "application/pdf")},
        )
        assert answer.status_code == 200, answer.status_code
        return answer.text


def test_verify_calls_a_b_lt_dossier_genuine_and_the_same_with_other_additions_changed(
    database_url: str, tmp_path: Path, pki: Setup
) -> None:
    settings = make_settings(
        database_url,
        tmp_path / "data",
        None,
        timestamp_url=pki.tsa.url,
        signing_p12=str(pki.ca.p12),
        signing_ltv=True,
        signing_trust_roots=str(pki.roots_pem),
    )
    add_endorsements(database_url, rows=[dict(organisation_name="Friedenskreis Kassel")])
    built, _row = asyncio.run(_build(settings))
    data = built.path.read_bytes()
    assert "Genuine and unchanged" in _verdict(settings, data)

    # Someone else adds a document timestamp of their own: harmless in kind, but not the file issued.
    restamped = tmp_path / "restamped.pdf"
    timestamp_pdf_file(str(built.path), str(restamped), pki.tsa.url, None)
    assert "Genuine and unchanged" not in _verdict(settings, restamped.read_bytes())
