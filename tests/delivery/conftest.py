from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from petition.settings import Settings
from tests.conftest import make_settings
from tests.support import LiveServer, SMTPServer


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
