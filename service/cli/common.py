"""What the commands share: settings from flags, durations, JSON output."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from service.ca.inspect import CertificateSummary
from service.errors import ConfigurationError
from service.settings import Settings, described, get_settings

if TYPE_CHECKING:
    pass

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



def print_json(document: object) -> None:
    print(json.dumps(document, indent=2, default=str))


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
        "not_before": summary.not_before.isoformat(),
        "not_after": summary.not_after.isoformat(),
        "fingerprint_sha256": summary.fingerprint_sha256,
    }


def check_writable(directory: Path, what: str) -> None:
    """A directory we can write to (made if missing): checked before a certificate is issued for its files."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"{what} {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigurationError(f"{what} {directory}: not writable")
