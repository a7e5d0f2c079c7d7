"""The README's walkthrough, run as written against a real server (only its paths and port swapped)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.conftest import LiveServer

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def _block(heading: str, language: str) -> str:
    section = README.split(heading, 1)[1]
    match = re.search(rf"```{language}\n(.*?)```", section, re.S)
    assert match is not None, f"no {language} block under {heading}"
    return match.group(1)


def _localise(text: str, server: LiveServer) -> str:
    return text.replace("pocketca-data/", f"{server.data_dir}/").replace("https://localhost:8443", server.url)


def _bash(script: str, cwd: Path) -> str:
    result = subprocess.run(["bash", "-c", script], cwd=cwd, capture_output=True, text=True, timeout=60)
    return result.stdout + result.stderr


def test_walkthrough_with_openssl_curl_and_httpx(live_server: LiveServer, tmp_path: Path) -> None:
    first = _localise(_block("## The client-certificate story", "sh"), live_server)
    setup = first.split("# 1.", 1)[0]
    python = _localise(_block("## The same from Python, with httpx", "python"), live_server)
    rest = _localise(_block("## Revoking it", "sh"), live_server)
    # in the order a reader runs them: the httpx example comes while alice's certificate is still valid
    assert README.index("## The same from Python") < README.index("## Revoking it")
    assert "# 4." in rest and "# 4." not in first

    out = _bash(first, tmp_path)
    assert (tmp_path / "alice.pem").exists(), out
    assert '"cn":"alice"' in out  # /whoami with the certificate
    assert '"status":401' in out  # /whoami without one

    result = subprocess.run([sys.executable, "-c", python], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "alice"

    out = _bash(setup + rest, tmp_path)
    assert '"status":"revoked"' in out and '"revocation_reason":"keyCompromise"' in out
    assert '"status":403' in out
    assert "verify OK" in out and "Key Compromise" in out
    assert "certificate revoked" in out


def test_profiles_example_is_valid() -> None:
    import tomllib

    from service.ca.profiles import parse_profiles

    profiles = parse_profiles(tomllib.loads(_block("### Profiles: `<data dir>/profiles.toml`", "toml")))
    assert profiles["client"].max_validity_days == 30 and profiles["client"].default_validity_days == 30
    assert profiles["build-runner"].min_rsa_bits == 3072


def test_documented_command_lines_parse() -> None:
    import shlex

    from service.cli import build_parser

    unit = _block("### A host renews from a systemd timer", "ini")
    exec_start = unit.split("ExecStart=", 1)[1].split("\n\n", 1)[0].replace("\\\n", " ")
    args = build_parser().parse_args(shlex.split(exec_start)[1:])
    assert args.command == "renew" and args.exec_command == "systemctl reload nginx"
    daemon = README.split("# /etc/systemd/system/pocketca-renew.service (the daemon form)", 1)[1]
    exec_start = daemon.split("ExecStart=", 1)[1].split("\nRestart=", 1)[0].replace("\\\n", " ")
    args = build_parser().parse_args(shlex.split(exec_start)[1:])
    assert args.command == "renew" and args.daemon and args.exec_command == "systemctl reload nginx"
    pipeline = _block("### A pipeline gets a certificate with one line", "sh")
    assert build_parser().parse_args(shlex.split(pipeline.split("#", 1)[0])[1:]).cn == "build-42"
    enroll = README.split("The pipeline step", 1)[1]
    enroll_line = re.search(r"```sh\n(.*?)```", enroll, re.S).group(1).replace("\\\n", " ")  # type: ignore[union-attr]
    assert build_parser().parse_args(shlex.split(enroll_line)[1:]).san == ["build-42.ci.internal"]
