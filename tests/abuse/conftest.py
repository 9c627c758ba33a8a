from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

from petition.app import create_app
from tests.conftest import BASE_URL, Site, make_settings
from tests.support import SMTPServer


@pytest.fixture
def make_site(database_url: str, tmp_path: Path, smtp: SMTPServer) -> Iterator[Callable[..., Site]]:
    """A site with its own settings, seen from one client address (each call: a new app instance)."""
    stack = ExitStack()

    def make(ip: str = "203.0.113.7", **overrides: Any) -> Site:
        settings = make_settings(database_url, tmp_path / "data", smtp, **overrides)
        client = stack.enter_context(TestClient(create_app(settings), base_url=BASE_URL, client=(ip, 40000)))
        return Site(client)

    with stack:
        yield make
