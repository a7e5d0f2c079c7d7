"""Crash consistency: issuance and revocation load against a real `pocketca serve` (SQLite, two workers),
killed with SIGKILL at random moments, restarted on the same data dir and port, five times.

Every answer a client got is recorded on the client side; after each kill a copy of the database as the
crash left it is checked, and after the last restart the whole history is checked against the database
(with sqlite3), the listing (`GET /certs`) and the CRL: nothing acknowledged is lost, nothing is doubled,
a one-use token never pays for two certificates, and the CRL number only grows.
"""

from __future__ import annotations

import collections
import contextlib
import os
import random
import shutil
import signal
import sqlite3
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from cryptography import x509

from tests.conftest import LiveServer, start_server
from tests.helpers import csr_pem, p256

pytestmark = pytest.mark.sqlite_only

KILLS = 5
THREADS = 8
KILL_WINDOW = (0.6, 2.5)  # seconds of load before each SIGKILL
# the per-token issuance limit is not under test here: the admin token issues hundreds a minute
SERVER_ENV = {"POCKETCA_ISSUE_RATE_PER_MINUTE": "0"}


# --- finding and killing every process of one data dir --------------------------------------------------


def _descendants(pid: int) -> set[int]:
    found: set[int] = set()
    todo = [pid]
    while todo:
        current = todo.pop()
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                for child in children.read_text().split():
                    if int(child) not in found:
                        found.add(int(child))
                        todo.append(int(child))
    return found


def _processes_of(data_dir: Path) -> set[int]:
    """Every process started for this data dir: `serve` passes POCKETCA_DATA_DIR to its spawned workers."""
    markers = {f"POCKETCA_DATA_DIR={data_dir}".encode(), f"POCKETCA_DATA_DIR={data_dir.resolve()}".encode()}
    found = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        with contextlib.suppress(OSError):
            if markers & set((entry / "environ").read_bytes().split(b"\0")):
                found.add(int(entry.name))
    return found


def _is_alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"  # a zombie is dead; its parent reaps it


def _kill_everything(server: LiveServer) -> int:
    """SIGKILL to the supervisor, its workers and every other process of the data dir, all at once (the
    workers share the parent's process group with pytest, so no killpg). Returns how many were killed."""
    pids = {server.process.pid} | _descendants(server.process.pid) | _processes_of(server.data_dir)
    pids = {pid for pid in pids if _is_alive(pid)}
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    server.process.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(_is_alive(pid) for pid in pids) or _processes_of(server.data_dir):
        assert time.monotonic() < deadline, f"processes of {server.data_dir} survived SIGKILL"
        time.sleep(0.02)
    return len(pids)


# --- what the clients saw ----------------------------------------------------------------------------------


@dataclass
class Ledger:
    lock: threading.Lock = field(default_factory=threading.Lock)
    issued: dict[str, str] = field(default_factory=dict)  # serial -> "admin" or "token:<id>"
    issued_before_kill: list[set[str]] = field(default_factory=list)
    revoked: set[str] = field(default_factory=set)  # acknowledged with 200
    revocable: list[str] = field(default_factory=list)
    revoke_in_doubt: set[str] = field(default_factory=set)  # the connection broke: revoked or not, unknown
    tokens: dict[str, tuple[str, str, str]] = field(default_factory=dict)  # id -> (token, cn, san)
    token_wins: collections.Counter[str] = field(default_factory=collections.Counter)
    crl_seen: list[tuple[float, float, int]] = field(default_factory=list)  # (sent, received, CRL number)
    outcomes: collections.Counter[str] = field(default_factory=collections.Counter)
    unexpected: list[str] = field(default_factory=list)

    def note(self, op: str, response: httpx.Response, expected: tuple[int, ...]) -> None:
        with self.lock:
            self.outcomes[f"{op} {response.status_code}"] += 1
            if response.status_code not in expected:
                self.unexpected.append(f"{op}: {response.status_code} {response.text[:300]}")


def _crl_number(der: bytes) -> int:
    return _number_of(x509.load_der_x509_crl(der))


def _number_of(crl: x509.CertificateRevocationList) -> int:
    return crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number


class Load:
    """One round of client threads: issue (admin token), enroll (a fresh one-use token), reuse an old token,
    revoke, read the CRL — until the server dies under them."""

    def __init__(self, server: LiveServer, ledger: Ledger, rng: random.Random, round_no: int) -> None:
        self.server = server
        self.ledger = ledger
        self.round_no = round_no
        self.admin = {"Authorization": f"Bearer {server.admin_token}"}
        self.stop = threading.Event()
        self.seeds = [rng.randrange(2**32) for _ in range(THREADS)]
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(THREADS)]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=20)
        assert not any(thread.is_alive() for thread in self.threads), "a client thread did not stop"

    def _run(self, index: int) -> None:
        try:
            self._loop(index)
        except Exception as exc:  # a bug in the client: reported, never swallowed by the thread
            with self.ledger.lock:
                self.ledger.unexpected.append(f"client thread {index}: {exc!r}")

    def _loop(self, index: int) -> None:
        rng = random.Random(self.seeds[index])
        with self.server.client() as http:
            n = 0
            while not self.stop.is_set():
                n += 1
                name = f"r{self.round_no}-t{index}-{n}"
                roll = rng.random()
                try:
                    if roll < 0.40:
                        self._issue(http, name)
                    elif roll < 0.65:
                        self._enroll(http, name)
                    elif roll < 0.72:
                        self._reuse_token(http, rng)
                    elif roll < 0.94:
                        self._revoke(http, rng)
                    else:
                        self._read_crl(http)
                except httpx.HTTPError as exc:  # the server died under this request: its outcome is unknown
                    with self.ledger.lock:
                        self.ledger.outcomes[f"transport {type(exc).__name__}"] += 1
                    if not self.stop.is_set():
                        time.sleep(0.02)

    def _issue(self, http: httpx.Client, name: str) -> None:
        response = http.post("/csr", json={"csr": csr_pem(p256(), f"{name}.crash").decode()}, headers=self.admin)
        self.ledger.note("issue", response, (201,))
        if response.status_code == 201:
            serial = response.json()["serial"]
            with self.ledger.lock:
                self.ledger.issued[serial] = "admin"
                self.ledger.revocable.append(serial)

    def _enroll(self, http: httpx.Client, name: str) -> None:
        cn, san = f"{name}.enroll", f"{name}.enroll.internal"
        made = http.post("/tokens", json={"cn": cn, "sans": [san]}, headers=self.admin)
        self.ledger.note("token", made, (201,))
        if made.status_code != 201:
            return
        token_id = made.json()["id"]
        try:
            self._use_token(http, token_id, (made.json()["token"], cn, san), "enroll")
        finally:  # only now may other threads try it again: its first use is over (or its outcome unknown)
            with self.ledger.lock:
                self.ledger.tokens[token_id] = (made.json()["token"], cn, san)

    def _reuse_token(self, http: httpx.Client, rng: random.Random) -> None:
        with self.ledger.lock:
            if not self.ledger.tokens:
                return
            token_id = rng.choice(list(self.ledger.tokens))
            binding = self.ledger.tokens[token_id]
        self._use_token(http, token_id, binding, "reuse")

    def _use_token(self, http: httpx.Client, token_id: str, binding: tuple[str, str, str], op: str) -> None:
        token, cn, san = binding
        response = http.post(
            "/csr",
            json={"csr": csr_pem(p256(), cn, [san]).decode()},
            headers={"Authorization": f"Bearer {token}"},
        )
        # a reuse may win only if the first use never got its answer (then 201 once, never twice: checked later)
        self.ledger.note(op, response, (201,) if op == "enroll" else (201, 401))
        if response.status_code == 201:
            serial = response.json()["serial"]
            with self.ledger.lock:
                self.ledger.issued[serial] = f"token:{token_id}"
                self.ledger.token_wins[token_id] += 1
                self.ledger.revocable.append(serial)

    def _revoke(self, http: httpx.Client, rng: random.Random) -> None:
        with self.ledger.lock:
            if not self.ledger.revocable:
                return
            serial = self.ledger.revocable.pop(rng.randrange(len(self.ledger.revocable)))
            in_doubt = serial in self.ledger.revoke_in_doubt
        try:
            response = http.post(f"/certs/{serial}/revoke", json={"reason": "keyCompromise"}, headers=self.admin)
        except httpx.HTTPError:
            with self.ledger.lock:
                self.ledger.revoke_in_doubt.add(serial)
                self.ledger.revocable.append(serial)  # a later round tries again: 200 or 409, both fine
            raise
        self.ledger.note("revoke", response, (200, 409) if in_doubt else (200,))
        if response.status_code == 200:
            with self.ledger.lock:
                self.ledger.revoked.add(serial)

    def _read_crl(self, http: httpx.Client) -> None:
        sent = time.monotonic()
        response = http.get("/crl")
        received = time.monotonic()
        self.ledger.note("crl", response, (200,))
        if response.status_code == 200:
            with self.ledger.lock:
                self.ledger.crl_seen.append((sent, received, _crl_number(response.content)))


# --- checks ----------------------------------------------------------------------------------------------


def _sqlite(path: Path, sql: str) -> list[tuple[object, ...]]:
    with contextlib.closing(sqlite3.connect(path, timeout=10)) as connection:
        return list(connection.execute(sql))


def _snapshot(data_dir: Path, target: Path) -> Path:
    """A copy of the database as the crash left it (main file and WAL), checked without touching the original:
    the restarted server must do its own recovery."""
    target.mkdir(parents=True)
    for suffix in ("", "-wal"):
        source = data_dir / f"pocketca.db{suffix}"
        if source.exists():
            shutil.copyfile(source, target / source.name)
    return target / "pocketca.db"


def _fetch_crl(server: LiveServer, ledger: Ledger) -> int:
    with server.client() as http:
        sent = time.monotonic()
        response = http.get("/crl")
        received = time.monotonic()
    assert response.status_code == 200, response.text
    number = _crl_number(response.content)
    with ledger.lock:
        ledger.crl_seen.append((sent, received, number))
    return number


def _list_all(server: LiveServer) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor: str | None = None
    with server.client(headers={"Authorization": f"Bearer {server.admin_token}"}) as http:
        for _ in range(200):
            params: dict[str, str | int] = {"limit": 1000}
            if cursor:
                params["cursor"] = cursor
            response = http.get("/certs", params=params)
            assert response.status_code == 200, response.text
            page = response.json()
            items.extend(page["items"])
            cursor = page["next_cursor"]
            if not cursor:
                return items
    raise AssertionError("GET /certs did not reach its last page")


def _crl_never_went_back(seen: list[tuple[float, float, int]]) -> None:
    """A CRL read that began after another had been answered never shows a smaller number."""
    for _, received_a, number_a in seen:
        for sent_b, _, number_b in seen:
            if sent_b > received_a:
                assert number_b >= number_a, (number_a, number_b, seen)


def _timed_start(starts: list[float], data: Path, port: int | None = None) -> LiveServer:
    began = time.monotonic()
    server = start_server(data, workers=2, port=port, extra_env=SERVER_ENV)
    starts.append(time.monotonic() - began)
    return server


@pytest.mark.sqlite_only  # checks the SQLite file as the crash left it
def test_sigkill_at_random_moments_loses_nothing_acknowledged(tmp_path: Path) -> None:
    began = time.monotonic()
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    print(f"\ncrash consistency: seed {seed}")
    data = tmp_path / "data"
    ledger = Ledger()
    logs: list[str] = []
    kills = killed_processes = 0
    starts: list[float] = []
    server = _timed_start(starts, data)
    port = server.port
    try:
        for round_no in range(KILLS):
            _fetch_crl(server, ledger)
            load = Load(server, ledger, rng, round_no)
            load.start()
            try:
                delay = rng.uniform(*KILL_WINDOW)
                time.sleep(delay)
                killed_processes += _kill_everything(server)
                kills += 1
            finally:
                load.finish()
            logs.append(server.log())
            with ledger.lock:
                ledger.issued_before_kill.append(set(ledger.issued))
            crashed = _snapshot(data, tmp_path / f"crash-{round_no}")
            assert _sqlite(crashed, "PRAGMA integrity_check") == [("ok",)]
            on_disk = {str(row[0]): row[1] for row in _sqlite(crashed, "SELECT serial, status FROM certificates")}
            assert ledger.issued_before_kill[-1] <= set(on_disk), "a 201 was answered but not on disk at the crash"
            assert all(on_disk[s] == "revoked" for s in ledger.revoked), "a 200 revoke was not on disk at the crash"
            print(
                f"crash consistency: kill {round_no + 1} after {delay:.2f} s of load; {len(on_disk)} certificates "
                f"on disk, {len(ledger.issued)} acknowledged, {len(ledger.revoked)} revocations acknowledged"
            )
            server = _timed_start(starts, data, port)

        _fetch_crl(server, ledger)
        listed = _list_all(server)
        deadline = time.monotonic() + 10  # the CRL is rebuilt off the request path within about a second
        while True:
            with server.client() as http:
                crl = x509.load_der_x509_crl(http.get("/crl").content)
            missing = [s for s in ledger.revoked if crl.get_revoked_certificate_by_serial_number(int(s, 16)) is None]
            if not missing or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        ledger.crl_seen.append((time.monotonic(), time.monotonic(), _number_of(crl)))
    finally:
        server.stop()
        logs.append(server.log())
        _kill_everything(server)  # nothing of this data dir outlives the test

    db = data / "pocketca.db"
    integrity = _sqlite(db, "PRAGMA integrity_check")
    rows = _sqlite(db, "SELECT serial, status, issued_by FROM certificates")
    token_rows = _sqlite(db, "SELECT id, uses_left FROM tokens")
    serials = [str(row[0]) for row in rows]
    status = {str(row[0]): row[1] for row in rows}
    by_issuer = collections.Counter(str(row[2]) for row in rows)
    listed_serials = [str(item["serial"]) for item in listed]
    listed_status = {str(item["serial"]): item["status"] for item in listed}
    admitted = set(ledger.issued)
    transport = sum(v for k, v in ledger.outcomes.items() if k.startswith("transport"))
    elapsed = time.monotonic() - began
    print(
        f"crash consistency: kills {kills} ({killed_processes} processes), "
        f"issued {len(ledger.issued)} (admin {list(ledger.issued.values()).count('admin')}, "
        f"token {sum(ledger.token_wins.values())}), revoked {len(ledger.revoked)}, "
        f"tokens made {len(ledger.tokens)}, broken requests {transport}, "
        f"revocations in doubt {len(ledger.revoke_in_doubt)}, rows {len(rows)}, "
        f"CRL numbers {min(n for *_, n in ledger.crl_seen)}..{max(n for *_, n in ledger.crl_seen)} "
        f"over {len(ledger.crl_seen)} reads, {elapsed:.1f} s ({sum(starts):.1f} s in {len(starts)} starts)"
    )
    print(f"crash consistency: outcomes {dict(sorted(ledger.outcomes.items()))}")

    assert kills == KILLS
    assert not ledger.unexpected, ledger.unexpected[:10]
    assert len(ledger.issued) > 0 and len(ledger.revoked) > 0, ledger.outcomes
    # nothing acknowledged is lost, nothing doubled
    assert integrity == [("ok",)]
    assert len(serials) == len(set(serials)), "a serial is in the database twice"
    assert admitted <= set(serials), sorted(admitted - set(serials))[:5]
    assert len(listed_serials) == len(set(listed_serials)), "GET /certs lists a serial twice"
    assert set(listed_serials) == set(serials), "GET /certs and the database disagree"
    # acknowledged revocations stay revoked, in the database, the listing and the CRL
    assert all(status[s] == "revoked" for s in ledger.revoked), [s for s in ledger.revoked if status[s] != "revoked"]
    assert all(listed_status[s] == "revoked" for s in ledger.revoked)
    assert not missing, f"acknowledged revocations missing from the CRL: {missing[:5]}"
    # the CRL number never went back, across workers and restarts
    _crl_never_went_back(ledger.crl_seen)
    # a one-use token pays for at most one certificate, and its use is spent exactly when the certificate exists
    assert all(wins <= 1 for wins in ledger.token_wins.values()), ledger.token_wins.most_common(3)
    uses_left = {str(row[0]): row[1] for row in token_rows if row[1] is not None}  # the counted (enrollment) ones
    assert set(ledger.tokens) <= set(uses_left), "a token answered with 201 is missing from the database"
    for token_id, left in uses_left.items():  # also those whose creation the client never heard back about
        count = by_issuer[f"token:{token_id}"]
        assert count <= 1, f"token {token_id} produced {count} certificates"
        assert count >= ledger.token_wins[token_id]
        assert left == 1 - count, f"token {token_id}: {left} uses left after {count} certificates"
    log = "\n".join(logs)
    assert "database is locked" not in log
    assert "Traceback" not in log, log[-3000:]
