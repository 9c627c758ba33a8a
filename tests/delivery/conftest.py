from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from petition.app import create_app
from petition.settings import Settings
from tests.conftest import make_settings
from tests.support import SMTPServer, free_port


class LiveServer:
    """The application served by uvicorn on loopback, in a thread of the test process."""

    def __init__(self, settings: Settings) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=self.port, log_level="warning",
                                access_log=False, lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self) -> None:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the live server did not start")
            time.sleep(0.02)

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(20)


@contextmanager
def live_server(settings: Settings) -> Iterator[LiveServer]:
    server = LiveServer(settings)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def make_live(database_url: str, tmp_path: Path, smtp: SMTPServer) -> Iterator[Callable[..., LiveServer]]:
    stack = ExitStack()

    def make(**overrides: Any) -> LiveServer:
        url = overrides.pop("database_url", database_url)
        return stack.enter_context(live_server(make_settings(url, tmp_path / "data", smtp, **overrides)))

    with stack:
        yield make
