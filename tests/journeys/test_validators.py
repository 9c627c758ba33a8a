"""Outside validators (issue 20): the W3C Nu HTML checker finds no error on the public pages in
every language, and Lighthouse scores accessibility, best practices and SEO at 1.0 on the appeal.

Both come from npm (`scripts/bootstrap test` puts them under `.venv/npm`; `PETITION_NPM` names
another prefix) and run against the live server on loopback only. Each runs once: the checker
over every page saved to files, Lighthouse over the appeal page. Without Java, Node or the
packages the tests are skipped — except under `CI=true`, where a missing tool fails.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest

from petition.i18n import LANGUAGES
from tests.support import PROJECT_ROOT, csrf_from, links, sqlite_pass_only, valid_form, wait_for_mail

pytestmark = pytest.mark.browser

NPM = Path(os.environ.get("PETITION_NPM", PROJECT_ROOT / ".venv" / "npm"))
VNU_JAR = NPM / "node_modules" / "vnu-jar" / "build" / "dist" / "vnu.jar"
LIGHTHOUSE = NPM / "node_modules" / "lighthouse" / "cli" / "index.js"
CHROMIUM = "/usr/bin/chromium"
SLUG = "protect-deserters"
APPEAL = f"/appeals/{SLUG}"

#: Pages anyone can open without a secret link, fetched in every language with ?lang=xx.
PUBLIC_PATHS = [
    "/",
    APPEAL,
    f"{APPEAL}/signatories",
    f"{APPEAL}/check-email",
    f"{APPEAL}/share",
    f"{APPEAL}/embed",
    "/privacy",
    "/privacy/data",
    "/verify",
    "/no-such-page",
]

# Debian's Chromium still looks up accounts.google.com, clients2.google.com and
# update.googleapis.com despite --disable-background-networking (seen with strace): the
# resolver rule answers every name but loopback with "not found", so nothing leaves the machine.
CHROME_FLAGS = (
    "--headless=new --no-sandbox --disable-gpu --disable-background-networking"
    " --disable-component-update --no-first-run --disable-sync"
    " --host-resolver-rules='MAP * ~NOTFOUND, EXCLUDE 127.0.0.1'"
)


def require(condition: bool, reason: str) -> None:
    """Skip without the tool on a developer's machine; under CI=true a missing tool is a failure."""
    if condition:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (CI=true: the validators must run; scripts/bootstrap test installs them)")
    pytest.skip(f"{reason}: run scripts/bootstrap test")


def with_lang(path: str, lang: str) -> str:
    """The path with its `lang` parameter (if any) replaced by `lang`."""
    url = httpx.URL(path)
    return str(url.copy_set_param("lang", lang))


def save(folder: Path, name: str, response: httpx.Response, pages: dict[Path, str], *, suffix: str = "html") -> None:
    assert response.status_code < 500, (name, response.status_code)
    media_type = {"html": "text/html", "svg": "image/svg+xml", "css": "text/css"}[suffix]
    assert response.headers["content-type"].startswith(media_type), (name, response.headers["content-type"])
    slug = re.sub(r"[^A-Za-z0-9]+", "_", re.sub(r"/(confirm|receipts)/[^/?]+", r"/\1", name)).strip("_")
    path = folder / f"{len(pages):03d}-{slug or 'home'}.{suffix}"
    path.write_bytes(response.content)
    pages[path] = name


def add_second_appeal(server: Any) -> None:
    """With two appeals `/` lists them (with one it redirects to it)."""
    import asyncio

    from petition.appeals.queries import create_appeal, save_text

    async def add() -> None:
        appeal_id = await create_appeal(server.services.db, slug="second-appeal")
        await save_text(
            server.services.db, appeal_id=appeal_id, language="en", title="A second appeal", addressees="", body="Text."
        )

    asyncio.run_coroutine_threadsafe(add(), server.loop).result(30)


def collect_pages(server: Any, smtp: Any, folder: Path) -> dict[Path, str]:
    """Every public page and badge in every language, the pages of one endorsement's life, the CSS."""
    pages: dict[Path, str] = {}
    add_second_appeal(server)
    with httpx.Client(base_url=server.url, timeout=30) as client:
        for lang in LANGUAGES:
            for path in PUBLIC_PATHS:
                response = client.get(with_lang(path, lang))
                assert response.status_code == (404 if path == "/no-such-page" else 200), (path, lang)
                save(folder, with_lang(path, lang), response, pages)
            # The form sent empty: the page with every error shown.
            form = client.get(with_lang(APPEAL, lang))
            errors = client.post(
                with_lang(f"{APPEAL}/endorse", lang), data={"csrf_token": csrf_from(form.text), "consent": ""}
            )
            assert errors.status_code == 400, (lang, errors.status_code)
            save(folder, f"POST {APPEAL}/endorse?lang={lang} (errors)", errors, pages)
            badge = with_lang(f"{APPEAL}/badge.svg", lang)
            save(folder, badge, client.get(badge), pages, suffix="svg")
        for path in ("/static/css/site.css", "/static/css/admin.css", "/static/favicon.svg"):
            save(folder, path, client.get(path), pages, suffix=path.rpartition(".")[2])

        # One endorsement, confirmed: check-email with its address, the confirm page, the
        # thank-you page and the receipt (each shown in every language).
        email = "office@validators.example"
        form = client.get(APPEAL)
        sent = client.post(
            f"{APPEAL}/endorse", data={**valid_form(contact_email=email), "csrf_token": csrf_from(form.text)}
        )
        assert sent.status_code == 303, sent.status_code
        check_email = sent.headers["location"]
        [confirmation] = wait_for_mail(smtp, email)
        [confirm] = [link.removeprefix(server.url) for link in links(confirmation, server.url)]
        for lang in LANGUAGES:
            save(folder, with_lang(check_email, lang), client.get(with_lang(check_email, lang)), pages)
            save(folder, with_lang(confirm, lang), client.get(with_lang(confirm, lang)), pages)
        page = client.get(confirm)
        done = client.post(confirm, data={"csrf_token": csrf_from(page.text)})
        assert done.status_code == 303, done.status_code
        done_path = done.headers["location"]
        thank_you = wait_for_mail(smtp, email, count=2)[1]
        [receipt] = [link.removeprefix(server.url) for link in links(thank_you, server.url) if "/receipts/" in link]
        deadline = time.monotonic() + 30
        while 'class="verdict' not in client.get(receipt).text and time.monotonic() < deadline:
            time.sleep(0.3)  # the log's worker appends the entry in the background
        for lang in LANGUAGES:
            save(folder, with_lang(done_path, lang), client.get(with_lang(done_path, lang)), pages)
            receipt_page = client.get(with_lang(receipt, lang))
            save(folder, with_lang(receipt, lang), receipt_page, pages)
            for log_badge in map(html.unescape, re.findall(r'src="(/log/badges/[^"]+)"', receipt_page.text)[:1]):
                save(folder, log_badge, client.get(log_badge), pages, suffix="svg")
    return pages


@sqlite_pass_only
def test_the_nu_html_checker_finds_no_error_on_any_public_page_in_any_language(live_server, smtp, tmp_path):
    java = shutil.which("java")
    require(java is not None, "java is not installed")
    require(VNU_JAR.exists(), f"{VNU_JAR} is missing")
    assert java is not None
    folder = tmp_path / "pages"
    folder.mkdir()
    pages = collect_pages(live_server, smtp, folder)

    run = subprocess.run(
        [
            java,
            "-jar",
            str(VNU_JAR),
            "--errors-only",
            "--also-check-css",
            "--also-check-svg",
            "--format",
            "json",
            "--stdout",
            *map(str, pages),
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.stdout.strip(), run.stderr[-4000:]
    report = json.loads(run.stdout)
    errors = [m for m in report["messages"] if m.get("type") in ("error", "non-document-error")]
    lines = []
    for message in errors:
        path = Path(message.get("url", "").removeprefix("file:"))
        lines.append(f"{path.name}:{message.get('lastLine', '?')} ({pages.get(path, '?')}): {message['message']}")
    assert not errors, f"{len(errors)} errors in {len(pages)} pages:\n" + "\n".join(lines)
    assert run.returncode == 0, run.stderr


@sqlite_pass_only
def test_lighthouse_scores_the_appeal_page_at_one_for_accessibility_best_practices_and_seo(live_server, tmp_path):
    node = shutil.which("node")
    require(node is not None, "node is not installed")
    require(LIGHTHOUSE.exists(), f"{LIGHTHOUSE} is missing")
    require(Path(CHROMIUM).exists(), f"{CHROMIUM} is missing")
    assert node is not None
    report_path = tmp_path / "lighthouse.json"
    run = subprocess.run(
        [
            node,
            str(LIGHTHOUSE),
            f"{live_server.url}{APPEAL}",
            "--only-categories=accessibility,best-practices,seo",
            "--output=json",
            f"--output-path={report_path}",
            "--quiet",
            f"--chrome-flags={CHROME_FLAGS}",
            "--no-enable-error-reporting",  # never ask, never send anything to Sentry
        ],
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "CHROME_PATH": CHROMIUM, "HOME": str(tmp_path)},
    )
    assert run.returncode == 0 and report_path.exists(), run.stderr[-4000:]
    report = json.loads(report_path.read_text(encoding="utf-8"))
    assert report.get("runtimeError") is None, report["runtimeError"]
    scores = {name: category["score"] for name, category in report["categories"].items()}
    failing = [
        f"{name}: {audit['id']} ({audit['score']}) {audit['title']}"
        for name, category in report["categories"].items()
        for ref in category["auditRefs"]
        if ref["weight"] > 0
        for audit in [report["audits"][ref["id"]]]
        if audit["score"] is not None and audit["score"] < 1
    ]
    assert scores == {"accessibility": 1.0, "best-practices": 1.0, "seo": 1.0}, "\n".join([str(scores), *failing])
