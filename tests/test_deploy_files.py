"""deploy/'s systemd units and example environment file: systemd accepts the units, their
commands are petition's, and the example names only settings petition reads (and loads).
tests/test_deploy_nginx.py runs the nginx site."""

from __future__ import annotations

import ipaddress
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from petition.cli import main
from petition.settings import load_settings
from tests.support import PROJECT_ROOT

DEPLOY = PROJECT_ROOT / "deploy"
INSTALLED = "/opt/petition/bin/petition"
#: Each template unit with an instance, as an operator enables it.
INSTANCES = {
    "petition-web@.service": "petition-web@8001.service",
    "petition-worker@.service": "petition-worker@1.service",
}


def _exec_start(unit: str, instance: str) -> list[str]:
    [line] = [line for line in unit.splitlines() if line.startswith("ExecStart=")]
    return shlex.split(line.removeprefix("ExecStart=").replace("%i", instance))


def test_systemd_accepts_the_units(tmp_path: Path):
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed")
    # systemd checks that ExecStart's program exists: the one this run's petition is.
    petition = Path(sys.executable).parent / "petition"
    if not petition.exists():
        pytest.skip(f"no {petition} (petition is not installed in this interpreter's environment)")
    names = []
    for source in sorted((DEPLOY / "systemd").iterdir()):
        text = source.read_text()
        assert INSTALLED in text or source.suffix == ".target", source.name
        name = INSTANCES.get(source.name, source.name)
        (tmp_path / name).write_text(text.replace(INSTALLED, str(petition)))
        names.append(str(tmp_path / name))
    assert len(names) == 3
    result = subprocess.run([analyze, "verify", *names], capture_output=True, text=True, timeout=60, check=False)
    # Unknown or misspelt options are warnings, on standard error, with status 0.
    assert (result.returncode, result.stdout + result.stderr) == (0, "")


@pytest.mark.parametrize(
    ("unit", "instance", "command"),
    [("petition-web@.service", "8001", "serve"), ("petition-worker@.service", "1", "worker")],
)
def test_the_units_run_petitions_commands_with_its_options(unit: str, instance: str, command: str):
    text = (DEPLOY / "systemd" / unit).read_text()
    program, name, *args = _exec_start(text, instance)
    assert (program, name) == (INSTALLED, command)
    # Parsed as `petition` would parse them: an unknown option or a bad port fails here.
    context = main.commands[command].make_context(command, list(args))
    if command == "serve":
        assert (context.params["host"], context.params["port"]) == ("127.0.0.1", 8001)
        assert "Environment=RUN_WORKER=false" in text  # the workers send the emails
    for line in (
        "User=petition",
        "EnvironmentFile=/etc/petition/petition.env",
        "Restart=on-failure",
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "ReadWritePaths=/var/lib/petition",
        "PrivateTmp=yes",
        "WantedBy=petition.target",
        "PartOf=petition.target",
    ):
        assert line in text.splitlines(), line


def test_the_example_environment_names_only_settings_petition_reads_and_loads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    example = (DEPLOY / "petition.env.example").read_text()
    names = re.findall(r"^#?([A-Z][A-Z0-9_]*)=", example, flags=re.MULTILINE)
    read = set(re.findall(r'\(\s*"([A-Z][A-Z0-9_]*)"', (PROJECT_ROOT / "petition" / "settings.py").read_text()))
    assert set(names) <= read, set(names) - read
    assert "RUN_WORKER" not in names  # it would override the web units' RUN_WORKER=false
    # Only the file counts here, not this run's environment.
    for name in read:
        monkeypatch.delenv(name, raising=False)
    env = tmp_path / "petition.env"
    env.write_text(example.replace("CHANGE-ME", "placeholder-of-24-chars!"))
    settings = load_settings(env_file=env)
    assert settings.database_url.startswith("postgresql://")
    assert settings.proxy_ips == (ipaddress.ip_network("127.0.0.1/32"),)
    assert (settings.log_format, settings.base_url, settings.database_pool_size) == (
        "json",
        "https://appeal.example.org",
        6,
    )
