"""Signed, expiring, purpose-salted tokens for links in emails (itsdangerous).

Each purpose has its own salt, so a withdrawal link can never confirm and the
other way round. A token names the record and its nonce; whether it may still
be used comes from the record's state, not from the token.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer


class Purpose(enum.StrEnum):
    CONFIRM = "petition.confirm-endorsement"
    WITHDRAW = "petition.withdraw-endorsement"
    DATA_REQUEST = "petition.data-request"
    #: A receipt of the public log: names the endorsement and its public entry id, no expiry.
    RECEIPT = "petition.endorsement-receipt"
    #: The page where an organisation proves its website's domain (DOMAIN_PROOF_MAX_AGE).
    DOMAIN_PROOF = "petition.domain-proof"
    #: The unsubscribe link of news emails (RFC 8058 one-click): the record and its nonce, no expiry.
    UNSUBSCRIBE = "petition.news-unsubscribe"
    #: The contact's page for inviting a second officer (DOMAIN_PROOF_MAX_AGE, as the thank-you
    #: email's other links): the record and its nonce.
    COUNTERSIGN_INVITE = "petition.countersign-invite"
    #: The invited officer's page (CONFIRM_MAX_AGE): the record and the invitation's nonce.
    COUNTERSIGN = "petition.countersign"


class InvalidToken(Exception):
    pass


class ExpiredToken(InvalidToken):
    def __init__(self, endorsement_id: int | None, nonce: str | None) -> None:
        super().__init__("expired")
        self.endorsement_id = endorsement_id
        self.nonce = nonce


@dataclass(frozen=True)
class TokenClaims:
    endorsement_id: int
    nonce: str


class Tokens:
    def __init__(self, secret: str) -> None:
        # One serializer per purpose, made once: each derives its signing key from the secret.
        self._serializers = {purpose: URLSafeTimedSerializer(secret, salt=purpose.value) for purpose in Purpose}

    def _serializer(self, purpose: Purpose) -> URLSafeTimedSerializer:
        return self._serializers[purpose]

    def make(self, purpose: Purpose, *, endorsement_id: int, nonce: str) -> str:
        return str(self._serializer(purpose).dumps([endorsement_id, nonce]))

    def read(self, purpose: Purpose, token: str, *, max_age: int | None) -> TokenClaims:
        serializer = self._serializer(purpose)
        try:
            payload = serializer.loads(token, max_age=max_age)
        except SignatureExpired as exc:
            claims = _claims(exc.payload)
            raise ExpiredToken(claims.endorsement_id if claims else None, claims.nonce if claims else None) from exc
        except (BadSignature, UnicodeError, ValueError) as exc:
            raise InvalidToken(str(type(exc).__name__)) from exc
        claims = _claims(payload)
        if claims is None:
            raise InvalidToken("payload")
        return claims


def _claims(payload: object) -> TokenClaims | None:
    if isinstance(payload, list) and len(payload) == 2 and isinstance(payload[0], int) and isinstance(payload[1], str):
        return TokenClaims(payload[0], payload[1])
    return None
