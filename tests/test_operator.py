"""The operator's identity (SITE_NAME, OPERATOR_NAME, OPERATOR_EMAIL, OPERATOR_ADDRESS,
PRIVACY_CONTACT): loaded like every setting, checked at start, shown in the header and footer;
a site without them starts and names no one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from starlette.testclient import TestClient

from petition.app import create_app
from petition.cli import main
from petition.settings import SettingsError, load_settings
from tests.conftest import BASE_URL, make_settings

NAMES = ("SITE_NAME", "OPERATOR_NAME", "OPERATOR_EMAIL", "OPERATOR_ADDRESS", "PRIVACY_CONTACT")
OPERATOR = {
    "site_name": "Appeals for objectors",
    "operator_name": "جمعية السلام",
    "operator_email": "kontakt@friedensnetz.example",
    "operator_address": r"Hauptstraße 1\n10115 Berlin",
    "privacy_contact": "https://friedensnetz.example/datenschutz",
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in NAMES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)


def test_unset_the_operator_is_nobody_and_the_site_has_no_name(tmp_path):
    operator = load_settings(None, data_dir=str(tmp_path)).operator
    assert (operator.site_name, operator.name, operator.email, operator.address, operator.privacy_contact) == (
        None,
        None,
        None,
        None,
        None,
    )


def test_the_operator_comes_from_the_environment_and_the_env_file(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text(
        "OPERATOR_NAME=Connection e.V.\nOPERATOR_ADDRESS=Von-Behring-Str. 110\\n63075 Offenbach\n"
        "PRIVACY_CONTACT=datenschutz@connection-ev.example\n"
    )
    monkeypatch.setenv("OPERATOR_EMAIL", "office@connection-ev.example")
    monkeypatch.setenv("SITE_NAME", "  Appeals   of Connection ")
    operator = load_settings(".env", data_dir=str(tmp_path)).operator
    assert operator.name == "Connection e.V."
    assert operator.address == "Von-Behring-Str. 110\n63075 Offenbach"
    assert operator.email == "office@connection-ev.example"
    assert operator.privacy_contact == "datenschutz@connection-ev.example"
    assert operator.privacy_contact_is_email
    assert operator.site_name == "Appeals of Connection"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("OPERATOR_EMAIL", "office"),
        ("OPERATOR_EMAIL", "office@connection-ev"),
        ("OPERATOR_EMAIL", "Office <office@connection-ev.example>"),
        ("OPERATOR_EMAIL", "a@b.example, c@d.example"),
        ("PRIVACY_CONTACT", "datenschutz at connection-ev.example"),
        ("PRIVACY_CONTACT", "ftp://connection-ev.example/privacy"),
    ],
)
def test_a_malformed_contact_is_refused_at_start_with_its_name(name, value, tmp_path):
    with pytest.raises(SettingsError, match=name):
        load_settings(None, data_dir=str(tmp_path), **{name.lower(): value})


def test_the_command_line_says_which_setting_is_wrong(tmp_path, monkeypatch):
    monkeypatch.setenv("OPERATOR_EMAIL", "not-an-address")
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code != 0
    assert "OPERATOR_EMAIL must be one email address" in result.output


def header_and_footer(html: str) -> tuple[str, str]:
    header = re.search(r"<header.*?</header>", html, re.S)
    footer = re.search(r"<footer.*?</footer>", html, re.S)
    assert header and footer
    return header.group(0), footer.group(0)


def test_the_header_and_footer_speak_as_the_operator(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path / "data", None, **OPERATOR)
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        for path in ("/appeals/protect-deserters", "/privacy", "/verify"):
            page = client.get(path)
            assert page.status_code == 200, path
            header, footer = header_and_footer(page.text)
            assert "<bdi>Appeals for objectors</bdi>" in header
            assert "<bdi>جمعية السلام</bdi>" in footer
            assert "<bdi>Hauptstraße 1</bdi>, <bdi>10115 Berlin</bdi>" in footer
            assert 'href="mailto:kontakt@friedensnetz.example"' in footer
            assert 'href="/privacy"' in footer


def test_without_an_operator_the_pages_say_so_and_invent_no_one(database_url, tmp_path):
    settings = make_settings(database_url, tmp_path / "data", None)
    with TestClient(create_app(settings), base_url=BASE_URL) as client:
        header, footer = header_and_footer(client.get("/appeals/protect-deserters").text)
        assert "<bdi>Appeal platform</bdi>" in header
        assert "Petition<" not in header  # no name that reads as a formal petition to the EP
        assert "has not published its name and contact details here yet" in footer
        assert "mailto:" not in footer
        german = client.get("/appeals/protect-deserters?lang=de").text
        assert "has not published" not in german


def test_the_demo_run_marks_its_operator_as_a_demo():
    script = (Path(__file__).parents[1] / "scripts" / "run").read_text()
    for name in NAMES:
        assert f"{name}=" in script
    assert script.count("demo") >= 5
