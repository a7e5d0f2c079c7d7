"""What bench/crl.py compares with: `openssl ca -gencrl` over the same entries, and revoke-to-served on a live
`pocketca serve`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from bench.crl_seed import OPENSSL_SKIP_S, POLL_S, ROOT, log, now_utc, seed
from service.ca.issue import issuer_id
from service.db.session import Database

# --- openssl ca -gencrl --------------------------------------------------------------------------------------------

OPENSSL_CNF = """\
[ ca ]
default_ca = CA_default

[ CA_default ]
dir = {dir}
database = $dir/index.txt
certificate = $dir/ca.pem
private_key = $dir/ca.key
crlnumber = $dir/crlnumber
default_md = sha256
default_crl_days = 7
unique_subject = no
crl_extensions = crl_ext

[ crl_ext ]
authorityKeyIdentifier = keyid:always
"""


def openssl_gencrl(workdir: Path, expected: int, runs: int) -> tuple[list[float], str | None]:
    """Times `openssl ca -gencrl` on workdir's index.txt; stops early (with a note) when a run exceeds 60 s."""
    cnf = workdir / "openssl.cnf"
    cnf.write_text(OPENSSL_CNF.format(dir=workdir))
    (workdir / "crlnumber").write_text("01\n")
    samples: list[float] = []
    for _ in range(runs):
        command = ["openssl", "ca", "-gencrl", "-config", str(cnf), "-out", str(workdir / "crl.pem")]
        started = time.perf_counter()
        try:
            subprocess.run(command, check=True, capture_output=True, cwd=workdir, timeout=OPENSSL_SKIP_S)
        except subprocess.TimeoutExpired:
            return samples, f"> {OPENSSL_SKIP_S:.0f} s, skipped"
        samples.append(time.perf_counter() - started)
        if samples[-1] > OPENSSL_SKIP_S:
            return samples, f"{samples[-1]:.1f} s (> {OPENSSL_SKIP_S:.0f} s: one run only)"
    crl = x509.load_pem_x509_crl((workdir / "crl.pem").read_bytes())
    assert len(crl) == expected, (len(crl), expected)
    return samples, None


# --- revoke-to-served on a live server -----------------------------------------------------------------------------


@dataclass
class Served:
    seconds: float
    revoke_request_s: float
    polls: int
    crl_number: str


def live_server_latency(count: int, samples: int, seed_value: int) -> tuple[list[Served], list[str], float]:
    """(per revocation, the server's 'built CRL' log lines, seconds until the restarted server listed `count`)."""
    os.environ.pop("POCKETCA_TEST_DATABASE_URL", None)  # this measures the SQLite the data dir holds
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))  # `tests` is not installed; run as `python bench/crl.py` it is not on the path
    from tests.conftest import start_server
    from tests.helpers import csr_pem, p256

    tmp = Path(tempfile.mkdtemp(prefix="pocketca-bench-crl-serve-"))
    data_dir = tmp / "data"
    server = None
    built: list[str] = []
    try:
        log("serve: first start (makes the CA and schema), then stop")
        start_server(data_dir).stop()
        log(f"serve: seeding {count:,} revoked rows into {data_dir / 'pocketca.db'}")
        db = Database(f"sqlite:///{data_dir / 'pocketca.db'}")
        issuer = issuer_id(x509.load_pem_x509_certificate((data_dir / "ca.pem").read_bytes()))
        seed(db, count, now_utc(), seed_value, issuer=issuer)  # the CA's rows: its CRL lists only those
        db.dispose()
        started = time.perf_counter()
        server = start_server(data_dir, timeout=180)
        headers = {"Authorization": f"Bearer {server.admin_token}"}
        with server.client() as http:
            while True:  # prepare() built it before serving; the first GET should already list them all
                listed = len(x509.load_der_x509_crl(http.get("/crl").raise_for_status().content))
                if listed >= count:
                    break
                time.sleep(POLL_S)
            ready_s = time.perf_counter() - started
            serials = []
            for i in range(samples):
                body = {"csr": csr_pem(p256(), f"revoke-{i}.bench.example").decode(), "profile": "client"}
                issued = http.post("/csr", json=body, headers=headers).raise_for_status().json()
                serials.append(issued["serial"])
            results = []
            for serial in serials:
                etag = http.get("/crl").headers["etag"]
                started = time.perf_counter()
                http.post(f"/certs/{serial}/revoke", json={"reason": "keyCompromise"}, headers=headers)
                revoke_request_s = time.perf_counter() - started
                polls = 0
                while True:
                    polls += 1
                    response = http.get("/crl", headers={"If-None-Match": etag})
                    if response.status_code == 200:
                        etag = response.headers["etag"]
                        crl = x509.load_der_x509_crl(response.content)
                        if crl.get_revoked_certificate_by_serial_number(int(serial, 16)) is not None:
                            break
                    if time.perf_counter() - started > 60:
                        raise RuntimeError(f"{serial} not in the served CRL after 60 s")
                    time.sleep(POLL_S)
                results.append(Served(time.perf_counter() - started, revoke_request_s, polls, etag))
                log(f"serve: {serial} served after {results[-1].seconds * 1000:.0f} ms ({polls} polls)")
    finally:
        if server is not None:
            server.stop()
            built = [line for line in server.log().splitlines() if "built CRL" in line]
        shutil.rmtree(tmp, ignore_errors=True)
    return results, built, ready_s
