"""Checking a dossier someone hands us: its signature, and whether we issued it.

The signature check runs pyHanko's `async_validate_pdf_signature` in a pool process
(parsing a large PDF is CPU work). "Ours" means the signing certificate's SHA-256
fingerprint is this platform's; "issued" means the file's SHA-256 (or a digest a
person typed) is in the `dossiers` table. The issued dossiers' anonymous counts are shown
as the public may see them (`attributable_anonymous`): a dossier stored before the
threshold, or under a lower one, does not attribute a few anonymous ones here either.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from io import BytesIO

import sqlalchemy as sa

from petition.db import Database, Row
from petition.dossiers.render import LIST_DIGEST_KEY, pool
from petition.dossiers.tables import dossiers
from petition.publish.queries import DEFAULT_ANONYMOUS_COUNT_THRESHOLD, attributable_anonymous

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class SignatureCheck:
    readable: bool  # a PDF pyHanko could parse
    signed: bool  # it holds at least one signature
    intact: bool  # the signed bytes are unchanged and the cryptography checks out
    whole_file: bool  # nothing was added after signing
    signer_fingerprint: str | None  # SHA-256 of the signing certificate, hex
    signer_name: str | None
    signed_at: dt.datetime | None
    timestamped: bool
    list_sha256: str | None

    @property
    def valid(self) -> bool:
        return self.signed and self.intact and self.whole_file


NOT_A_PDF = SignatureCheck(False, False, False, False, None, None, None, False, None)


def check_signature(data: bytes, trust_root_der: bytes | None = None) -> SignatureCheck:
    """Validate the last signature of `data` (runs in a pool process)."""
    return asyncio.run(_check(data, trust_root_der))


async def _check(data: bytes, trust_root_der: bytes | None) -> SignatureCheck:
    from asn1crypto import x509
    from pyhanko.pdf_utils.misc import PdfError
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        signatures = reader.embedded_signatures
        list_sha256 = _list_digest(reader)
    except Exception:  # noqa: BLE001 - any parse failure means "not a PDF we can read"
        return NOT_A_PDF
    if not signatures:
        return SignatureCheck(True, False, False, False, None, None, None, False, list_sha256)
    signature = signatures[-1]
    roots = [x509.Certificate.load(trust_root_der)] if trust_root_der else []
    context = ValidationContext(trust_roots=roots, allow_fetching=False)
    try:
        status = await async_validate_pdf_signature(signature, signer_validation_context=context)
    except (PdfError, ValueError, KeyError, TypeError):
        return SignatureCheck(True, True, False, False, None, None, None, False, list_sha256)
    cert = status.signing_cert
    return SignatureCheck(
        readable=True,
        signed=True,
        intact=bool(status.intact and status.valid),
        whole_file=status.coverage == SignatureCoverageLevel.ENTIRE_FILE,
        signer_fingerprint=hashlib.sha256(cert.dump()).hexdigest() if cert is not None else None,
        signer_name=cert.subject.human_friendly if cert is not None else None,
        signed_at=status.signer_reported_dt,
        timestamped=status.timestamp_validity is not None,
        list_sha256=list_sha256,
    )


def _list_digest(reader: object) -> str | None:
    info = reader.trailer_view.get("/Info")  # type: ignore[attr-defined]
    if info is None:
        return None
    value = info.get_object().get(LIST_DIGEST_KEY)
    text = str(value).strip().lower() if value is not None else ""
    return text if DIGEST_RE.match(text) else None


async def check_signature_async(data: bytes, trust_root_der: bytes | None) -> SignatureCheck:
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(pool(), check_signature, data, trust_root_der)


def normalise_digest(raw: str) -> str | None:
    """A hex SHA-256 typed by a person: spaces and colons allowed, any case."""
    text = re.sub(r"[\s:]", "", raw or "").lower()
    return text if DIGEST_RE.match(text) else None


async def find_issued(
    db: Database, *, digest: str, anonymous_threshold: int = DEFAULT_ANONYMOUS_COUNT_THRESHOLD
) -> list[Row]:
    """Finished dossiers whose PDF or list has this SHA-256, newest first, with the anonymous
    count the public may see (0 below `anonymous_threshold`, ANONYMOUS_COUNT_THRESHOLD)."""
    from petition.appeals.tables import appeals

    rows = await db.fetch_all(
        sa.select(
            dossiers.c.id,
            dossiers.c.country,
            dossiers.c.signatory_count,
            dossiers.c.anonymous_count,
            dossiers.c.pdf_sha256,
            dossiers.c.list_sha256,
            dossiers.c.finished_at,
            appeals.c.slug.label("appeal_slug"),
            appeals.c.id.label("appeal_id"),
        )
        .join(appeals, appeals.c.id == dossiers.c.appeal_id)
        .where(
            dossiers.c.state == "done",
            sa.or_(dossiers.c.pdf_sha256 == digest, dossiers.c.list_sha256 == digest),
        )
        .order_by(dossiers.c.finished_at.desc(), dossiers.c.id.desc())
        .limit(20)
    )
    return [
        dict(
            row,
            anonymous_count=attributable_anonymous(
                row["anonymous_count"], threshold=anonymous_threshold
            ),
        )
        for row in rows
    ]


@dataclass(frozen=True)
class Verdict:
    file_sha256: str | None
    check: SignatureCheck | None
    ours: bool
    issued: list[Row]
    digest_kind: str | None  # "pdf" | "list" for a typed digest


async def verify_file(
    db: Database,
    *,
    data: bytes,
    fingerprint: str,
    trust_root_der: bytes | None,
    anonymous_threshold: int = DEFAULT_ANONYMOUS_COUNT_THRESHOLD,
) -> Verdict:
    file_sha256 = hashlib.sha256(data).hexdigest()
    check = await check_signature_async(data, trust_root_der)
    ours = bool(check.valid and check.signer_fingerprint == fingerprint)
    issued = [
        row
        for row in await find_issued(
            db, digest=file_sha256, anonymous_threshold=anonymous_threshold
        )
        if row["pdf_sha256"] == file_sha256
    ]
    return Verdict(file_sha256, check, ours, issued, None)


async def verify_digest(
    db: Database, *, digest: str, anonymous_threshold: int = DEFAULT_ANONYMOUS_COUNT_THRESHOLD
) -> Verdict:
    issued = await find_issued(db, digest=digest, anonymous_threshold=anonymous_threshold)
    kind = None
    if issued:
        kind = "pdf" if any(row["pdf_sha256"] == digest for row in issued) else "list"
    return Verdict(None, None, False, issued, kind)
