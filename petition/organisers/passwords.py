"""Organiser passwords: argon2id via argon2-cffi, verified off the event loop.

argon2-cffi is the maintained binding of the reference implementation and
picks argon2id with RFC 9106 parameters by default; hand-rolling any of this
would only be worse.
"""

from __future__ import annotations

import asyncio
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

MIN_LENGTH = 12
MAX_LENGTH = 1024

_hasher = PasswordHasher()  # argon2id, RFC 9106 "low memory" profile


class PasswordPolicyError(ValueError):
    pass


def check_policy(password: str) -> None:
    """Raise PasswordPolicyError with a message for a password that is too weak or silly."""
    from petition.i18n import gettext as _

    if len(password) < MIN_LENGTH:
        raise PasswordPolicyError(_("The password must be at least %(n)d characters long.", n=MIN_LENGTH))
    if len(password) > MAX_LENGTH:
        raise PasswordPolicyError(_("The password must be at most %(n)d characters long.", n=MAX_LENGTH))
    if password.strip() != password or not password.strip():
        raise PasswordPolicyError(_("The password must not start or end with spaces."))


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


@cache
def _dummy_hash() -> str:
    return _hasher.hash("not-a-real-password-only-for-timing")


async def hash_password_async(password: str) -> str:
    return await asyncio.to_thread(hash_password, password)


async def verify_password_async(password_hash: str | None, password: str) -> bool:
    """Verify in a thread (argon2 is CPU and memory heavy by design).

    With no hash (an unknown or inactive account) a dummy hash is verified, so
    the answer takes about as long as for a wrong password.
    """
    if password_hash is None:
        await asyncio.to_thread(verify_password, _dummy_hash(), password)
        return False
    return await asyncio.to_thread(verify_password, password_hash, password)
