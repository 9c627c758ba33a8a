"""Random bytes for what every request makes: request ids, CSRF secrets, nonces, Message-IDs.

No HTTP here: the domain (endorsements, outbox) uses it too.
"""

from __future__ import annotations

import os
import threading


class _RandomPool:
    """`os.urandom` read 4 KiB at a time and handed out in slices: the same bytes from the
    kernel's CSPRNG, without a system call for each request id and CSRF secret. Each byte is
    handed out once (the lock: CPython 3.11 does not switch threads inside `__call__` today,
    but nothing promises it); a forked process starts with a pool of its own."""

    SIZE = 4096

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._pool = b""
        self._at = 0
        self._lock = threading.Lock()

    def __call__(self, n: int) -> bytes:
        with self._lock:
            at = self._at
            if at + n > len(self._pool):
                self._pool = os.urandom(max(self.SIZE, n))
                at = 0
            self._at = at + n
            return self._pool[at : at + n]


#: `random_bytes(n)`: n bytes from the kernel's CSPRNG, as `os.urandom(n)` gives them.
random_bytes = _RandomPool()


def random_hex(n: int) -> str:
    """n random bytes as 2n hex digits, as `secrets.token_hex(n)` makes them."""
    return random_bytes(n).hex()
