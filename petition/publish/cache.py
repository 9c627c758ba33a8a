"""A short in-process cache for what every public page reads: the appeal, counts, newest names.

Counts are never kept in a counter row (that row would be the one every confirmation
fights over); they are counted from the endorsements with an index-only scan, and this
cache keeps the answer for a few seconds so that 100,000 endorsements and many readers
cost one count per process per few seconds. When this process changes an endorsement
(confirms it, say) it drops the entries of that appeal at once (the app connects
`invalidate` to the life cycle's one hook, `Lifecycle.public_changed`), so the person who
has just confirmed sees themselves counted; other processes catch up within the TTL.

Concurrent readers of an expired entry share one load instead of all querying at once.

What is cached here is what the public may see, so the cache carries the one setting that
decides it, ANONYMOUS_COUNT_THRESHOLD: `cached.listed_counts` keeps public counts only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, TypeVar

from starlette.requests import Request

from petition.publish.queries import DEFAULT_ANONYMOUS_COUNT_THRESHOLD

T = TypeVar("T")

DEFAULT_TTL = 5.0
#: Beyond this many entries, expired ones are dropped (and if that is not enough, all).
MAX_ENTRIES = 2000


@dataclass
class _Entry:
    value: Any
    expires: float


class PublicCache:
    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_ENTRIES,
        *,
        anonymous_count_threshold: int = DEFAULT_ANONYMOUS_COUNT_THRESHOLD,
    ) -> None:
        self.ttl = ttl
        self.anonymous_count_threshold = anonymous_count_threshold
        self.max_entries = max_entries
        self._clock = clock
        self._entries: dict[Hashable, _Entry] = {}
        self._loading: dict[Hashable, asyncio.Future[Any]] = {}
        # Bumped by every invalidation: a load that started before it is not kept.
        self._generation = 0

    async def get(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> T:
        entry = self._entries.get(key)
        now = self._clock()
        if entry is not None and entry.expires > now:
            return entry.value  # type: ignore[no-any-return]
        pending = self._loading.get(key)
        if pending is not None:
            return await asyncio.shield(pending)  # type: ignore[no-any-return]
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._loading[key] = future
        generation = self._generation
        try:
            value = await load()
        except BaseException as exc:
            future.set_exception(exc)
            # Waiters get the error; nobody else is left to retrieve it.
            future.exception()
            raise
        else:
            future.set_result(value)
            if generation == self._generation:
                self._store(key, value)
            return value
        finally:
            if self._loading.get(key) is future:
                del self._loading[key]

    def peek(self, key: Hashable) -> Any:
        """The fresh value of `key`, or None (also for a stored None): never loads."""
        entry = self._entries.get(key)
        if entry is not None and entry.expires > self._clock():
            return entry.value
        return None

    def _store(self, key: Hashable, value: Any) -> None:
        now = self._clock()
        if len(self._entries) >= self.max_entries:
            self._entries = {k: e for k, e in self._entries.items() if e.expires > now}
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
        self._entries[key] = _Entry(value, now + self.ttl)

    def __len__(self) -> int:
        return len(self._entries)

    def invalidate(self, appeal_id: int | None = None) -> None:
        """Forget what was cached about one appeal (keys start with its id), or everything."""
        self._generation += 1
        if appeal_id is None:
            self._entries.clear()
            return
        for key in [k for k in self._entries if isinstance(k, tuple) and k and k[0] == appeal_id]:
            del self._entries[key]


def public_cache(request: Request) -> PublicCache:
    """The cache of this application (one per process, kept with the services)."""
    # Not through petition.web: the public reads (publish.cached) import this module, and the
    # domain imports no web code (the contracts in pyproject.toml).
    cache: PublicCache = request.state.services.public_cache
    return cache
