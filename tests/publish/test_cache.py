"""The short in-process cache behind the counts: expiry, local invalidation, one load at a time."""

from __future__ import annotations

import asyncio

import pytest

from petition.publish.cache import PublicCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_values_are_kept_for_the_ttl_then_loaded_again():
    clock = Clock()
    cache = PublicCache(ttl=5, clock=clock)
    loads = []

    async def load():
        loads.append(clock.now)
        return len(loads)

    async def scenario():
        assert await cache.get((1, "counts"), load) == 1
        clock.now += 4.9
        assert await cache.get((1, "counts"), load) == 1
        clock.now += 0.2
        assert await cache.get((1, "counts"), load) == 2

    asyncio.run(scenario())
    assert len(loads) == 2


def test_invalidating_an_appeal_drops_only_its_entries():
    cache = PublicCache(ttl=60)
    version = {"n": 0}

    async def load():
        return version["n"]

    async def scenario():
        await cache.get((1, "counts"), load)
        await cache.get((2, "counts"), load)
        version["n"] = 1
        cache.invalidate(1)
        assert await cache.get((1, "counts"), load) == 1
        assert await cache.get((2, "counts"), load) == 0
        cache.invalidate()
        assert await cache.get((2, "counts"), load) == 1

    asyncio.run(scenario())


def test_concurrent_readers_share_one_load_and_a_stale_load_is_not_kept():
    cache = PublicCache(ttl=60)
    calls = []
    release = asyncio.Event

    async def scenario():
        gate = release()

        async def slow():
            calls.append(1)
            await gate.wait()
            return len(calls)

        readers = [asyncio.create_task(cache.get((1, "counts"), slow)) for _ in range(20)]
        await asyncio.sleep(0)
        cache.invalidate(1)  # an endorsement was confirmed while the count ran
        gate.set()
        assert await asyncio.gather(*readers) == [1] * 20
        assert len(calls) == 1
        # The value loaded before the invalidation was handed out but not kept.
        assert await cache.get((1, "counts"), slow) == 2

    asyncio.run(scenario())


def test_a_failed_load_reaches_every_waiter_and_is_not_cached():
    cache = PublicCache(ttl=60)

    async def scenario():
        async def boom():
            await asyncio.sleep(0)
            raise RuntimeError("database down")

        results = await asyncio.gather(*(cache.get("k", boom) for _ in range(3)), return_exceptions=True)
        assert all(isinstance(r, RuntimeError) for r in results)

        async def fine():
            return "ok"

        assert await cache.get("k", fine) == "ok"

    asyncio.run(scenario())


def test_the_cache_cannot_grow_without_bound():
    clock = Clock()
    cache = PublicCache(ttl=5, clock=clock, max_entries=10)

    async def scenario():
        async def value():
            return 1

        for i in range(100):
            await cache.get(("slug", f"x{i}"), value)
            assert len(cache) <= 10

    asyncio.run(scenario())


@pytest.mark.parametrize("ttl", [0.0])
def test_a_zero_ttl_always_loads(ttl):
    cache = PublicCache(ttl=ttl)
    loads = []

    async def load():
        loads.append(1)
        return 1

    async def scenario():
        await cache.get("k", load)
        await cache.get("k", load)

    asyncio.run(scenario())
    assert len(loads) == 2
