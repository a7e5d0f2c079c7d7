"""No Docker engine runs here, so check what can be checked: the Dockerfile's promises, its install step
against the README's, and its HEALTHCHECK command run for real against a server configured as the image is."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import start_server
from tests.helpers import free_port

ROOT = Path(__file__).resolve().parents[1]
DOCKERFILE = (ROOT / "Dockerfile").read_text()


def _instructions(name: str) -> list[str]:
    joined = DOCKERFILE.replace("\\\n", " ")
    return [line.split(None, 1)[1] for line in joined.splitlines() if line.startswith(name + " ")]


def test_runs_pocketca_serve_as_non_root_with_data_volume() -> None:
    assert _instructions("USER") == ["pocketca"]
    assert _instructions("ENTRYPOINT") == ['["pocketca"]'] and _instructions("CMD") == ['["serve"]']
    assert _instructions("VOLUME") == ['["/data"]'] and _instructions("EXPOSE") == ["8443 8080"]
    env = " ".join(_instructions("ENV"))
    for setting in (
        "POCKETCA_DATA_DIR=/data",
        "POCKETCA_HOST=0.0.0.0",
        "POCKETCA_PORT=8443",
        "POCKETCA_HTTP_PORT=8080",
    ):
        assert setting in env
    assert _instructions("FROM")[0].startswith("python:3.11")


def test_install_step_matches_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    install = [r for r in _instructions("RUN") if "pip install" in r]
    assert install == ['pip install ".[postgres]"']
    assert "pip install ." in readme
    # everything the package needs at run time is copied in before the install
    copied = " ".join(_instructions("COPY"))
    for part in ("pyproject.toml", "README.md", "service", "migrations"):
        assert part in copied


@pytest.mark.e2e  # starts a real `pocketca serve`
def test_healthcheck_command_passes_against_a_server_configured_like_the_image(tmp_path: Path) -> None:
    healthcheck = _instructions("HEALTHCHECK")[0]
    argv = json.loads(healthcheck[healthcheck.index("CMD") + 3 :].strip())
    assert argv[0] == "python"
    port = free_port()
    data = tmp_path / "data"
    code = argv[2].replace("/data/", f"{data}/").replace(":8443/", f":{port}/")
    server = start_server(data, port=port, extra_env={"POCKETCA_HOST": "0.0.0.0"})
    try:
        assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode == 0
    finally:
        server.stop()
    # and it fails when nothing answers: the check can fail
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=30).returncode != 0


def test_quick_start_has_exactly_two_commands() -> None:
    readme = (ROOT / "README.md").read_text()
    section = re.search(r"## Quick start\n(.*?)\n## ", readme, re.S)
    assert section is not None
    commands = re.findall(r"```(?:sh|bash|console)?\n(.*?)```", section.group(1), re.S)
    lines = [line for block in commands for line in block.strip().splitlines()]
    assert len(lines) == 2
    assert ".venv/bin/pocketca serve" in lines[0] and "pip install ." in lines[0]
    assert lines[1] == "./scripts/test"
    assert "./scripts/test" in (ROOT / ".ci" / "run").read_text()
