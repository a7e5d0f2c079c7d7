"""Backups of a data dir: a consistent snapshot of the SQLite database (the online backup API, safe while the
service runs) and the CA material, in one tar file; and bringing one back."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import sqlite3
import tarfile
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

from service.datadir.layout import DataPaths, has_ca
from service.datadir.schema import upgrade
from service.db import certificates as certificate_rows
from service.db import counters
from service.db.session import Database
from service.errors import ConfigurationError, FileError
from service.keys.files import write_private_file
from service.settings import Settings

FORMAT = "pocketca-backup/1"
DB_NAME = "pocketca.db"
MATERIAL = (
    "ca.key",
    "ca.key.pkcs11",
    "ca.pem",
    "chain.pem",
    "server.key",
    "server.pem",
    "admin.token",
    "profiles.toml",
)
# every issuer's material too: issuers/<issuer id>/<file> (retired by a rotation) and pending/<file>
NESTED = {"issuers": ("ca.key", "ca.pem", "chain.pem"), "pending": ("ca.key", "ca.csr")}
_ISSUER_ID = re.compile(r"^[0-9a-f]{16}$")
_ROOT_CRL = re.compile(r"^[0-9a-f]{16}\.crl$")
PUBLIC = ("ca.pem", "chain.pem", "server.pem", "ca.csr")


@dataclass(frozen=True)
class BackupSummary:
    path: Path
    files: list[str]
    certificates: int


def _sqlite_path(settings: Settings) -> Path:
    url = settings.sqlalchemy_url
    if not url.startswith("sqlite:///"):
        raise ConfigurationError(
            "the database is not SQLite: back it up with its own tools (pg_dump), and copy the data dir's CA files"
        )
    return Path(url.removeprefix("sqlite:///"))


def backup(settings: Settings, target: Path) -> BackupSummary:
    paths = DataPaths(settings.data_dir)
    database = _sqlite_path(settings)
    if not database.exists() or not has_ca(paths):
        raise ConfigurationError(f"nothing to back up in {paths.root}")
    with tempfile.TemporaryDirectory(dir=target.parent if target.parent.exists() else None) as scratch:
        snapshot = Path(scratch) / DB_NAME
        source = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
        destination = sqlite3.connect(snapshot)
        try:
            source.backup(destination)  # a consistent copy, even while workers write
            certificates = destination.execute("SELECT count(*) FROM certificates").fetchone()[0]
        finally:
            destination.close()
            source.close()
        members = {DB_NAME: snapshot.read_bytes()}
        for name in MATERIAL:
            if (paths.root / name).exists():
                members[name] = (paths.root / name).read_bytes()
        for directory in paths.retired():
            for name in NESTED["issuers"]:
                if (directory / name).exists():
                    members[f"issuers/{directory.name}/{name}"] = (directory / name).read_bytes()
        for name in NESTED["pending"]:
            if (paths.pending / name).exists():
                members[f"pending/{name}"] = (paths.pending / name).read_bytes()
        for path in sorted(paths.root_crls.glob("*.crl")) if paths.root_crls.is_dir() else []:
            if _ROOT_CRL.match(path.name):  # the offline roots' CRLs: the root keeps no other record of them
                members[f"root-crls/{path.name}"] = path.read_bytes()
    manifest = {
        "format": FORMAT,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "sha256": {name: hashlib.sha256(data).hexdigest() for name, data in members.items()},
    }
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in {"MANIFEST.json": json.dumps(manifest, indent=2).encode(), **members}.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o600, int(time.time())
            archive.addfile(info, io.BytesIO(data))
    write_private_file(target, buffer.getvalue())  # the CA key is inside: 0600, written atomically
    return BackupSummary(path=target, files=sorted(members), certificates=certificates)


def restore(settings: Settings, source: Path, *, force: bool = False) -> BackupSummary:
    """Replaces the data dir's database and CA material with the backup's. Stop the service first."""
    paths = DataPaths(settings.data_dir)
    database = _sqlite_path(settings)
    members = _read(source)
    if (database.exists() or paths.ca_key.exists()) and not force:
        raise ConfigurationError(f"{paths.root} already holds a CA or database: stop the service and pass --force")
    paths.root.mkdir(parents=True, exist_ok=True, mode=0o700)
    for suffix in ("-wal", "-shm"):  # the old database's log must not be replayed onto the restored one
        Path(f"{database}{suffix}").unlink(missing_ok=True)
    for name, data in members.items():
        write_private_file(database if name == DB_NAME else paths.root / name, data)
        if name.rpartition("/")[2] in PUBLIC or name.startswith("root-crls/"):
            (paths.root / name).chmod(0o644)
    db = Database(settings.sqlalchemy_url)
    try:
        ca_certificate = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes()) if paths.ca_cert.exists() else None
        upgrade(db, ca_certificate)  # a backup from an older version comes up to this version's schema
        with db.transaction() as transaction:  # CRL numbers published after the backup was taken must never come back
            counters.set(transaction, counters.CRL_FLOOR, int(time.time()))
        certificates = certificate_rows.count(db)
    finally:
        db.dispose()
    return BackupSummary(path=source, files=sorted(members), certificates=certificates)


def _read(source: Path) -> dict[str, bytes]:
    try:
        with tarfile.open(source, mode="r:gz") as archive:
            files = {m.name: archive.extractfile(m) for m in archive.getmembers() if m.isfile()}
            data = {name: handle.read() for name, handle in files.items() if handle is not None}
    except (OSError, tarfile.TarError) as exc:
        raise ConfigurationError(f"{source} is not a pocketca backup: {exc}") from None
    try:
        manifest = json.loads(data.pop("MANIFEST.json"))
    except (KeyError, ValueError):
        raise ConfigurationError(f"{source} has no valid MANIFEST.json") from None
    if manifest.get("format") != FORMAT:
        raise FileError(source, f"unknown backup format {manifest.get('format')!r}")
    expected = manifest.get("sha256", {})
    if set(expected) != set(data) or DB_NAME not in data or not {"ca.key", "ca.key.pkcs11"} & set(data):
        raise FileError(source, "the files do not match the manifest")
    for name, content in data.items():
        if hashlib.sha256(content).hexdigest() != expected[name] or not _member_name_ok(name):
            raise FileError(source, f"{name} is damaged")
    return data


def _member_name_ok(name: str) -> bool:
    """A top-level file, issuers/<issuer id>/<file>, pending/<file> or root-crls/<root id>.crl: nothing else, so no
    path leaves the data dir."""
    parts = name.split("/")
    if len(parts) == 1:
        return not name.startswith(".")
    if len(parts) == 3 and parts[0] == "issuers":
        return bool(_ISSUER_ID.match(parts[1])) and parts[2] in NESTED["issuers"]
    if len(parts) == 2 and parts[0] == "root-crls":
        return bool(_ROOT_CRL.match(parts[1]))
    return len(parts) == 2 and parts[0] == "pending" and parts[1] in NESTED["pending"]


__all__ = ["BackupSummary", "backup", "restore"]
