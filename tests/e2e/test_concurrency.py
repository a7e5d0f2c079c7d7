"""Concurrency: hundreds of parallel issuances, renewals over mTLS and revocations against a real
`pocketca serve` with two workers, then races where many requests want the same thing at the same instant.

Checked on both sides: every answer the clients got, and the database afterwards. No duplicate serials, no
lost certificate or revocation count, every renewal and revocation answered as it should be, no 5xx and no
"database is locked", and each token within its use count.
"""

from __future__ import annotations

import functools
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.conftest import LiveServer, query, start_server
from tests.helpers import csr_pem, key_pem, p256

THREADS = 16
HOLDERS = 140  # certificates issued up front: 80 renew, 60 are revoked
RENEWERS = 80
ISSUES = 100
DOUBLE_REVOKED = 30  # of the 60 revoked, these are revoked twice (both with the admin token) in the mix
# the per-token issuance limit is not under test here: the admin token issues a few hundred in seconds
SERVER_ENV = {"POCKETCA_ISSUE_RATE_PER_MINUTE": "0"}


@dataclass(frozen=True)
class Holder:
    cn: str
    serial: str
    cert: Path
    key: Path


@dataclass(frozen=True)
class Outcome:
    op: str
    status: int
    text: str
    subject: str = ""  # the serial or holder the operation was about

    @property
    def serial(self) -> str:
        return str(json.loads(self.text)["serial"])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(tmp_path_factory.mktemp("concurrency") / "data", workers=2, extra_env=SERVER_ENV)
    try:
        yield live
    finally:
        live.stop()


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _number(server: LiveServer, sql: str) -> int:
    value = query(server.data_dir, sql)[0][0]
    assert isinstance(value, int), value
    return value


def _run_all(jobs: list[Callable[[], Outcome]]) -> list[Outcome]:
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        return list(pool.map(lambda job: job(), jobs, timeout=180))


def _race(
    count: int,
    server: LiveServer,
    attempt: Callable[[int, httpx.Client], Outcome],
    cert: Path | None = None,
    key: Path | None = None,
) -> list[Outcome]:
    """`count` threads, each connected first, all sending at the same instant (a barrier)."""
    barrier = threading.Barrier(count)
    outcomes: list[Outcome] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def run(index: int) -> None:
        try:
            with server.client(cert, key) as http:
                http.get("/healthz")  # the TLS handshake happens before the barrier
                barrier.wait(timeout=60)
                outcome = attempt(index, http)
            with lock:
                outcomes.append(outcome)
        except BaseException as exc:
            with lock:
                errors.append(exc)
            barrier.abort()

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert not any(thread.is_alive() for thread in threads), "a racing thread hung"
    assert not errors, errors[:3]
    return outcomes


# --- the operations ---------------------------------------------------------------------------------------


def _issue(server: LiveServer, cn: str, op: str = "issue") -> Outcome:
    with server.client(headers=_bearer(server.admin_token)) as http:
        response = http.post("/csr", json={"csr": csr_pem(p256(), cn).decode()})
    return Outcome(op, response.status_code, response.text, cn)


def _make_holder(server: LiveServer, directory: Path, cn: str) -> Holder:
    key = p256()
    with server.client(headers=_bearer(server.admin_token)) as http:
        response = http.post("/csr", json={"csr": csr_pem(key, cn).decode()})
    assert response.status_code == 201, response.text
    cert_path, key_path = directory / f"{cn}.pem", directory / f"{cn}.key"
    cert_path.write_text(response.json()["certificate"])
    key_path.write_bytes(key_pem(key))
    key_path.chmod(0o600)
    return Holder(cn, response.json()["serial"], cert_path, key_path)


def _renew(server: LiveServer, holder: Holder) -> Outcome:
    key = p256()
    with server.client(holder.cert, holder.key) as http:  # no token: the client certificate is the credential
        response = http.post("/csr", json={"csr": csr_pem(key, holder.cn).decode()})
    if response.status_code == 201:
        renewed = x509.load_pem_x509_certificate(response.json()["certificate"].encode())
        assert renewed.public_key() == key.public_key()
        assert response.json()["cn"] == holder.cn
    return Outcome("renew", response.status_code, response.text, holder.serial)


def _revoke_as_admin(server: LiveServer, serial: str, op: str = "revoke") -> Outcome:
    with server.client(headers=_bearer(server.admin_token)) as http:
        response = http.post(f"/certs/{serial}/revoke", json={"reason": "superseded"})
    return Outcome(op, response.status_code, response.text, serial)


def _revoke_as_holder(server: LiveServer, holder: Holder) -> Outcome:
    with server.client(holder.cert, holder.key) as http:
        response = http.post(f"/certs/{holder.serial}/revoke", json={"reason": "keyCompromise"})
    return Outcome("revoke", response.status_code, response.text, holder.serial)


def _no_trouble(outcomes: list[Outcome], log: str) -> None:
    server_errors = [o for o in outcomes if o.status >= 500]
    assert not server_errors, server_errors[:3]
    locked = [o for o in outcomes if "locked" in o.text.lower()]
    assert not locked, locked[:3]
    assert "database is locked" not in log.lower()
    assert "Traceback" not in log


# --- the tests ---------------------------------------------------------------------------------------------


def test_hundreds_of_parallel_issuances_renewals_and_revocations(server: LiveServer, tmp_path: Path) -> None:
    began = time.monotonic()
    rows_before = _number(server, "SELECT count(*) FROM certificates")
    revocations_before = _number(server, "SELECT value FROM counters WHERE name = 'revocations'")

    holders_dir = tmp_path / "holders"
    holders_dir.mkdir()
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        holders = list(
            pool.map(lambda i: _make_holder(server, holders_dir, f"holder-{i}.conc"), range(HOLDERS), timeout=180)
        )
    setup_seconds = time.monotonic() - began

    renewers, doomed = holders[:RENEWERS], holders[RENEWERS:]
    by_admin, by_holder = doomed[: len(doomed) // 2], doomed[len(doomed) // 2 :]
    jobs: list[Callable[[], Outcome]] = []
    jobs += [functools.partial(_issue, server, f"burst-{i}.conc") for i in range(ISSUES)]
    jobs += [functools.partial(_renew, server, h) for h in renewers]
    jobs += [functools.partial(_revoke_as_admin, server, h.serial) for h in by_admin]
    jobs += [functools.partial(_revoke_as_holder, server, h) for h in by_holder]
    jobs += [functools.partial(_revoke_as_admin, server, h.serial) for h in by_admin[:DOUBLE_REVOKED]]
    random.shuffle(jobs)
    mixed_began = time.monotonic()
    outcomes = _run_all(jobs)
    mixed_seconds = time.monotonic() - mixed_began
    # a second revocation of every revoked certificate, all at once: 409 each time
    again = _run_all([functools.partial(_revoke_as_admin, server, h.serial, "revoke-again") for h in doomed])
    log = server.log()

    issued = [o.serial for o in outcomes if o.op in ("issue", "renew") and o.status == 201]
    all_serials = [h.serial for h in holders] + issued
    revokes = [o for o in outcomes if o.op == "revoke"]
    revoke_200 = [o.subject for o in revokes if o.status == 200]
    rows = query(server.data_dir, "SELECT serial, status FROM certificates")
    stored = {str(serial): status for serial, status in rows}
    revocations_after = _number(server, "SELECT value FROM counters WHERE name = 'revocations'")
    print(
        f"\nconcurrency: {HOLDERS} issued up front in {setup_seconds:.1f} s; mixed {len(jobs)} operations "
        f"({ISSUES} issues, {len(renewers)} renewals, {len(revokes)} revocations) from {THREADS} threads in "
        f"{mixed_seconds:.1f} s; {len(again)} repeated revocations; statuses "
        f"{sorted({(o.op, o.status) for o in outcomes + again})}"
    )

    _no_trouble(outcomes + again, log)
    assert [o for o in outcomes if o.op == "issue" and o.status != 201] == []
    assert [o for o in outcomes if o.op == "renew" and o.status != 201] == []
    assert len(all_serials) == len(set(all_serials)), "a serial was handed out twice"
    # every revocation target: exactly one 200; the doubled ones 409 the second time
    assert sorted(revoke_200) == sorted(h.serial for h in doomed)
    assert sorted(o.status for o in revokes) == [200] * len(doomed) + [409] * DOUBLE_REVOKED
    assert [o.status for o in again] == [409] * len(doomed), [o for o in again if o.status != 409][:3]
    # the database: every certificate once, every revocation kept, no count lost
    assert len(rows) == len(stored) == rows_before + len(all_serials)
    assert set(all_serials) <= set(stored)
    assert all(stored[h.serial] == "revoked" for h in doomed)
    assert all(stored[h.serial] == "valid" for h in renewers)
    assert revocations_after - revocations_before == len(doomed)


def test_one_use_token_raced_by_20_threads_issues_exactly_once(server: LiveServer) -> None:
    with server.client(headers=_bearer(server.admin_token)) as http:
        made = http.post("/tokens", json={"cn": "race-once.conc", "sans": ["race-once.internal"]})
    assert made.status_code == 201, made.text
    token, token_id = made.json()["token"], made.json()["id"]
    csrs = [csr_pem(p256(), "race-once.conc", ["race-once.internal"]).decode() for _ in range(20)]

    def attempt(index: int, http: httpx.Client) -> Outcome:
        response = http.post("/csr", json={"csr": csrs[index]}, headers=_bearer(token))
        return Outcome("enroll", response.status_code, response.text)

    outcomes = _race(20, server, attempt)
    print(f"\none-use token: {sorted(o.status for o in outcomes)}")
    _no_trouble(outcomes, server.log())
    assert sorted(o.status for o in outcomes) == [201] + [401] * 19
    assert query(server.data_dir, f"SELECT count(*) FROM certificates WHERE issued_by = 'token:{token_id}'") == [(1,)]
    assert query(server.data_dir, f"SELECT uses_left FROM tokens WHERE id = '{token_id}'") == [(0,)]


def test_five_use_token_raced_by_20_threads_issues_exactly_five(server: LiveServer) -> None:
    with server.client(headers=_bearer(server.admin_token)) as http:
        made = http.post("/tokens", json={"cn": "race-five.conc", "sans": ["race-five.internal"], "uses": 5})
    assert made.status_code == 201, made.text
    token, token_id = made.json()["token"], made.json()["id"]
    csrs = [csr_pem(p256(), "race-five.conc", ["race-five.internal"]).decode() for _ in range(20)]

    def attempt(index: int, http: httpx.Client) -> Outcome:
        response = http.post("/csr", json={"csr": csrs[index]}, headers=_bearer(token))
        return Outcome("enroll", response.status_code, response.text)

    outcomes = _race(20, server, attempt)
    serials = [o.serial for o in outcomes if o.status == 201]
    print(f"\nfive-use token: {sorted(o.status for o in outcomes)}")
    _no_trouble(outcomes, server.log())
    assert sorted(o.status for o in outcomes) == [201] * 5 + [401] * 15
    assert len(set(serials)) == 5
    assert query(server.data_dir, f"SELECT count(*) FROM certificates WHERE issued_by = 'token:{token_id}'") == [(5,)]
    assert query(server.data_dir, f"SELECT uses_left FROM tokens WHERE id = '{token_id}'") == [(0,)]


def test_three_use_revoke_token_raced_over_ten_certificates_revokes_exactly_three(server: LiveServer) -> None:
    targets = [_issue(server, f"revoke-race-{i}.conc").serial for i in range(10)]
    with server.client(headers=_bearer(server.admin_token)) as http:
        made = http.post("/tokens", json={"scope": "revoke", "uses": 3})
    assert made.status_code == 201, made.text
    token, token_id = made.json()["token"], made.json()["id"]

    def attempt(index: int, http: httpx.Client) -> Outcome:
        response = http.post(f"/certs/{targets[index]}/revoke", json={}, headers=_bearer(token))
        return Outcome("revoke", response.status_code, response.text, targets[index])

    outcomes = _race(10, server, attempt)
    print(f"\nthree-use revoke token: {sorted(o.status for o in outcomes)}")
    _no_trouble(outcomes, server.log())
    assert sorted(o.status for o in outcomes) == [200] * 3 + [401] * 7
    status = {str(row[0]): row[1] for row in query(server.data_dir, "SELECT serial, status FROM certificates")}
    revoked = {o.subject for o in outcomes if o.status == 200}
    assert {s for s in targets if status[s] == "revoked"} == revoked
    assert query(server.data_dir, f"SELECT uses_left FROM tokens WHERE id = '{token_id}'") == [(0,)]


def test_ten_simultaneous_revocations_of_one_certificate_succeed_once(server: LiveServer) -> None:
    serial = _issue(server, "revoke-once.conc").serial
    before = _number(server, "SELECT value FROM counters WHERE name = 'revocations'")

    admin = _bearer(server.admin_token)

    def attempt(_: int, http: httpx.Client) -> Outcome:
        response = http.post(f"/certs/{serial}/revoke", json={"reason": "cessationOfOperation"}, headers=admin)
        return Outcome("revoke", response.status_code, response.text, serial)

    outcomes = _race(10, server, attempt)
    after = _number(server, "SELECT value FROM counters WHERE name = 'revocations'")
    print(f"\none certificate revoked by 10 at once: {sorted(o.status for o in outcomes)}")
    _no_trouble(outcomes, server.log())
    assert sorted(o.status for o in outcomes) == [200] + [409] * 9
    assert after - before == 1
    assert query(server.data_dir, f"SELECT status FROM certificates WHERE serial = '{serial}'") == [("revoked",)]


def test_ten_simultaneous_renewals_by_one_holder_all_succeed_with_distinct_serials(
    server: LiveServer, tmp_path: Path
) -> None:
    holder = _make_holder(server, tmp_path, "renew-race.conc")
    csrs = [csr_pem(p256(), holder.cn).decode() for _ in range(10)]

    def attempt(index: int, http: httpx.Client) -> Outcome:
        response = http.post("/csr", json={"csr": csrs[index]})
        return Outcome("renew", response.status_code, response.text, holder.serial)

    outcomes = _race(10, server, attempt, cert=holder.cert, key=holder.key)
    print(f"\none holder renewing 10 times at once: {sorted(o.status for o in outcomes)}")
    _no_trouble(outcomes, server.log())
    assert [o.status for o in outcomes] == [201] * 10
    serials = {o.serial for o in outcomes}
    assert len(serials) == 10 and holder.serial not in serials
    issued_by = query(server.data_dir, f"SELECT count(*) FROM certificates WHERE issued_by = 'cert:{holder.serial}'")
    assert issued_by == [(10,)]
