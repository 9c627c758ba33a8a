"""Settings from the environment: a generated secret for the embedded default; clear errors."""

from __future__ import annotations

import asyncio
import stat
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from petition.cli import main
from petition.settings import SettingsError, load_settings
from tests.conftest import _admin, _backend, _with_database
from tests.support import db_rows

CONTRACT = (
    "DATABASE_URL",
    "SECRET_KEY",
    "BASE_URL",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USERNAME",
    "SMTP_PASSWORD",
    "SMTP_TLS",
    "MAIL_FROM",
    "DATA_DIR",
    "SIGNING_P12",
    "SIGNING_P12_PASSWORD",
    "TRUSTED_IPS",
)
PG = "postgresql://petition@127.0.0.1:5432/petition"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in CONTRACT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


def test_a_missing_secret_is_generated_once_into_the_data_directory(tmp_path: Path):
    data = tmp_path / "data"
    first = load_settings(env_file=None, data_dir=str(data))
    assert first.database_url == f"sqlite:///{data / 'petition.db'}"
    secret_file = data / "secret_key"
    assert secret_file.read_text().strip() == str(first.secret_key)
    assert len(str(first.secret_key)) >= 32
    assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
    again = load_settings(env_file=None, data_dir=str(data))
    assert str(again.secret_key) == str(first.secret_key)
    elsewhere = load_settings(env_file=None, data_dir=str(tmp_path / "other"))
    assert str(elsewhere.secret_key) != str(first.secret_key)


def test_processes_starting_together_share_one_generated_secret(tmp_path: Path):
    from concurrent.futures import ThreadPoolExecutor

    data = tmp_path / "data"
    with ThreadPoolExecutor(8) as pool:
        secrets = set(
            pool.map(
                lambda _: str(load_settings(env_file=None, data_dir=str(data)).secret_key),
                range(16),
            )
        )
    assert len(secrets) == 1
    assert sorted(p.name for p in data.iterdir()) == ["secret_key"]


def test_a_set_secret_wins_and_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SECRET_KEY", "s" * 40)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    settings = load_settings(env_file=None)
    assert str(settings.secret_key) == "s" * 40
    assert not (tmp_path / "data" / "secret_key").exists()


def test_settings_come_from_a_dot_env_file(tmp_path: Path):
    (tmp_path / ".env").write_text(
        f"SECRET_KEY={'e' * 32}\nSMTP_HOST=mail.example.org\nSMTP_TLS=starttls\n"
        f"DATA_DIR={tmp_path / 'd'}\nTRUSTED_IPS=10.0.0.0/8, 2001:db8::1\n"
    )
    settings = load_settings()
    assert str(settings.secret_key) == "e" * 32
    assert (settings.smtp_host, settings.smtp_port, settings.smtp_tls) == (
        "mail.example.org",
        587,
        "starttls",
    )
    assert [str(n) for n in settings.trusted_ips] == ["10.0.0.0/8", "2001:db8::1/128"]


def test_a_missing_secret_with_postgresql_is_a_clear_error(tmp_path: Path):
    with pytest.raises(SettingsError, match="SECRET_KEY is not set"):
        load_settings(env_file=None, database_url=PG, data_dir=str(tmp_path / "data"))
    assert not (tmp_path / "data" / "secret_key").exists()
    with pytest.raises(SettingsError, match="SECRET_KEY"):
        load_settings(env_file=None, database_url="postgres://u@h/db", data_dir=str(tmp_path))


def test_postgresql_needs_a_signing_certificate_named_or_self_signed_by_choice(tmp_path: Path):
    values = dict(database_url=PG, data_dir=str(tmp_path / "data"), secret_key="k" * 40)
    with pytest.raises(SettingsError, match="SIGNING_P12 is not set.*`self-signed`"):
        load_settings(env_file=None, **values)
    assert load_settings(env_file=None, signing_p12="self-signed", **values).signing_p12 is None
    p12 = tmp_path / "organisers.p12"
    assert load_settings(env_file=None, signing_p12=str(p12), **values).signing_p12 == p12
    # The embedded default goes on generating its own, as it always did.
    assert load_settings(env_file=None, data_dir=str(tmp_path / "data")).signing_p12 is None


def test_a_short_secret_is_refused(tmp_path: Path):
    with pytest.raises(SettingsError, match="at least 16"):
        load_settings(env_file=None, secret_key="short", data_dir=str(tmp_path))


@pytest.mark.parametrize("value", ["ssl", "yes", "STARTTLS "])
def test_a_bad_smtp_tls_is_a_clear_error(tmp_path: Path, value: str):
    if value.strip().lower() == "starttls":
        # Case and surrounding spaces from a .env file are forgiven.
        assert load_settings(env_file=None, data_dir=str(tmp_path), smtp_tls=value).smtp_tls == "starttls"
        return
    with pytest.raises(SettingsError, match="SMTP_TLS must be one of none, starttls, tls"):
        load_settings(env_file=None, data_dir=str(tmp_path), smtp_tls=value)


def test_log_format_and_metrics_token(tmp_path: Path):
    default = load_settings(env_file=None, data_dir=str(tmp_path))
    assert default.log_format == "text" and default.metrics_token is None
    chosen = load_settings(env_file=None, data_dir=str(tmp_path), log_format=" JSON", metrics_token="t" * 32)
    assert chosen.log_format == "json" and str(chosen.metrics_token) == "t" * 32
    assert "t" * 32 not in repr(chosen)  # a Secret: not in tracebacks
    with pytest.raises(SettingsError, match="LOG_FORMAT must be text or json"):
        load_settings(env_file=None, data_dir=str(tmp_path), log_format="xml")
    with pytest.raises(SettingsError, match="METRICS_TOKEN must be at least 16"):
        load_settings(env_file=None, data_dir=str(tmp_path), metrics_token="short")


@pytest.mark.parametrize("value", ["10.0.0.0/8,nonsense", "300.1.1.1", "10.0.0.0/40", "localhost"])
def test_bad_trusted_ips_are_a_clear_error(tmp_path: Path, value: str):
    with pytest.raises(SettingsError, match="TRUSTED_IPS"):
        load_settings(env_file=None, data_dir=str(tmp_path), trusted_ips=value)


def test_a_bad_port_or_database_url_is_a_clear_error(tmp_path: Path):
    with pytest.raises(SettingsError, match="SMTP_PORT"):
        load_settings(env_file=None, data_dir=str(tmp_path), smtp_port="twenty-five")
    with pytest.raises(SettingsError, match="DATABASE_URL"):
        load_settings(env_file=None, data_dir=str(tmp_path), database_url="mysql://x")


def test_cli_reports_a_settings_error_without_a_traceback(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("DATABASE_URL", PG)
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 1
    assert "SECRET_KEY is not set" in result.output
    assert "Traceback" not in result.output


def test_cli_db_upgrade_creates_the_tables_on_the_embedded_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    data = tmp_path / "fresh-data"
    monkeypatch.setenv("DATA_DIR", str(data))
    result = CliRunner().invoke(main, ["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert "up to date" in result.output
    url = f"sqlite:///{data / 'petition.db'}"
    names = {r["name"] for r in db_rows(url, "SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"appeals", "endorsements", "outbox", "alembic_version"} <= names
    assert (data / "secret_key").exists()
    assert CliRunner().invoke(main, ["db", "upgrade"]).exit_code == 0


def test_cli_db_upgrade_on_postgresql(monkeypatch: pytest.MonkeyPatch):
    server = _backend()
    if not server.startswith("postgresql://"):
        pytest.skip("no PostgreSQL server here: this runs in the PostgreSQL pass of scripts/test")
    name = f"petition_cli_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        url = _with_database(server, name)
        monkeypatch.setenv("DATABASE_URL", url)
        monkeypatch.setenv("SECRET_KEY", "k" * 40)
        monkeypatch.setenv("SIGNING_P12", "self-signed")
        result = CliRunner().invoke(main, ["db", "upgrade"])
        assert result.exit_code == 0, result.output
        rows = db_rows(url, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")
        assert {"appeals", "endorsements", "outbox"} <= {r["table_name"] for r in rows}
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_dns_nameservers_and_the_domain_proof_settings(tmp_path: Path):
    default = load_settings(env_file=None, data_dir=str(tmp_path))
    assert default.dns_nameservers == () and default.domain_proof_allow_loopback is False
    assert default.domain_proof_max_age == 14 * 86400 and default.domain_proof_recheck_interval == 86400
    chosen = load_settings(
        env_file=None,
        data_dir=str(tmp_path),
        dns_nameservers=" 192.0.2.53, 192.0.2.54:5353,[2001:db8::53]:5353, 2001:db8::1 ",
    )
    assert chosen.dns_nameservers == (
        ("192.0.2.53", 53),
        ("192.0.2.54", 5353),
        ("2001:db8::53", 5353),
        ("2001:db8::1", 53),
    )
    for bad in ("resolver.example", "192.0.2.53:dns", "192.0.2.53:70000", "[2001:db8::53]x"):
        with pytest.raises(SettingsError, match="DNS_NAMESERVERS"):
            load_settings(env_file=None, data_dir=str(tmp_path), dns_nameservers=bad)
