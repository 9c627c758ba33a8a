"""Real-browser journeys: the app served by uvicorn on a free port, Debian's Chromium via Playwright."""

from __future__ import annotations

import os
import re
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from tests.support import PROJECT_ROOT, LiveServer, SMTPServer, free_port

CHROMIUM = "/usr/bin/chromium"
AXE = PROJECT_ROOT / ".venv" / "npm" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = Path(os.environ.get("PETITION_ARTIFACTS", PROJECT_ROOT / "test-artifacts"))


#: Set by scripts/test when it runs both passes: which variant of a journey that runs both with
#: JavaScript and without runs in this pass ("js" on SQLite, "nojs" on PostgreSQL), so that each
#: database sees each journey once and the suite takes ~2 minutes less. A journey that runs in one
#: variant only runs in both passes, except the checks marked `one_pass` (axe-core's, of markup
#: that no database changes), which run in the PostgreSQL pass only. Unset (a pass of its own,
#: pytest alone), everything runs.
VARIANT = os.environ.get("PETITION_TEST_JOURNEY_VARIANT", "")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if VARIANT not in ("js", "nojs"):
        return
    if VARIANT == "js":
        for item in items:
            if item.get_closest_marker("one_pass") is not None:
                reason = "checks markup no database changes: runs in the other pass of scripts/test only"
                item.add_marker(pytest.mark.skip(reason=reason))
    # A journey's variants: the same test with the same other parameters, `javascript` apart.
    twins: dict[tuple[Any, ...], list[tuple[pytest.Item, bool]]] = defaultdict(list)
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if "javascript" in params and item.path.parent == Path(__file__).parent:
            others = tuple(sorted((name, repr(value)) for name, value in params.items() if name != "javascript"))
            twins[(item.path, getattr(item, "originalname", item.name), others)].append((item, params["javascript"]))
    other = "nojs" if VARIANT == "js" else "js"
    for variants in twins.values():
        if len(variants) < 2:
            continue
        for item, javascript in variants:
            if javascript != (VARIANT == "js"):
                reason = f"its {other} variant runs in the other pass of scripts/test (PETITION_TEST_JOURNEY_VARIANT)"
                item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture
def live_server(database_url: str, tmp_path: Path, smtp: SMTPServer) -> Iterator[LiveServer]:
    port = free_port()
    settings = make_settings(database_url, tmp_path / "data", smtp, base_url=f"http://127.0.0.1:{port}")
    server = LiveServer(settings, port)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser() -> Iterator[Any]:
    # Per test: Playwright's sync API keeps an event loop running in this thread while
    # it is open, and later tests call asyncio.run().
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: run scripts/bootstrap test (it installs Debian's chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        try:
            yield instance
        finally:
            instance.close()


@pytest.fixture(params=[True, False], ids=["js", "nojs"])
def javascript(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def page(browser: Any, javascript: bool) -> Iterator[Any]:
    # A fresh profile per test; axe is injected through the DevTools protocol, not a <script>.
    context = browser.new_context(
        java_script_enabled=javascript, locale="en-GB", viewport={"width": 1280, "height": 900}
    )
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


class Shots:
    def __init__(self, page: Any, folder: Path) -> None:
        self.page = page
        self.folder = folder
        self.count = 0

    def __call__(self, name: str) -> Path:
        self.count += 1
        self.folder.mkdir(parents=True, exist_ok=True)
        path = self.folder / f"{self.count:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture
def shots(page: Any, request: pytest.FixtureRequest) -> Shots:
    backend = "pg" if os.environ.get("PETITION_TEST_DATABASE", "sqlite").startswith("postgres") else "sqlite"
    name = re.sub(r"[^\w.-]+", "_", request.node.name)
    return Shots(page, ARTIFACTS / "journeys" / backend / name)


def axe_violations(page: Any, *, impacts: tuple[str, ...] = ("serious", "critical")) -> list[dict[str, Any]]:
    """Run axe-core in the page (needs JavaScript on) and return serious and critical violations."""
    if not AXE.exists():
        pytest.fail(f"{AXE} is missing: run scripts/bootstrap test (it installs axe-core from npm)")
    page.evaluate(AXE.read_text(encoding="utf-8"))
    result = page.evaluate("async () => await axe.run(document, {resultTypes: ['violations']})")
    return [
        {"id": v["id"], "impact": v["impact"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in result["violations"]
        if v["impact"] in impacts
    ]
