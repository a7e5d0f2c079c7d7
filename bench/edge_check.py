"""What the revocation check at the TLS edge costs per request: `Authority.identify_client` (one indexed lookup
by serial, plus parsing the certificate) against a database holding N certificates, compared with a request
that carries no certificate.

    .venv/bin/python bench/edge_check.py [--rows 100000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import insert

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from service.datadir.build import build_authority
from service.datadir.prepare import prepare
from service.db.models import CertificateRecord
from service.settings import Settings


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=100_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        settings = Settings(_env_file=None, data_dir=Path(scratch) / "data")  # type: ignore[call-arg]
        prepare(settings)
        authority = build_authority(settings)
        now = dt.datetime.now(dt.UTC)
        rows = [
            {
                "serial": secrets.token_hex(20),
                "cn": f"host-{i}",
                "subject": f"CN=host-{i}",
                "sans": [],
                "profile": "client",
                "not_before": now,
                "not_after": now + dt.timedelta(days=90),
                "status": "revoked" if i % 20 == 0 else "valid",
                "fingerprint_sha256": "0" * 64,
                "issued_by": "bench",
                "created_at": now,
                "der": b"\x30",
            }
            for i in range(args.rows)
        ]
        with authority.db.writer() as session:
            session.connection().execute(insert(CertificateRecord), rows)
        issued = authority.issue_for_key(ec.generate_private_key(ec.SECP256R1()).public_key(), cn="edge", sans=[])
        der = issued.certificate.public_bytes(Encoding.DER)

        def per_call(fn: object, n: int = 2000) -> list[float]:
            samples = []
            for _ in range(7):
                started = time.perf_counter()
                for _ in range(n):
                    fn()  # type: ignore[operator]
                samples.append((time.perf_counter() - started) / n * 1e6)
            return samples

        check = per_call(lambda: authority.identify_client(der))
        token = (settings.data_dir / "admin.token").read_text().strip()
        bearer = per_call(lambda: authority.authenticate_token(token))
        authority.close()
    print(f"rows in certificates: {args.rows + 2:,}")
    print(f"identify_client (revocation check + parse): median {statistics.median(check):.0f} us per request")
    print(f"authenticate_token (for comparison):        median {statistics.median(bearer):.0f} us per request")


if __name__ == "__main__":
    main()
