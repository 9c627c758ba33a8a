"""Checking a dossier someone hands us: its signature, and whether we issued it.

`check_signature` runs in a process of its own (`verify_pool.py`): it parses the upload
with pyHanko and reads the validation status of the signature that matters — the first
one made with this platform's certificate, else the last one — and the list digest the
file claims. `verify_file` turns that into one verdict (`VerdictKind`):

- genuine: the signature verifies (`valid`), its certificate's SHA-256 fingerprint is
  ours, the signed bytes are unchanged (`intact`) and are the whole file (coverage
  `ENTIRE_FILE`, nothing after it), and the file's SHA-256 is a dossier in the `dossiers`
  table; or, for a dossier stamped after signing or signed B-LT, what follows the signed
  revision is only validation data and document timestamps (pyHanko's difference analysis:
  `LTA_UPDATES`) and the whole file's SHA-256 is on record as issued;
- changed: our certificate's valid signature, but the file is not what it signed (bytes
  appended after the signature, or changed inside it);
- unrecorded: our signature over the whole, unchanged file, but no dossier on record has
  this file's SHA-256 (a lost record, or another installation with the same certificate);
- other certificate / not signed / unreadable (not a PDF, broken, too complex to check in
  time, or a signature that names our certificate but does not verify with it).

A digest the file claims (its `/PetitionListSHA256`) counts only when the file itself is
an issued dossier: a forged file carrying a real list digest is told apart from it. A
digest typed in is confirmed only when it is stored in the `dossiers` table, with the
appeal, country and date it belongs to. Issued dossiers' anonymous counts are shown as the
public may see them (`attributable_anonymous`).

An issued dossier built while the public log had a checkpoint carries it in its canonical
list's header (docs/dossiers.md); the page shows it and whether today's log is consistent
with it (`Anchor`: an RFC 9162 consistency proof from that checkpoint to the latest one).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import sqlalchemy as sa

from petition.db import Database
from petition.dossiers.content import LogCheckpoint, parse_checkpoint_line
from petition.dossiers.join import CANONICAL_LIST_NAME, LIST_DIGEST_KEY
from petition.dossiers.tables import dossiers
from petition.publish.queries import DEFAULT_ANONYMOUS_COUNT_THRESHOLD, attributable_anonymous
from petition.transparency import merkle
from petition.transparency import store as log_store

MAX_UPLOAD_BYTES = 20 * 1024 * 1024
DIGEST_RE = re.compile(r"^[0-9a-f]{64}$")
#: Signatures looked at in one file: a dossier has one; a file with hundreds is not one.
MAX_SIGNATURES = 10


class Problem(enum.StrEnum):
    """Why a file could not be checked."""

    BROKEN = "broken"  # not a PDF pyHanko can read
    TOO_COMPLEX = "too-complex"  # stopped at its CPU, memory or time limit
    SIGNATURE_DAMAGED = "signature-damaged"  # a signature that cannot be verified at all


@dataclass(frozen=True)
class SignatureCheck:
    """What pyHanko found in a file, for the signature that decides (see the module docstring)."""

    readable: bool  # a PDF pyHanko could parse
    signed: bool  # it holds at least one signature
    intact: bool  # pyHanko `intact`: the signed bytes hash to the digest that was signed
    whole_file: bool  # coverage ENTIRE_FILE and no bytes after the signed ones
    signer_fingerprint: str | None  # SHA-256 of the signing certificate, lower-case hex
    signed_at: dt.datetime | None
    timestamped: bool
    list_sha256: str | None  # the list digest the file states (its /Info), unconfirmed
    valid: bool = False  # pyHanko `valid`: the signature verifies with the certificate it names
    trusted: bool = False  # pyHanko `trusted`: that certificate chains to ours
    appended: bool = False  # bytes after the signed revision: an incremental update or trailing bytes
    coverage: str | None = None  # pyHanko SignatureCoverageLevel, by name
    modification_level: str | None = None  # pyHanko ModificationLevel, by name
    docmdp_ok: bool | None = None
    problem: Problem | None = None
    #: What follows the signed revision is only a DSS and document timestamps (LTA_UPDATES).
    lta_only: bool = False


NOT_A_PDF = SignatureCheck(False, False, False, False, None, None, False, None, problem=Problem.BROKEN)
TOO_COMPLEX = SignatureCheck(False, False, False, False, None, None, False, None, problem=Problem.TOO_COMPLEX)


def check_signature(data: bytes, trust_root_der: bytes | None = None) -> SignatureCheck:
    """Validate the signature of `data` that decides (runs in a pool process)."""
    return asyncio.run(_check(data, trust_root_der))


def _open(data: bytes) -> tuple[Any, bool]:
    """A reader of `data`, and whether bytes follow the last end-of-file marker it could read.

    Bytes appended after `%%EOF` without one of their own (not an incremental update) make
    pyHanko give up on the whole file; the part before them is read instead, and the file
    counts as changed after signing.
    """
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        reader.embedded_regular_signatures  # noqa: B018 - parses the form fields now
        return reader, False
    except MemoryError:
        raise  # too complex, not broken (verify_pool)
    except Exception:  # noqa: BLE001 - any parse failure: try the part before trailing bytes
        end = data.rfind(b"%%EOF")
        if end < 0:
            raise
        cut = end + len(b"%%EOF")
        cut += len(data[cut : cut + 2]) - len(data[cut : cut + 2].lstrip(b"\r\n"))
        if cut >= len(data):
            raise
        reader = PdfFileReader(BytesIO(data[:cut]), strict=False)
        reader.embedded_regular_signatures  # noqa: B018
        return reader, True


async def _check(data: bytes, trust_root_der: bytes | None) -> SignatureCheck:
    from asn1crypto import x509
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext

    try:
        reader, trailing = _open(data)
        signatures = reader.embedded_regular_signatures[:MAX_SIGNATURES]
        list_sha256 = _list_digest(reader)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - any parse failure means "not a PDF we can read"
        return NOT_A_PDF
    if not signatures:
        return SignatureCheck(True, False, False, False, None, None, False, list_sha256)
    ours = hashlib.sha256(trust_root_der).hexdigest() if trust_root_der else None
    fingerprints = [_fingerprint(signature) for signature in signatures]
    index = fingerprints.index(ours) if ours is not None and ours in fingerprints else -1
    signature, fingerprint = signatures[index], fingerprints[index]
    # Signatures after the chosen one are appended revisions too.
    later = index != -1 and index != len(signatures) - 1
    damaged = SignatureCheck(
        True,
        True,
        False,
        False,
        fingerprint,
        None,
        False,
        list_sha256,
        appended=trailing or later,
        problem=Problem.SIGNATURE_DAMAGED,
    )
    if fingerprint is None:
        return damaged
    roots = [x509.Certificate.load(trust_root_der)] if trust_root_der else []
    context = ValidationContext(trust_roots=roots, allow_fetching=False)
    try:
        # No difference analysis: nothing may follow a dossier's signature, harmless or not.
        status = await async_validate_pdf_signature(signature, signer_validation_context=context, skip_diff=True)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - malformed signature data: it proves nothing
        return damaged
    appended = trailing or later or status.coverage != SignatureCoverageLevel.ENTIRE_FILE
    level = status.modification_level
    lta_only = False
    if appended and not (trailing or later) and status.coverage == SignatureCoverageLevel.ENTIRE_REVISION:
        # Incremental updates after the signature: a later document timestamp or B-LT's
        # validation data is allowed, anything else (a changed page, a new field) is not.
        from pyhanko.sign.diff_analysis import ModificationLevel

        try:
            analysed = await async_validate_pdf_signature(signature, signer_validation_context=context)
        except MemoryError:
            raise
        except Exception:  # noqa: BLE001 - an update pyHanko cannot analyse counts as a change
            analysed = None
        if analysed is not None:
            level = analysed.modification_level
            lta_only = level == ModificationLevel.LTA_UPDATES and bool(analysed.docmdp_ok)
    return SignatureCheck(
        readable=True,
        signed=True,
        intact=bool(status.intact),
        whole_file=not appended,
        signer_fingerprint=fingerprint,
        signed_at=status.signer_reported_dt,
        timestamped=status.timestamp_validity is not None,
        list_sha256=list_sha256,
        valid=bool(status.valid),
        trusted=bool(status.trusted),
        appended=appended,
        coverage=status.coverage.name if status.coverage is not None else None,
        modification_level=level.name if level is not None else None,
        docmdp_ok=status.docmdp_ok,
        lta_only=lta_only,
    )


def _fingerprint(signature: Any) -> str | None:
    try:
        return hashlib.sha256(signature.signer_cert.dump()).hexdigest()
    except Exception:  # noqa: BLE001 - no readable certificate in the signature
        return None


def _list_digest(reader: Any) -> str | None:
    info = reader.trailer_view.get("/Info")
    if info is None:
        return None
    value = info.get_object().get(LIST_DIGEST_KEY)
    text = str(value).strip().lower() if value is not None else ""
    return text if DIGEST_RE.match(text) else None


def normalise_digest(raw: str) -> str | None:
    """A hex SHA-256 typed by a person: spaces and colons allowed, any case."""
    text = re.sub(r"[\s:]", "", raw or "").lower()
    return text if DIGEST_RE.match(text) else None


# --- what the records say --------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """The public log's checkpoint a dossier carries, and how today's log stands to it."""

    checkpoint: LogCheckpoint
    latest_size: int | None  # today's latest checkpoint's size; None: the log has none
    consistent: bool | None  # None: nothing to compare with (the log has no checkpoint)


def checkpoint_in_pdf(source: bytes | str) -> LogCheckpoint | None:
    """The checkpoint in the header of a dossier's attached canonical list, if any.

    Read only from files this platform issued (their SHA-256 is on record), so the
    attachment is the one the build wrote."""
    from pypdf import PdfReader

    try:
        reader = PdfReader(BytesIO(source) if isinstance(source, bytes) else source)
        attached = reader.attachments.get(CANONICAL_LIST_NAME)
    except Exception:  # noqa: BLE001 - an unreadable file carries no checkpoint
        return None
    if not attached:
        return None
    return parse_checkpoint_line(attached[0])


async def anchor_of(db: Database, checkpoint: LogCheckpoint | None) -> Anchor | None:
    """Whether today's log extends the one the checkpoint names (a consistency proof)."""
    if checkpoint is None:
        return None
    latest = await log_store.latest(db)
    if latest is None:
        return Anchor(checkpoint, None, None)
    if checkpoint.size > latest.size:
        return Anchor(checkpoint, latest.size, False)
    try:
        proof = await log_store.consistency_proof(db, checkpoint.size, latest.size)
        merkle.verify_consistency(checkpoint.size, latest.size, proof, checkpoint.root_bytes, latest.root)
    except (merkle.ProofError, KeyError, ValueError):
        return Anchor(checkpoint, latest.size, False)
    return Anchor(checkpoint, latest.size, True)


async def _issued(db: Database, where: Any, *, language: str, anonymous_threshold: int) -> list[dict[str, Any]]:
    """Finished dossiers matching `where`, newest first, each with its appeal's title in
    `language` and the anonymous count the public may see (ANONYMOUS_COUNT_THRESHOLD)."""
    from petition.appeals.queries import current_text
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
            dossiers.c.file_path,
            appeals.c.id.label("appeal_id"),
            appeals.c.slug.label("appeal_slug"),
            appeals.c.status.label("appeal_status"),
            appeals.c.default_language.label("appeal_language"),
        )
        .join(appeals, appeals.c.id == dossiers.c.appeal_id)
        .where(dossiers.c.state == "done", where)
        .order_by(dossiers.c.finished_at.desc(), dossiers.c.id.desc())
        .limit(20)
    )
    titles: dict[int, str] = {}
    for row in rows:
        if row["appeal_id"] not in titles:
            text = await current_text(
                db,
                appeal={"id": row["appeal_id"], "default_language": row["appeal_language"]},
                language=language,
            )
            titles[row["appeal_id"]] = text["title"] if text is not None else row["appeal_slug"]
    return [
        {
            **{
                key: row[key]
                for key in (
                    "id",
                    "country",
                    "signatory_count",
                    "pdf_sha256",
                    "list_sha256",
                    "finished_at",
                    "file_path",
                    "appeal_id",
                    "appeal_slug",
                )
            },
            "appeal_title": titles[row["appeal_id"]],
            "appeal_public": row["appeal_status"] != "draft",
            "anonymous_count": attributable_anonymous(row["anonymous_count"], threshold=anonymous_threshold),
        }
        for row in rows
    ]


async def find_issued(
    db: Database,
    *,
    digest: str,
    language: str = "en",
    anonymous_threshold: int = DEFAULT_ANONYMOUS_COUNT_THRESHOLD,
) -> list[dict[str, Any]]:
    """Finished dossiers whose PDF or list has this SHA-256 (see `_issued`)."""
    return await _issued(
        db,
        sa.or_(dossiers.c.pdf_sha256 == digest, dossiers.c.list_sha256 == digest),
        language=language,
        anonymous_threshold=anonymous_threshold,
    )


# --- verdicts ----------------------------------------------------------------------------------


class VerdictKind(enum.StrEnum):
    """The one answer the page gives about an uploaded file (module docstring)."""

    GENUINE = "genuine"
    CHANGED = "changed"
    UNRECORDED = "unrecorded"
    OTHER_CERTIFICATE = "other-certificate"
    NOT_SIGNED = "not-signed"
    UNREADABLE = "unreadable"


def decide(check: SignatureCheck, *, fingerprint: str, issued: bool) -> VerdictKind:
    """The verdict on a file from its signature check, our certificate's fingerprint (hex) and
    whether the file's SHA-256 is an issued dossier's."""
    if not check.readable:
        return VerdictKind.UNREADABLE
    if not check.signed:
        return VerdictKind.NOT_SIGNED
    if check.signer_fingerprint is None:
        return VerdictKind.UNREADABLE
    if check.signer_fingerprint != fingerprint:
        return VerdictKind.OTHER_CERTIFICATE
    if not check.valid or check.problem is not None:
        # It names our certificate but was not made with our key: it proves nothing.
        return VerdictKind.UNREADABLE
    if not check.intact:
        return VerdictKind.CHANGED
    if not check.whole_file:
        # Validation data or a document timestamp added after signing is ours only when the
        # whole file, additions included, is the one on record; otherwise someone else added it.
        return VerdictKind.GENUINE if check.lta_only and issued else VerdictKind.CHANGED
    return VerdictKind.GENUINE if issued else VerdictKind.UNRECORDED


@dataclass(frozen=True)
class FileVerdict:
    kind: VerdictKind
    file_sha256: str
    check: SignatureCheck
    #: Dossiers on record whose PDF is this very file (its SHA-256).
    issued: Sequence[dict[str, Any]]
    #: A list digest the file states while it is no issued dossier: a claim, not a confirmation.
    claimed_list_sha256: str | None
    #: Dossiers on record with that list digest: the file pretends to be one of them.
    claimed: Sequence[dict[str, Any]]
    #: The public log's checkpoint an issued file carries, and today's log against it.
    anchor: Anchor | None = None

    @property
    def problem(self) -> Problem | None:
        if self.kind != VerdictKind.UNREADABLE:
            return None
        return self.check.problem or Problem.SIGNATURE_DAMAGED

    @property
    def ours(self) -> bool:
        """Signed with this platform's key (whatever happened to the file afterwards)."""
        return self.kind in (VerdictKind.GENUINE, VerdictKind.CHANGED, VerdictKind.UNRECORDED)

    @property
    def list_sha256(self) -> str | None:
        """The list digest, when the file is an issued dossier (the record's, which it states)."""
        return self.issued[0]["list_sha256"] if self.issued else None


async def verify_file(
    db: Database,
    *,
    data: bytes,
    check: SignatureCheck,
    fingerprint: str,
    language: str = "en",
    anonymous_threshold: int = DEFAULT_ANONYMOUS_COUNT_THRESHOLD,
) -> FileVerdict:
    """The verdict on an uploaded file whose signature `check` was made (`verify_pool`)."""
    file_sha256 = await asyncio.to_thread(lambda: hashlib.sha256(data).hexdigest())
    issued = await _issued(
        db,
        dossiers.c.pdf_sha256 == file_sha256,
        language=language,
        anonymous_threshold=anonymous_threshold,
    )
    claimed_digest = None if issued else check.list_sha256
    claimed = []
    if claimed_digest is not None:
        claimed = await _issued(
            db,
            dossiers.c.list_sha256 == claimed_digest,
            language=language,
            anonymous_threshold=anonymous_threshold,
        )
    kind = decide(check, fingerprint=fingerprint, issued=bool(issued))
    anchor = await anchor_of(db, await asyncio.to_thread(checkpoint_in_pdf, data)) if issued else None
    return FileVerdict(kind, file_sha256, check, issued, claimed_digest, claimed, anchor)


@dataclass(frozen=True)
class DigestAnswer:
    digest: str
    issued: Sequence[dict[str, Any]]
    kind: str | None  # "pdf" | "list": what of the issued dossier the digest is
    anchor: Anchor | None = None  # the newest such dossier's log checkpoint, as in `FileVerdict`


async def verify_digest(
    db: Database,
    *,
    digest: str,
    language: str = "en",
    anonymous_threshold: int = DEFAULT_ANONYMOUS_COUNT_THRESHOLD,
) -> DigestAnswer:
    """A digest typed in: confirmed only if a dossier on record has it, as its PDF or list digest."""
    issued = await find_issued(db, digest=digest, language=language, anonymous_threshold=anonymous_threshold)
    kind = None
    if issued:
        kind = "pdf" if any(row["pdf_sha256"] == digest for row in issued) else "list"
    anchor = None
    path = issued[0]["file_path"] if issued else None
    if path:
        anchor = await anchor_of(db, await asyncio.to_thread(checkpoint_in_pdf, str(path)))
    return DigestAnswer(digest, issued, kind, anchor)
