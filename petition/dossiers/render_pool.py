"""The process pool dossiers are rendered in (`typesetting`, `join`), and its life cycle.

One pool per process, started on first use; its processes are forked from a server that
has imported weasyprint, pypdf and pyHanko (the verification pool, `verify_pool`, starts
its processes the same way). The web application shuts it down in its lifespan, the
CLI's builds at exit.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from petition.dossiers.typesetting import prepare_process

_pool: ProcessPoolExecutor | None = None
_pool_workers = 0
_pool_started = False
_pool_lock = threading.Lock()
_start_lock = threading.Lock()  # held while the first processes start: not _pool_lock
_exit_hook = False
#: What the forkserver imports once, for every pool process it forks (the verification pool's too):
#: weasyprint, pypdf, pyHanko and the fonts, frozen so that the processes share them (`preload`).
FORKSERVER_PRELOAD = ["petition.dossiers.preload"]
#: Seconds a running render may finish in when the pool is shut down; then its process is ended.
SHUTDOWN_GRACE = 5.0


def forkserver_context() -> Any:
    """The start method of every dossier pool: forked from one server that imported the libraries
    (no threads inherited from the web process, and a new process costs milliseconds)."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(FORKSERVER_PRELOAD)  # no effect once the server runs
    return context


def pool() -> ProcessPoolExecutor:
    """One process pool per process, started on first use (forkserver: no inherited threads)."""
    global _pool, _pool_workers, _exit_hook
    with _pool_lock:
        if _pool is None:
            _pool_workers = max(1, int(os.environ.get("PETITION_RENDER_PROCESSES", 0)) or os.cpu_count() or 1)
            _pool = ProcessPoolExecutor(
                max_workers=_pool_workers,
                mp_context=forkserver_context(),
                initializer=prepare_process,
                max_tasks_per_child=50,
            )
            if not _exit_hook:  # the CLI's builds; the web app shuts the pool down in its lifespan
                atexit.register(shutdown_pool)
                _exit_hook = True
        return _pool


def pool_workers() -> int:
    pool()
    return _pool_workers


def start_pool() -> None:
    """Start every pool process now (each prepares itself); returns without waiting for them.

    The first submit blocks until the forkserver has imported weasyprint, pypdf and
    pyHanko (about a second): call this in a thread, early, so that it overlaps with
    gathering the content instead of delaying the first chunk.
    """
    global _pool_started
    executor = pool()
    with _start_lock:
        if _pool_started:
            return
        _pool_started = True
        for _ in range(_pool_workers):
            executor.submit(os.getpid)


def shutdown_pool(grace: float = SHUTDOWN_GRACE) -> None:
    """Stop the pool and every one of its processes (blocking: call it in a thread from async code).

    Queued work is cancelled; a render still running gets `grace` seconds, then its process
    is ended: a build cut short is claimed again by a worker once its lease runs out.
    """
    global _pool, _pool_started
    with _pool_lock:
        if _pool is not None:
            stop_executor(_pool, grace=grace)
            _pool = None
            _pool_started = False


def stop_executor(executor: ProcessPoolExecutor, *, grace: float) -> None:
    """Shut `executor` down and leave none of its processes running after about `grace` seconds.

    `shutdown(wait=True)` waits for every running task, however long it takes, and
    `shutdown(wait=False)` returns with the processes still at work. Before Python 3.14
    (`terminate_workers`) the executor offers no public handle on its processes, so its
    `_processes` are read here; tests/dossiers/test_verify_pools.py
    (`test_no_pool_process_outlives_the_app`) fails if that stops working.
    """
    import contextlib
    import time

    def processes() -> list[Any]:
        return list((getattr(executor, "_processes", None) or {}).values())

    known = processes()
    # On Python 3.11 and 3.12 shutdown(wait=False) drops `_processes` while the executor's manager
    # thread may still replace a process that just exited (max_tasks_per_child), which then fails
    # in that thread (TypeError in _adjust_process_count). A pool being stopped needs no new
    # process: this instance's replacement step does nothing from here on.
    executor._adjust_process_count = lambda: None  # type: ignore[method-assign]
    executor.shutdown(wait=False, cancel_futures=True)
    deadline = time.monotonic() + grace
    for process in known:
        with contextlib.suppress(ValueError, AssertionError):  # closed, or never started
            process.join(max(0.0, deadline - time.monotonic()))
    if hasattr(executor, "terminate_workers"):  # Python 3.14
        executor.terminate_workers()
    for process in {id(p): p for p in (*known, *processes())}.values():
        with contextlib.suppress(ValueError, AssertionError):
            if process.is_alive():
                process.terminate()
                process.join(2)
            if process.is_alive():
                process.kill()
                process.join(2)
    executor.shutdown(wait=True, cancel_futures=True)
