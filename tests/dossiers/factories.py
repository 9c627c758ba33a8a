"""The list digest computed on its own, PDF tools, and a signing certificate for dossier tests."""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
import subprocess
from pathlib import Path

import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

from petition.appeals.queries import DEMO_SLUG, get_appeal
from petition.db import Database
from petition.endorsements.tables import endorsements


async def _recompute(url: str, country: str, threshold: int, checkpoint: tuple[int, str] | None = None) -> str:
    """The list digest as docs/dossiers.md defines it, computed independently of petition.dossiers.

    Anonymous endorsements count only when the country has at least `threshold` of them
    (ANONYMOUS_COUNT_THRESHOLD), as in the open data.
    """
    db = Database(url)
    await db.connect()
    try:
        appeal = await get_appeal(db, slug=DEMO_SLUG)
        assert appeal is not None
        rows = await db.fetch_all(
            sa.select(endorsements).where(
                endorsements.c.appeal_id == appeal["id"],
                endorsements.c.country == country,
                endorsements.c.state.in_(("confirmed", "approved")),
            )
        )
    finally:
        await db.disconnect()

    def esc(v: str) -> str:
        return v.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")

    named = [r for r in rows if r["visibility"] == "public"]
    anonymous = len(rows) - len(named)
    if anonymous < threshold:
        anonymous = 0
    lines = sorted(
        "\t".join(
            esc(v)
            for v in (
                r["organisation_name"],
                r["city"],
                r["organisation_type"],
                r["website"],
                r["listed_at"].date().isoformat(),
            )
        )
        for r in named
    )
    text = (
        "\n".join(
            [
                "petition-dossier-list/1",
                f"appeal\t{DEMO_SLUG}",
                f"country\t{country}",
                f"named\t{len(named)}",
                f"anonymous\t{anonymous}",
                *([f"checkpoint\t{checkpoint[0]}\t{checkpoint[1]}"] if checkpoint else []),
                *lines,
            ]
        )
        + "\n"
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def recompute_list_digest(url: str, country: str, threshold: int = 3, checkpoint: tuple[int, str] | None = None) -> str:
    """As docs/dossiers.md says: from the database, and the log checkpoint printed on the cover."""
    return asyncio.run(_recompute(url, country, threshold, checkpoint))


def printed_checkpoint(pdf: Path) -> tuple[int, str] | None:
    """The public log's checkpoint as the cover prints it (size, base64 root), in any language:
    the root is the only 44-character base64 word on the cover, its size the number before it."""
    cover = re.sub(r"\s+", " ", run("pdftotext", "-f", "1", "-l", "1", "-enc", "UTF-8", pdf, "-"))
    found = re.search(r"(\d+)\D{1,40}?([A-Za-z0-9+/]{43}=)", cover)
    return (int(found.group(1)), found.group(2)) if found else None


def run(*args: str | Path) -> str:
    result = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


def pdftotext(path: Path) -> str:
    """The text in reading order (a wrapped cell stays together, unlike with -layout)."""
    return run("pdftotext", "-enc", "UTF-8", path, "-")


def pdfsig(path: Path) -> str:
    # pdfsig exits 0 even when the digest does not match: callers read the output.
    result = subprocess.run(["pdfsig", str(path)], capture_output=True, text=True, timeout=120)
    return result.stdout + result.stderr


def flip_byte(data: bytes) -> bytes:
    """One byte changed inside a compressed content stream of the signed range."""
    start = data.index(b"stream\n", len(data) // 3) + len(b"stream\n") + 40
    return data[:start] + bytes([data[start] ^ 0x01]) + data[start + 1 :]


def make_p12(path: Path, name: str, password: str | None = None) -> bytes:
    """A throwaway self-signed signing certificate written as PKCS#12 (encrypted with `password`
    if given); returns the certificate as DER."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.KeyUsage(True, True, False, False, False, False, False, False, False),
            critical=True,
        )
        .sign(key, hashes.SHA256())
    )
    encryption = serialization.BestAvailableEncryption(password.encode()) if password else serialization.NoEncryption()
    path.write_bytes(pkcs12.serialize_key_and_certificates(b"test", key, cert, None, encryption))
    return cert.public_bytes(serialization.Encoding.DER)
