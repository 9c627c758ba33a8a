"""The built wheel runs on its own: installed into a fresh virtualenv and started from an empty
directory, with nothing of the checkout in reach, it serves pages, its stylesheet and German emails.

The wheel is built as a user would get it (an sdist first, the wheel from the sdist) and installed
with the versions of requirements/run.lock; uv's cache makes every run after the first quick.
"""

from __future__ import annotations

import email
import email.policy
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx2
import pytest

from petition.i18n import translations
from tests.conftest import _backend
from tests.support import PROJECT_ROOT, csrf_from, free_port, text_body, valid_form, wait_for

pytestmark = pytest.mark.skipif(
    _backend() != "sqlite",
    reason="the installed wheel runs on its own embedded SQLite whatever the backend: this runs in the SQLite pass",
)

SLUG = "protect-deserters"  # the demo appeal (petition/appeals/demo)
#: The parts of the checkout a wheel is built from; nothing else may be needed.
SOURCES = ("pyproject.toml", "README.md", "petition", "templates", "static")


def _uv() -> str:
    # uv is in the test extras, so it sits beside this interpreter; a PATH one will do as well.
    uv = shutil.which("uv", path=str(Path(sys.executable).parent)) or shutil.which("uv")
    assert uv, "uv is missing: scripts/bootstrap test installs it"
    return uv


def _run(command: list[str | Path], **kwargs: object) -> str:
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=600, check=False, **kwargs)  # type: ignore[call-overload]
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return str(done.stdout)


@dataclass
class Installed:
    venv: Path
    wheel: Path


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """A fresh virtualenv holding the wheel built from this checkout and the run lock's versions."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    source.mkdir()
    # A copy, so that the build's egg-info and build/ never land in the checkout; symlinks stay
    # symlinks (petition/templates -> ../templates), as in a clone.
    for name in SOURCES:
        path = PROJECT_ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            shutil.copy2(path, source / name)
    env = {**os.environ, "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}
    uv = _uv()
    _run([uv, "build", "--quiet", "--out-dir", base / "dist", source], env=env)  # the sdist, then the wheel from it
    [wheel] = (base / "dist").glob("petition-*.whl")
    venv = base / "venv"
    _run([uv, "venv", "--quiet", "--python", sys.executable, venv], env=env)
    python = venv / "bin" / "python"
    _run(
        [uv, "pip", "install", "--quiet", "--python", python, "-r", PROJECT_ROOT / "requirements" / "run.lock"], env=env
    )
    _run([uv, "pip", "install", "--quiet", "--python", python, "--no-deps", wheel], env=env)
    # The lock satisfies what the wheel asks for: a lock that no longer fits pyproject.toml fails here.
    _run([uv, "pip", "check", "--python", python], env=env)
    return Installed(venv=venv, wheel=wheel)


@dataclass
class Served:
    url: str
    data_dir: Path
    workdir: Path
    log: Path


@pytest.fixture(scope="module")
def served(installed: Installed, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`petition serve` of the virtualenv, on the embedded default, from an empty working directory."""
    base = tmp_path_factory.mktemp("serve")
    workdir = base / "empty"
    workdir.mkdir()
    data_dir = base / "data"
    port = free_port()
    # Only what a person would set: nothing of the test run's environment (PYTHONPATH, the
    # suite's database) reaches the server. No SMTP_HOST: emails are written as .eml files.
    env = {
        "PATH": f"{installed.venv / 'bin'}:/usr/bin:/bin",
        "HOME": os.environ.get("HOME", str(base)),
        "LANG": "C.UTF-8",
        "DATA_DIR": str(data_dir),
        "DATABASE_URL": f"sqlite:///{data_dir / 'petition.db'}",
        "WORKER_POLL_INTERVAL": "0.2",
    }
    log = base / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [str(installed.venv / "bin" / "petition"), "serve", "--port", str(port)],
            cwd=workdir,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, f"petition serve exited {process.returncode}:\n{log.read_text()}"
            try:
                if httpx2.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            assert time.monotonic() < deadline, f"petition serve did not answer in 60 s:\n{log.read_text()}"
            time.sleep(0.2)
        yield Served(url=url, data_dir=data_dir, workdir=workdir, log=log)
    finally:
        process.terminate()
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def test_the_installed_package_is_the_wheel_not_the_checkout(installed: Installed, tmp_path: Path):
    code = "import importlib.resources as r; print(r.files('petition'))"
    where = _run([installed.venv / "bin" / "python", "-c", code], cwd=tmp_path, env={"PATH": "/usr/bin:/bin"}).strip()
    assert Path(where).is_relative_to(installed.venv), where
    assert not Path(where, "templates").is_symlink()


def test_the_appeal_page_and_its_stylesheet(served: Served):
    page = httpx2.get(f"{served.url}/appeals/{SLUG}?lang=de", timeout=10)
    assert page.status_code == 200, served.log.read_text()
    # The demo appeal was created from the texts in the wheel.
    assert "Schutz und Asyl für Deserteure" in page.text
    stylesheets = re.findall(r'<link rel="stylesheet" href="(/static/[^"?]+\.css)(?:\?[^"]*)?"', page.text)
    assert stylesheets, "the page links no stylesheet"
    for path in stylesheets:
        sheet = httpx2.get(served.url + path, timeout=10)
        assert sheet.status_code == 200, path
        assert sheet.headers["content-type"].startswith("text/css"), sheet.headers["content-type"]
        # Served under a content-hashed name (petition.assets): the repository's file without the hash.
        source = re.sub(r"\.[0-9a-f]{12}(\.css)$", r"\1", path.lstrip("/"))
        assert sheet.content == (PROJECT_ROOT / source).read_bytes()


def test_a_german_endorsement_gets_a_german_email(served: Served):
    subject = translations("de").gettext("Please confirm your endorsement")
    assert subject != "Please confirm your endorsement"  # the catalogue's German, to look for
    with httpx2.Client(base_url=served.url, timeout=10) as client:
        form_page = client.get(f"/appeals/{SLUG}?lang=de")
        assert form_page.status_code == 200
        form = valid_form(contact_email="office@wheel.example", organisation_name="Wheel e.V.")
        answer = client.post(f"/appeals/{SLUG}/endorse?lang=de", data={**form, "csrf_token": csrf_from(form_page.text)})
        assert answer.status_code in (200, 303), (answer.status_code, answer.text[:500])
    [path] = wait_for(lambda: list((served.data_dir / "mail").glob("*.eml")), timeout=30)
    message = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert message["To"] == "office@wheel.example"
    assert message["Subject"] == subject
    body = text_body(message)  # type: ignore[arg-type]
    assert translations("de").gettext("Hello,") in body
    assert f"{served.url}/" in body  # links name the server that sent them
    # Everything went to DATA_DIR: the server never used its working directory.
    assert list(served.workdir.iterdir()) == []
