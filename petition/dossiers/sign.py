"""Signing dossiers with pyHanko as PAdES (B-B, B-T with a timestamp server, B-LT on request).

The certificate is `SIGNING_P12` (with `SIGNING_P12_PASSWORD`). Without one, a
self-signed organiser certificate is generated once into the data directory; its
SHA-256 fingerprint is printed on every dossier and on the verification page, so
a reader can tell this platform's signature from anyone else's.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import logging
import os
import tempfile
from dataclasses import dataclass, replace
from functools import cache
from io import BytesIO
from pathlib import Path
from typing import BinaryIO
from urllib.parse import urlsplit

from petition.settings import Settings, private_directory

SELF_SIGNED_NAME = "organiser-signing.p12"
SIGNATURE_FIELD = "OrganiserSignature"
#: The document timestamp added later to a dossier signed while the authority was unreachable.
TIMESTAMP_FIELD = "DocumentTimestamp"

log = logging.getLogger("petition.dossiers")


class SigningError(RuntimeError):
    """The signing certificate cannot be read; the message says which setting to fix."""


@dataclass(frozen=True)
class SigningConfig:
    """What a pool process needs to sign: picklable, read from the settings."""

    p12_path: str
    password: str | None
    timestamp_url: str | None
    self_signed: bool
    #: PAdES B-LT (SIGNING_LTV): validation data fetched and embedded at signing.
    ltv: bool = False
    trust_roots: str | None = None


def self_signed_path(settings: Settings) -> Path:
    return settings.data_dir / "signing" / SELF_SIGNED_NAME


def signing_config(settings: Settings) -> SigningConfig:
    """The configured P12, or the self-signed one (generated on first use)."""
    if settings.signing_p12 is not None:
        if not settings.signing_p12.is_file():
            raise SigningError(f"SIGNING_P12: no such file {settings.signing_p12}")
        password = str(settings.signing_p12_password) if settings.signing_p12_password else None
        config = SigningConfig(str(settings.signing_p12), password, settings.timestamp_url, False)
    else:
        config = SigningConfig(str(ensure_self_signed(settings)), None, settings.timestamp_url, True)
    roots = str(settings.signing_trust_roots) if settings.signing_trust_roots else None
    return replace(config, ltv=settings.signing_ltv, trust_roots=roots)


def ensure_self_signed(settings: Settings) -> Path:
    """Generate the organiser certificate once; concurrent first uses agree on one file."""
    path = self_signed_path(settings)
    if path.exists():
        return path
    private_directory(path.parent)  # DATA_DIR too, when this comes first
    data = _generate_p12(_organisation_name(settings))
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".p12-")  # created 0600
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        try:
            os.link(tmp, path)  # fails if another process got there first: keep theirs
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return path


def _organisation_name(settings: Settings) -> str:
    host = urlsplit(settings.base_url).hostname or "localhost"
    return f"Petition organisers at {host}"


def _generate_p12(common_name: str) -> bytes:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.serialization import pkcs12
    from cryptography.x509.oid import NameOID

    # ECDSA P-256: made in milliseconds, accepted by pyHanko, poppler/NSS and Acrobat.
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64]),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "petition (self-signed dossier signing)"),
        ]
    )
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=True,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return pkcs12.serialize_key_and_certificates(common_name.encode(), key, cert, None, serialization.NoEncryption())


def load_certificate_der(config: SigningConfig) -> bytes:
    """The signing certificate (DER) of the P12."""
    return _certificate_der(config.p12_path, config.password, os.stat(config.p12_path).st_mtime_ns)


@cache
def _certificate_der(path: str, password: str | None, _mtime: int) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs12

    try:
        bundle = pkcs12.load_pkcs12(Path(path).read_bytes(), password.encode() if password else None)
    except ValueError as exc:
        raise SigningError("SIGNING_P12 cannot be opened: wrong SIGNING_P12_PASSWORD or not a PKCS#12 file") from exc
    if bundle.cert is None or bundle.key is None:
        raise SigningError("SIGNING_P12 must hold a private key and its certificate")
    return bundle.cert.certificate.public_bytes(Encoding.DER)


def fingerprint_hex(der: bytes) -> str:
    return hashlib.sha256(der).hexdigest()


def format_fingerprint(hex_digest: str) -> str:
    """AB:CD:… as certificate viewers show it."""
    upper = hex_digest.upper()
    return ":".join(upper[i : i + 2] for i in range(0, len(upper), 2))


def certificate_fingerprint(settings: Settings) -> str:
    """SHA-256 fingerprint of this platform's signing certificate, AB:CD:… style."""
    return format_fingerprint(fingerprint_hex(load_certificate_der(signing_config(settings))))


def sign_pdf_bytes(pdf: bytes, config: SigningConfig, *, reason: str, location: str) -> bytes:
    """Sign `pdf` as PAdES B-B (B-T with a timestamp URL). Runs in a pool process."""
    output = BytesIO()
    asyncio.run(_sign(BytesIO(pdf), output, config, reason=reason, location=location))
    return output.getvalue()


def sign_pdf_file(source: str, target: str, config: SigningConfig, *, reason: str, location: str) -> bool:
    """`sign_pdf_bytes` from the file `source` to a new private file `target` (in a pool process).

    pyHanko copies the unsigned file and digests the signed one in blocks: the dossier is
    never held in memory whole. True if the signature carries a timestamp (B-T); with a
    `timestamp_url` whose authority does not answer, the file is signed B-B and False says
    it awaits a document timestamp (`timestamp_pdf_file`).
    """
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    with open(source, "rb") as unsigned, os.fdopen(fd, "w+b") as signed:  # noqa: PTH123
        if config.timestamp_url is None:
            asyncio.run(_sign(unsigned, signed, config, reason=reason, location=location))
            return False
        from pyhanko.sign.timestamps.common_utils import TimestampRequestError

        try:
            asyncio.run(_sign(unsigned, signed, config, reason=reason, location=location))
            return True
        except TimestampRequestError as exc:  # unreachable, an HTTP error, or no valid token
            log.warning("dossier signed without a timestamp, to be stamped later: %s", type(exc).__name__)
        unsigned.seek(0)
        signed.seek(0)
        signed.truncate()
        asyncio.run(_sign(unsigned, signed, replace(config, timestamp_url=None), reason=reason, location=location))
        return False


def timestamp_pdf_file(path: str, target: str, timestamp_url: str, config: SigningConfig | None = None) -> None:
    """Append an RFC 3161 document timestamp to the signed PDF `path`, into a new private file.

    An incremental update: the bytes the organiser signature covers stay as they are, so it
    still validates; the timestamp proves the file existed at the authority's time. Raises
    OSError when the authority does not answer.
    """
    fd = os.open(target, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
    with open(path, "rb") as signed, os.fdopen(fd, "w+b") as output:  # noqa: PTH123
        asyncio.run(_document_timestamp(signed, output, timestamp_url, config))


async def _document_timestamp(
    source: BinaryIO, output: BinaryIO, timestamp_url: str, config: SigningConfig | None
) -> None:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers

    from petition.transparency.trusted_time import timestamper

    stamper = signers.PdfTimeStamper(timestamper(timestamp_url), field_name=TIMESTAMP_FIELD)
    if config is None or not config.ltv:
        await stamper.async_timestamp_pdf(IncrementalPdfFileWriter(source, strict=False), "sha256", output=output)
        return
    # B-LT for a dossier signed while the authority was away: the organiser signature's validation
    # data goes into the DSS first, then the document timestamp (with its own) covers it.
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import dss

    signer = _load_signer(config)
    context = _validation_context(signer, config)
    with_dss = BytesIO()
    try:
        [embedded] = PdfFileReader(source, strict=False).embedded_signatures
        await dss.async_add_validation_info(embedded, context, output=with_dss)
    except Exception as exc:  # noqa: BLE001 - pyHanko's path, fetch and revocation errors
        raise SigningError(_ltv_failure(exc)) from exc
    await stamper.async_timestamp_pdf(
        IncrementalPdfFileWriter(with_dss, strict=False), "sha256", validation_context=context, output=output
    )


#: Where Debian keeps the system's CA bundle: the roots B-LT trusts without SIGNING_TRUST_ROOTS.
SYSTEM_ROOTS = "/etc/ssl/certs/ca-certificates.crt"


def _load_signer(config: SigningConfig):  # type: ignore[no-untyped-def]
    from pyhanko.sign import signers

    signer = signers.SimpleSigner.load_pkcs12(
        config.p12_path, passphrase=config.password.encode() if config.password else None
    )
    if signer is None:
        raise SigningError("SIGNING_P12 cannot be opened: wrong SIGNING_P12_PASSWORD or not a PKCS#12 file")
    return signer


def _validation_context(signer, config: SigningConfig):  # type: ignore[no-untyped-def]
    """What B-LT checks the signer's and the authority's chains against, fetching revocation data.

    Trusted: the self-issued certificates the P12 carries (a self-signed organiser certificate
    among them) and SIGNING_TRUST_ROOTS, else the system's bundle. Revocation is hard-fail: a
    CRL or OCSP answer that cannot be had fails the signing, so B-LT is never claimed without it.
    """
    from pyhanko.keys import load_certs_from_pemder
    from pyhanko_certvalidator import ValidationContext
    from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

    own = [signer.signing_cert, *signer.cert_registry]
    roots = [cert for cert in own if cert.self_signed != "no"]
    bundle = config.trust_roots or (SYSTEM_ROOTS if Path(SYSTEM_ROOTS).is_file() else None)
    if bundle:
        roots.extend(load_certs_from_pemder([bundle]))
    return ValidationContext(
        trust_roots=roots,
        other_certs=own,
        allow_fetching=True,
        revocation_mode="hard-fail",
        fetcher_backend=RequestsFetcherBackend(per_request_timeout=10),
    )


def _ltv_failure(exc: BaseException) -> str:
    return (
        f"SIGNING_LTV: the validation data could not be gathered ({type(exc).__name__}): check that the "
        "signing and timestamp certificates chain to SIGNING_TRUST_ROOTS, are not revoked, and that "
        "their CRL or OCSP addresses answer"
    )


async def _sign(source: BinaryIO, output: BinaryIO, config: SigningConfig, *, reason: str, location: str) -> None:
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers

    signer = _load_signer(config)
    timestamper = None
    if config.timestamp_url:
        from petition.transparency.trusted_time import timestamper as http_timestamper

        timestamper = http_timestamper(config.timestamp_url)
    # B-LT only over B-T: without a timestamp the file is B-B, stamped (and given its DSS) later.
    context = _validation_context(signer, config) if config.ltv and timestamper is not None else None
    meta = signers.PdfSignatureMetadata(
        field_name=SIGNATURE_FIELD,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location=location,
        embed_validation_info=context is not None,
        validation_context=context,
    )
    writer = IncrementalPdfFileWriter(source, strict=False)
    try:
        await signers.async_sign_pdf(writer, meta, signer=signer, timestamper=timestamper, output=output)
    except SigningError:
        raise
    except Exception as exc:
        from pyhanko.sign.timestamps.common_utils import TimestampRequestError

        if context is None or isinstance(exc, TimestampRequestError):
            raise
        raise SigningError(_ltv_failure(exc)) from exc
