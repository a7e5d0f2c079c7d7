"""The TLS the service offers, checked with `openssl s_client`: 1.2 and 1.3 only, strong suites only."""

from __future__ import annotations

import subprocess

import pytest

from tests.conftest import LiveServer


def _s_client(server: LiveServer, *options: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "openssl",
            "s_client",
            "-connect",
            f"127.0.0.1:{server.port}",
            "-servername",
            "localhost",
            "-CAfile",
            str(server.ca_file),
            *options,
        ],
        input="",
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.mark.parametrize("version", ["-tls1_2", "-tls1_3"])
def test_modern_versions_connect_and_verify(live_server: LiveServer, version: str) -> None:
    result = _s_client(live_server, version, "-verify_return_error")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Verify return code: 0 (ok)" in result.stdout


@pytest.mark.parametrize("version", ["-tls1", "-tls1_1"])
def test_old_versions_are_refused(live_server: LiveServer, version: str) -> None:
    result = _s_client(live_server, version, "-cipher", "DEFAULT:@SECLEVEL=0")
    assert result.returncode != 0
    assert "no peer certificate available" in result.stdout  # the handshake never got as far as a certificate


@pytest.mark.parametrize(
    "ciphers",
    ["AES128-SHA:AES256-SHA", "DES-CBC3-SHA", "ECDHE-ECDSA-AES128-SHA", "aNULL:eNULL", "ECDHE-ECDSA-AES128-SHA256"],
)
def test_weak_or_non_aead_tls12_suites_are_refused(live_server: LiveServer, ciphers: str) -> None:
    result = _s_client(live_server, "-tls1_2", "-cipher", f"{ciphers}:@SECLEVEL=0")
    assert result.returncode != 0


def test_a_strong_tls12_suite_is_accepted(live_server: LiveServer) -> None:
    result = _s_client(live_server, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384")
    assert result.returncode == 0
    assert "ECDHE-ECDSA-AES256-GCM-SHA384" in result.stdout
