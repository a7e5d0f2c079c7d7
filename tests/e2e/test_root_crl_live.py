"""A hierarchy relying parties check end to end: an offline root, an issuing intermediate that points at the root's
CRL, and a real `pocketca serve` publishing every CRL over plain HTTP. Three validators nobody here wrote -- OpenSSL
(`verify -crl_download -crl_check_all`, fetching each CRL distribution point), NSS (`vfychain`, CRL checking along
the chain, fail if no info) and pyhanko-certvalidator (revocation mode `require`, fetching CRLs and OCSP) -- agree on
a good leaf, a revoked leaf, and, after the compromise ceremony of docs/ca-ceremony.md (run as written), on a leaf of
an intermediate the root's CRL revokes. Their outputs are written to validators.txt in the test's directory."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from tests.conftest import LiveServer, database_url_for, start_server
from tests.helpers import free_port

CEREMONY = (Path(__file__).resolve().parents[2] / "docs" / "ca-ceremony.md").read_text()
PASSPHRASE = "correct horse battery"


def _ceremony_block() -> str:
    section = CEREMONY.split("### After a compromise", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match is not None
    return match.group(1)


def _run(args: list[str], cwd: Path | None = None, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = subprocess.run(
        args, capture_output=True, text=True, timeout=60, cwd=cwd, env=env, stdin=subprocess.DEVNULL, check=False
    )
    return result.returncode, (result.stdout + result.stderr).strip()


class Validators:
    """The three outside validators, each given the root as the only trust anchor and the intermediate as an
    untrusted certificate; every CRL (and, for pyhanko, OCSP) comes from the addresses in the certificates."""

    def __init__(self, work: Path, root: Path) -> None:
        self.work, self.root = work, root
        self.nssdb = work / "nssdb"
        self.nssdb.mkdir()
        assert _run(["certutil", "-N", "-d", f"sql:{self.nssdb}", "--empty-password"])[0] == 0
        der = work / "root.der"
        der.write_bytes(x509.load_pem_x509_certificate(root.read_bytes()).public_bytes(Encoding.DER))
        assert _run(["certutil", "-A", "-d", f"sql:{self.nssdb}", "-n", "root", "-t", "CT,C,C", "-i", str(der)])[0] == 0
        self.log: list[str] = []

    def openssl(self, leaf: Path, intermediate: Path) -> tuple[int, str]:
        args = ["openssl", "verify", "-crl_download", "-crl_check_all", "-CAfile", str(self.root),
                "-untrusted", str(intermediate), str(leaf)]  # fmt: skip
        return self._record(" ".join(args), _run(args))

    def nss(self, leaf: Path, intermediate: Path) -> tuple[int, str]:
        ders = []
        for pem in (leaf, intermediate):
            der = pem.with_suffix(".der")
            der.write_bytes(x509.load_pem_x509_certificate(pem.read_bytes()).public_bytes(Encoding.DER))
            ders.append(str(der))
        revocation = ["-m", "crl", "-s", "failIfNoInfo"]  # for the leaf, then for the rest of the chain
        args = ["vfychain", "-d", f"sql:{self.nssdb}", "-pp", "-u", "0", "-g", "leaf", *revocation, "-g", "chain",
                *revocation, *ders]  # fmt: skip
        return self._record(" ".join(args), _run(args))

    def pyhanko(self, leaf: Path, intermediate: Path) -> tuple[int, str]:
        return self._record(f"pyhanko-certvalidator (require) {leaf.name}", _pyhanko(self.root, intermediate, leaf))

    def _record(self, command: str, result: tuple[int, str]) -> tuple[int, str]:
        self.log.append(f"$ {command}\n{result[1]}\n(exit {result[0]})\n")
        return result


def _pyhanko(root: Path, intermediate: Path, leaf: Path) -> tuple[int, str]:
    from asn1crypto import x509 as asn1
    from pyhanko_certvalidator import CertificateValidator, ValidationContext
    from pyhanko_certvalidator.errors import PathValidationError
    from pyhanko_certvalidator.fetchers.requests_fetchers import RequestsFetcherBackend

    def load(path: Path) -> asn1.Certificate:
        return asn1.Certificate.load(x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(Encoding.DER))

    context = ValidationContext(
        trust_roots=[load(root)],
        other_certs=[load(intermediate)],
        allow_fetching=True,
        revocation_mode="require",
        fetcher_backend=RequestsFetcherBackend(),
    )
    validator = CertificateValidator(load(leaf), intermediate_certs=[load(intermediate)], validation_context=context)
    try:
        path = asyncio.run(validator.async_validate_usage(set(), extended_key_usage={"client_auth"}))
    except PathValidationError as exc:
        return 1, f"{type(exc).__name__}: {exc}"
    return 0, "valid: " + " -> ".join(c.subject.human_friendly for c in path)


def _env(data: Path, port: int, http_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("POCKETCA_")}
    env.update(
        {
            "POCKETCA_DATA_DIR": str(data),
            "POCKETCA_PUBLIC_URL": f"https://localhost:{port}",
            "POCKETCA_PUBLICATION_URL": f"http://127.0.0.1:{http_port}",
        }
    )
    if url := database_url_for(data):
        env["POCKETCA_DATABASE_URL"] = url
    return env


def _pocketca(env: dict[str, str], *args: str) -> str:
    code, out = _run([sys.executable, "-m", "service", *args], env=env)
    assert code == 0, f"pocketca {' '.join(args)}: {out}"
    return out


def _serve(data: Path, port: int, http_port: int) -> LiveServer:
    publication = {"POCKETCA_HTTP_PORT": str(http_port), "POCKETCA_PUBLICATION_URL": f"http://127.0.0.1:{http_port}"}
    return start_server(data, port=port, extra_env=publication)


def test_validators_agree_on_good_revoked_and_revoked_intermediate_leaves(tmp_path: Path) -> None:
    for tool in ("openssl", "vfychain", "certutil", "curl"):
        if shutil.which(tool) is None:
            pytest.fail(f"{tool} is missing: apt-get install openssl libnss3-tools curl (.ci/run does)")
    data, port, http_port = tmp_path / "data", free_port(), free_port()
    env = _env(data, port, http_port)
    offline = tmp_path / "offline-usb"
    offline.mkdir()
    (offline / "root-passphrase").write_text(PASSPHRASE + "\n")
    root_file = offline / "pocketca-root.pem"
    _pocketca(env, "init", "--intermediate", "--root-out", str(root_file),
              "--root-passphrase-file", str(offline / "root-passphrase"))  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    root = work / "root-ca.pem"
    root.write_bytes(x509.load_pem_x509_certificate(root_file.read_bytes()).public_bytes(Encoding.PEM))
    first_ca = work / "old-ca.pem"
    first_ca.write_bytes((data / "ca.pem").read_bytes())
    check = Validators(work, root)

    server = _serve(data, port, http_port)
    try:
        for name in ("good", "revoked"):
            _pocketca(env, "issue", "--cn", f"{name}.example.com", "--out-dir", str(work / name))
        revoked = x509.load_pem_x509_certificate((work / "revoked" / "cert.pem").read_bytes())
        _pocketca(env, "revoke", "--server", server.url, "--ca-file", str(root), "--token", server.admin_token,
                  format(revoked.serial_number, "x"), "--reason", "keyCompromise")  # fmt: skip
        time.sleep(1.0)  # the CRL is rebuilt within a second of a revocation
        good, bad = work / "good" / "cert.pem", work / "revoked" / "cert.pem"

        code, out = check.openssl(good, first_ca)
        assert code == 0 and out.endswith(": OK"), out
        code, out = check.openssl(bad, first_ca)
        assert code != 0 and "error 23 at 0 depth lookup: certificate revoked" in out, out
        code, out = check.nss(good, first_ca)
        assert code == 0 and "Chain is good!" in out, out
        code, out = check.nss(bad, first_ca)
        assert code != 0 and "ERROR -8180: Peer's Certificate has been revoked." in out, out
        code, out = check.pyhanko(good, first_ca)
        assert code == 0 and out.startswith("valid:"), out
        code, out = check.pyhanko(bad, first_ca)
        assert code != 0 and "RevokedError" in out, out

        # the ceremony of docs/ca-ceremony.md, as written: rotate, restart, revoke the old CA in the root's CRL
        script = (
            _ceremony_block()
            .replace("/media/offline-usb/", f"{offline}/")
            .replace("http://ca.internal:8080", server.http_url)
        )
        before, after = script.split("systemctl restart pocketca\n")
        shutil.copy(good, work / "old-leaf.pem")
        code, out = _run(["bash", "-euo", "pipefail", "-c", before], cwd=work, env={**env, "PATH": _path()})
        assert code == 0 and "issuing CA now CN=pocketca issuing CA 2" in out, out
    finally:
        assert server.stop() == 0

    server = _serve(data, port, http_port)  # the ceremony's restart
    try:
        code, out = _run(["bash", "-euo", "pipefail", "-c", after], cwd=work, env={**env, "PATH": _path()})
        check.log.append(f"$ (the ceremony, steps 2 to 4)\n{out}\n(exit {code})\n")
        assert code != 0, out  # its last command: the old CA's leaf does not verify any more
        assert "verify OK" in out and "Key Compromise" in out
        assert "error 23 at 1 depth lookup: certificate revoked" in out

        _pocketca(env, "issue", "--cn", "new.example.com", "--out-dir", str(work / "new"))
        new_leaf, new_ca = work / "new" / "cert.pem", work / "new-ca.pem"
        new_ca.write_bytes((data / "ca.pem").read_bytes())
        code, out = check.openssl(good, first_ca)  # a leaf nobody revoked, of the intermediate the root revoked
        assert code != 0 and "error 23 at 1 depth lookup: certificate revoked" in out, out
        code, out = check.nss(good, first_ca)
        assert code != 0 and "ERROR -8180: Peer's Certificate has been revoked." in out, out
        code, out = check.pyhanko(good, first_ca)
        assert code != 0 and "RevokedError" in out, out
        code, out = check.openssl(new_leaf, new_ca)  # the new intermediate's leaves are fine
        assert code == 0 and out.endswith(": OK"), out
        code, out = check.nss(new_leaf, new_ca)
        assert code == 0 and "Chain is good!" in out, out
        code, out = check.pyhanko(new_leaf, new_ca)
        assert code == 0 and out.startswith("valid:"), out
    finally:
        assert server.stop() == 0
        (tmp_path / "validators.txt").write_text("\n".join(check.log))


def _path() -> str:
    """`pocketca` on PATH for the ceremony's commands: this interpreter's."""
    bin_dir = Path(sys.executable).parent
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
