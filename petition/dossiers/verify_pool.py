"""Where uploaded files are checked: one process of their own, a CPU cap, a deadline.

A crafted PDF can cost seconds of CPU to parse (a few MB of form fields cost as many
seconds). Checked in the pool that renders dossiers, it held a renderer; checked here it
holds only this pool's one process, and only for a bounded time:

- each check runs in a fresh process (`max_tasks_per_child=1`, forked from the dossier
  pools' forkserver in milliseconds), so memory and CPU accounting start from nothing;
- the process may use `timeout` seconds of CPU (RLIMIT_CPU, set in the initializer): at
  the soft limit SIGXCPU stops the check, which answers "too complex"; a process stuck
  where the signal cannot reach it is killed by the kernel two seconds later, and the
  pool is replaced; its address space is capped too (RLIMIT_AS, 1 GiB more than it starts
  with), so a compression bomb fails instead of swapping;
- the page waits `timeout` seconds of wall-clock time for the answer (from when the process
  is ready), then ends the process and says the file is too complex;
- one check at a time: the next upload waits at most `timeout` seconds for the process,
  then the page answers 503 "busy".

`close()` (the app's lifespan) ends the process, whatever it is doing.
"""

from __future__ import annotations

import asyncio
import logging
import math
import resource
import signal
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from petition.dossiers.render_pool import forkserver_context, stop_executor
from petition.dossiers.verify import TOO_COMPLEX, SignatureCheck, check_signature

log = logging.getLogger("petition.dossiers")

#: Address space a check may use beyond what its process holds when it starts.
MEMORY_HEADROOM = 1024 * 1024 * 1024
#: Seconds the process's CPU time may exceed its soft cap before the kernel kills it.
HARD_CPU_SLACK = 2


class CheckerBusy(RuntimeError):
    """The checking process did not become free in time (or the app is shutting down)."""


class _TooComplex(BaseException):
    """Raised by the CPU-limit signal inside a check.

    A BaseException, so that no `except Exception` in a PDF parser swallows it.
    """


def _on_cpu_limit(signum: int, frame: Any) -> None:
    raise _TooComplex


def prepare_checker(cpu_seconds: float, memory_headroom: int) -> None:
    """Each checking process, as it starts: its CPU and memory caps (see the module docstring)."""
    import pyhanko.sign.validation  # noqa: F401 - imported before the clock starts
    import pyhanko_certvalidator  # noqa: F401

    usage = resource.getrusage(resource.RUSAGE_SELF)
    soft = math.ceil(usage.ru_utime + usage.ru_stime + cpu_seconds)
    signal.signal(signal.SIGXCPU, _on_cpu_limit)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, soft + HARD_CPU_SLACK))
    if memory_headroom:
        try:
            with open("/proc/self/statm") as fh:  # noqa: PTH123
                size = int(fh.read().split()[0]) * resource.getpagesize()
            limit = size + memory_headroom
            resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        except (OSError, ValueError):  # not Linux, or a lower hard limit already: keep that
            log.info("verify: no memory cap for the checking process")


def run_check(data: bytes, trust_root_der: bytes | None) -> SignatureCheck:
    """One check in a checking process; a check that hits its CPU or memory cap is "too complex"."""
    try:
        return check_signature(data, trust_root_der)
    except (_TooComplex, MemoryError):
        return TOO_COMPLEX
    finally:
        signal.signal(signal.SIGXCPU, signal.SIG_IGN)  # the process ends after this one check


class VerifyPool:
    """The checking process of one web process: one check at a time, each bounded."""

    def __init__(self, *, timeout: float, memory_headroom: int = MEMORY_HEADROOM) -> None:
        self.timeout = max(0.1, timeout)
        self.memory_headroom = memory_headroom
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._free: asyncio.Semaphore | None = None
        self._closed = False

    def _pool(self) -> ProcessPoolExecutor:
        """The pool, started and ready: the first process's start (and the forkserver's, on the
        first use of either dossier pool) does not count against a check's deadline."""
        with self._lock:
            if self._closed:
                raise CheckerBusy("the checker is closed")
            if self._executor is None:
                executor = ProcessPoolExecutor(
                    max_workers=1,
                    mp_context=forkserver_context(),
                    initializer=prepare_checker,
                    initargs=(self.timeout, self.memory_headroom),
                    max_tasks_per_child=1,
                )
                try:
                    executor.submit(int).result(timeout=120)  # its successor starts at once
                except Exception as exc:
                    stop_executor(executor, grace=0)
                    raise CheckerBusy("the checking process did not start") from exc
                self._executor = executor
            return self._executor

    def _discard(self, executor: ProcessPoolExecutor) -> None:
        """End the pool's process, whatever it does; the next check starts a new pool."""
        with self._lock:
            if self._executor is executor:
                self._executor = None
        stop_executor(executor, grace=0)

    async def check(self, data: bytes, trust_root_der: bytes | None) -> SignatureCheck:
        """The file's signature check, or `TOO_COMPLEX` after `timeout` seconds.

        Raises CheckerBusy when another check holds the process for `timeout` seconds before
        this one could start, or when the app is shutting down.
        """
        if self._free is None:
            self._free = asyncio.Semaphore(1)
        try:
            await asyncio.wait_for(self._free.acquire(), self.timeout)
        except TimeoutError:
            raise CheckerBusy("the checking process is busy") from None
        try:
            executor = await asyncio.to_thread(self._pool)
            try:
                submitted = await asyncio.to_thread(executor.submit, run_check, data, trust_root_der)
            except (BrokenProcessPool, RuntimeError):  # its process was killed since
                await asyncio.to_thread(self._discard, executor)
                executor = await asyncio.to_thread(self._pool)
                submitted = await asyncio.to_thread(executor.submit, run_check, data, trust_root_der)
            try:
                return await asyncio.wait_for(asyncio.wrap_future(submitted), self.timeout)
            except TimeoutError:
                log.warning("verify: a check was stopped after %.1f s", self.timeout)
                await asyncio.to_thread(self._discard, executor)
                return TOO_COMPLEX
            except BrokenProcessPool:
                log.warning("verify: the checking process was killed (its CPU or memory cap)")
                await asyncio.to_thread(self._discard, executor)
                return TOO_COMPLEX
        finally:
            self._free.release()

    def close(self, grace: float = 1.0) -> None:
        """End the checking process (blocking: call it in a thread from async code)."""
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            stop_executor(executor, grace=grace)
