"""What the commands share: settings from flags, durations, JSON output."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
from pathlib import Path

from service.ca.inspect import CertificateSummary, format_time
from service.errors import ConfigurationError
from service.settings import Settings, described, get_settings

# flags that are settings: generated from the Settings fields (service/settings.py), one declaration each
SETTINGS_HELP = described(Settings)
DATABASE_FLAGS = ["data_dir", "database_url", "ca_key_passphrase", "ca_key_passphrase_file", "ca_key_uri"]
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}



def parse_duration(text: str) -> dt.timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 1h, 7d")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def settings_from(args: argparse.Namespace) -> Settings:
    return get_settings(**{field: getattr(args, field, None) for field in Settings.model_fields})


def given_settings(args: argparse.Namespace) -> frozenset[str]:
    """The settings given as flags (so a bad value blames the flag, not the variable)."""
    return frozenset(field for field in Settings.model_fields if getattr(args, field, None) is not None)



# fields that hold a time, in the server's answers and ours: printed the one way (`format_time`)
TIME_FIELDS = frozenset({"not_before", "not_after", "revoked_at", "expires_at", "created_at", "used_at", "at"})


def print_json(document: object) -> None:
    print(json.dumps(readable_times(document), indent=2, default=_json_value))


def readable_times(document: object) -> object:
    """The document with every time field in the one style (the server's RFC 3339 may carry microseconds)."""
    if isinstance(document, dict):
        return {
            key: format_time(value)
            if key in TIME_FIELDS and isinstance(value, str | dt.datetime) and value
            else readable_times(value)
            for key, value in document.items()
        }
    if isinstance(document, list):
        return [readable_times(item) for item in document]
    return document


def _json_value(value: object) -> str:
    """Times as everywhere else a person reads one (`format_time`); anything else as its text."""
    return format_time(value) if isinstance(value, dt.datetime) else str(value)


def files_document(out: Path, p12: Path | None = None) -> dict[str, str]:
    files = {"key": str(out / "key.pem"), "cert": str(out / "cert.pem"), "chain": str(out / "chain.pem")}
    if p12 is not None:
        files["p12"] = str(p12)
    return files


def summary_document(summary: CertificateSummary) -> dict[str, object]:
    return {
        "serial": summary.serial,
        "subject": summary.subject,
        "cn": summary.cn,
        "sans": list(summary.sans),
        "issuer": summary.issuer,
        "not_before": format_time(summary.not_before),
        "not_after": format_time(summary.not_after),
        "fingerprint_sha256": summary.fingerprint_sha256,
    }


def check_writable(directory: Path, what: str) -> None:
    """A directory we could write to, checked before a certificate is issued for its files. Nothing is made here:
    a missing directory is made only when there is something to put in it, so a refusal leaves nothing behind."""
    existing = directory
    while not existing.exists():
        if existing.parent == existing:
            break
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigurationError(f"{what} {directory}: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigurationError(f"{what} {directory}: {existing} is not writable")


def check_new_files(paths: list[Path], *, force: bool, instead: str) -> None:
    """A command never replaces a key or certificate it did not make in this run, unless told to with --force:
    one line that names the file and what to do. `instead` says how to write elsewhere (e.g. `--out-dir DIR`)."""
    if force:
        return
    for path in paths:
        if path.exists() or path.is_symlink():
            raise ConfigurationError(f"{path} exists: give {instead}, or --force to replace it")
