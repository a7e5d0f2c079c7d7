"""`POCKETCA_CA_KEY_URI=pkcs11:…` without the `hsm` extra: `pocketca init` and `pocketca serve` say in one line
which extra to install and exit 2, having made nothing. Run for real: a Python whose path holds every installed
package but python-pkcs11 (a copy of site-packages made of links, without it), not a patched import."""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

import service
from tests.helpers import free_port

REPO = Path(service.__file__).resolve().parent.parent
KEY_URI = "pkcs11:token=pocketca;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-value=1234"


@pytest.fixture(scope="module")
def without_pkcs11(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of a Python that finds pocketca and its dependencies, and no python-pkcs11."""
    packages = tmp_path_factory.mktemp("site-packages-without-pkcs11")
    for entry in Path(sysconfig.get_paths()["purelib"]).iterdir():
        if entry.name == "pkcs11" or entry.name.startswith("python_pkcs11") or entry.suffix == ".pth":
            continue
        (packages / entry.name).symlink_to(entry)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POCKETCA_", "PYTHON"))}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), str(packages)])
    return env


def run(env: dict[str, str], *argv: str, **settings: str) -> subprocess.CompletedProcess[str]:
    """`python -S` (no site: only PYTHONPATH, so nothing else brings the package back) with these settings."""
    return subprocess.run(
        [sys.executable, "-S", *argv], env={**env, **settings}, capture_output=True, text=True, timeout=60
    )


def test_the_environment_really_lacks_python_pkcs11(without_pkcs11: dict[str, str]) -> None:
    assert "No module named 'pkcs11'" in run(without_pkcs11, "-c", "import pkcs11").stderr
    found = run(without_pkcs11, "-c", "import service.cli, cryptography, publicsuffixlist; print(service.__file__)")
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == str(REPO / "service" / "__init__.py")


@pytest.mark.parametrize("command", [["init"], ["init", "--key-uri", KEY_URI], ["serve"]])
def test_init_and_serve_name_the_extra_and_exit_2(
    without_pkcs11: dict[str, str], tmp_path: Path, command: list[str]
) -> None:
    data_dir = tmp_path / "data"
    settings = {
        "POCKETCA_DATA_DIR": str(data_dir),
        "POCKETCA_PORT": str(free_port()),
        "POCKETCA_HTTP_PORT": str(free_port()),
    }
    if "--key-uri" not in command:
        settings["POCKETCA_CA_KEY_URI"] = KEY_URI
    result = run(without_pkcs11, "-m", "service", *command, **settings)
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "pip install 'pocketca[hsm]'" in lines[0] and "Traceback" not in result.stderr
    assert "1234" not in result.stderr + result.stdout  # the PIN is never shown
    assert not data_dir.exists()  # nothing made: a later run with the extra starts clean
