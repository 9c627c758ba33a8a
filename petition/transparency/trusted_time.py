"""RFC 3161 trusted time: tokens from the timestamp authority at `TIMESTAMP_URL`.

Checkpoints of the public log get a token over the SHA-256 of their signed note; dossiers are
signed PAdES B-T (petition.dossiers.sign), or get a document timestamp later when the authority
did not answer at build time. Nothing here holds a database transaction open while the
authority is asked: the caller records the token afterwards.
"""

from __future__ import annotations

import hashlib
import logging

log = logging.getLogger("petition.transparency")

#: Seconds the authority has to answer one request.
TIMEOUT = 30


class TimestampUnavailable(RuntimeError):
    """The authority could not be reached, or its answer was not a valid token."""


def timestamper(url: str, *, timeout: int = TIMEOUT):  # type: ignore[no-untyped-def]
    """pyHanko's HTTP client of the authority (aiohttp; asks with `application/timestamp-query`)."""
    from pyhanko.sign.timestamps import HTTPTimeStamper

    return HTTPTimeStamper(url, timeout=timeout)


async def token_for(url: str, data: bytes) -> bytes:
    """The DER RFC 3161 token (a CMS ContentInfo) whose message imprint is SHA-256(`data`)."""
    from pyhanko.sign.general import SigningError
    from pyhanko.sign.timestamps.common_utils import TimestampRequestError

    digest = hashlib.sha256(data).digest()
    try:
        token = await timestamper(url).async_timestamp(digest, "sha256")
    except (TimestampRequestError, SigningError, OSError, ValueError) as exc:
        raise TimestampUnavailable(f"the timestamp authority did not answer: {type(exc).__name__}") from exc
    return bytes(token.dump())


def imprint_of(token: bytes) -> tuple[str, bytes]:
    """The (hash algorithm, digest) a token's TSTInfo says it stamps."""
    from asn1crypto import cms

    info = cms.ContentInfo.load(token)["content"]["encap_content_info"]["content"].parsed
    imprint = info["message_imprint"]
    return imprint["hash_algorithm"]["algorithm"].native, bytes(imprint["hashed_message"].native)


def reply_of(token: bytes) -> bytes:
    """A token as the authority's reply (`application/timestamp-reply`: status granted, then it),
    which `openssl ts -reply` and `openssl ts -verify -in` read as they are."""
    from asn1crypto import cms, tsp

    reply = tsp.TimeStampResp({"status": {"status": "granted"}, "time_stamp_token": cms.ContentInfo.load(token)})
    return bytes(reply.dump())
