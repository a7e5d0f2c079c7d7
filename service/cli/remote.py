"""The client-side commands: they talk to a pocketca server over HTTPS."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from service.ca.csr import build_csr
from service.ca.inspect import format_serial, format_time, parse_serial, summarize
from service.ca.keys import PrivateKey, dump_private_key
from service.cli.common import (
    check_new_files,
    check_writable,
    files_document,
    print_json,
    readable_times,
    summary_document,
)
from service.errors import ConfigurationError
from service.keys.files import write_private_file, write_public_file
from service.settings import ClientSettings

if TYPE_CHECKING:
    from service.client import PocketCAClient

# --- client side ------------------------------------------------------------------------------------


def _server_and_ca_file(args: argparse.Namespace, defaults: ClientSettings | None = None) -> tuple[str, Path | None]:
    """--server and --ca-file, else POCKETCA_SERVER and POCKETCA_CA_FILE."""
    defaults = defaults or ClientSettings()  # type: ignore[call-arg]
    server = args.server or defaults.server
    if not server:
        raise ConfigurationError("give --server URL (or set POCKETCA_SERVER)")
    return server, args.ca_file or defaults.ca_file


def _client(args: argparse.Namespace, *, token: bool = True, **kwargs: Any) -> PocketCAClient:
    """A client from --server/--ca-file/--token, else POCKETCA_SERVER/POCKETCA_CA_FILE/POCKETCA_TOKEN."""
    from service.client import PocketCAClient

    defaults = ClientSettings()  # type: ignore[call-arg]
    server, ca_file = _server_and_ca_file(args, defaults)
    secret = getattr(args, "token", None) or (defaults.token.get_secret_value() if defaults.token else None)
    return PocketCAClient(server, ca_file=ca_file, token=secret if token else None, **kwargs)






def cmd_enroll(args: argparse.Namespace) -> int:
    # before the token is spent: no key or certificate is ever replaced unasked, and the files can be written
    check_new_files([Path(f) for f in files_document(args.out_dir).values()], force=args.force, instead="--out-dir DIR")
    check_writable(args.out_dir, "--out-dir")
    with _client(args) as client:
        if client.token is None:
            raise ConfigurationError("give --token (or set POCKETCA_TOKEN): enrollment needs a token")
        key = ec.generate_private_key(ec.SECP256R1())
        csr = build_csr(key, args.cn, args.san).public_bytes(Encoding.PEM).decode()
        result = client.enroll(csr, profile=args.profile, validity_days=args.validity_days)
    _write_bundle(args.out_dir, key, result)
    if args.json:
        print_json({**result, "files": files_document(args.out_dir)})
    else:
        print(f"enrolled {result['serial']} for {result['cn']}; files in {args.out_dir}")
    return 0


def cmd_renew(args: argparse.Namespace) -> int:
    from service import renewer
    from service.client import check_key_pair

    check_key_pair(args.cert, args.key)
    for path in (args.cert, args.key):
        check_writable(path.parent, "--cert/--key directory")
    server, ca_file = _server_and_ca_file(args)
    target = renewer.RenewalTarget(
        server=server,
        cert=args.cert,
        key=args.key,
        ca_file=ca_file,
        validity_days=args.validity_days,
        exec_command=args.exec_command,
    )
    if args.daemon:
        return renewer.run_daemon(target, threshold=args.if_expires_within)
    current = renewer.load_certificate(args.cert)
    if args.if_expires_within is not None:
        remaining = current.not_valid_after_utc - dt.datetime.now(dt.UTC)
        if remaining > args.if_expires_within:
            if args.json:
                print_json({"renewed": False, "not_after": format_time(current.not_valid_after_utc)})
            else:
                print(f"not due: {args.cert} expires {format_time(current.not_valid_after_utc)}")
            return 0
    result = renewer.renew_once(target)  # mTLS with clientAuth, a renewal token without
    if args.json:
        print_json({"renewed": True, **result, "files": {"key": str(args.key), "cert": str(args.cert)}})
    else:
        print(f"renewed: {result['serial']} valid until {format_time(result['not_after'])}")
    # the renewal is done and kept; the operator's hook failing is a local error (the contract's 2), said in a line
    return 2 if renewer.run_exec(args.exec_command, lambda line: print(line, file=sys.stderr)) else 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with _client(args, cert_file=args.cert, key_file=args.key) as client:
        if client.token is None and not (args.cert and args.key):
            raise ConfigurationError("give --token (or set POCKETCA_TOKEN), or --cert and --key")
        result = client.revoke(args.serial, reason=args.reason)
    if args.json:
        print_json(result)
    else:
        print(f"revoked {result['serial']} ({result['revocation_reason']})")
    return 0


def cmd_ca_bootstrap(args: argparse.Namespace) -> int:
    """Trust on first use, made safe by a fingerprint the operator read from the server's own console."""
    from service.client import fetch_ca_unverified

    wanted = _parse_fingerprint(args.fingerprint)
    server = args.server or ClientSettings().server  # type: ignore[call-arg]
    if not server:
        raise ConfigurationError("give --server URL (or set POCKETCA_SERVER)")
    chain_pem = fetch_ca_unverified(server)
    try:
        chain = x509.load_pem_x509_certificates(chain_pem.encode())
    except ValueError:
        raise ConfigurationError(f"{server}/ca did not answer with a PEM certificate chain") from None
    root = chain[-1]
    found = root.fingerprint(hashes.SHA256()).hex()
    if found != wanted:
        raise ConfigurationError(
            f"the CA at {server} has fingerprint {found}, not {wanted}: nothing written "
            "(check the fingerprint with the operator; someone may be in the middle)"
        )
    if not _holds(args.out, chain_pem.encode()):  # the same CA again is no change; another is never replaced unasked
        check_new_files([args.out], force=args.force, instead="another --out FILE")
        write_public_file(args.out, chain_pem.encode())
    if args.json:
        print_json({"out": str(args.out), "subject": root.subject.rfc4514_string(), "fingerprint_sha256": found})
    else:
        print(f"wrote {args.out}: {root.subject.rfc4514_string()} (SHA-256 {found})")
    return 0


def _holds(path: Path, data: bytes) -> bool:
    try:
        return path.read_bytes() == data
    except OSError:
        return False


_OPENSSL_LABEL = re.compile(r"^\s*(?P<digest>[\w-]+)\s+fingerprint\s*=", re.IGNORECASE)


def _parse_fingerprint(text: str) -> str:
    """64 hex digits, with colons, spaces or a `sha256:` prefix, or the line `openssl x509 -fingerprint -sha256`
    prints (`sha256 Fingerprint=E8:87:...`, `SHA256 Fingerprint=...` in OpenSSL 1.1)."""
    value = text.strip()
    label = _OPENSSL_LABEL.match(value)
    if label is not None:
        digest = label.group("digest").upper().replace("-", "")
        if digest != "SHA256":
            shown = digest.replace("SHA", "SHA-") if digest.startswith("SHA") else digest
            raise ConfigurationError(
                f"--fingerprint: that is a {shown} fingerprint; "
                "ask openssl for the SHA-256 one (openssl x509 -in ca.pem -noout -fingerprint -sha256)"
            )
        value = value[label.end() :]
    value = value.lower().removeprefix("sha256:").replace(":", "").replace(" ", "")
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ConfigurationError(f"--fingerprint {text!r} is not a SHA-256 fingerprint (64 hex digits, colons allowed)")
    return value


def cmd_certs_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if client.token is None:
            raise ConfigurationError("give --token (a read or admin token; or set POCKETCA_TOKEN)")
        items = client.list_certificates(status=args.status, cn=args.cn, limit=args.limit)
    if args.json:
        print_json({"items": items})
        return 0
    print(f"{'SERIAL':40}  {'STATUS':7}  {'PROFILE':8}  {'NOT AFTER':20}  CN")
    for item in items:
        not_after = format_time(item["not_after"])
        print(f"{item['serial']:40}  {item['status']:7}  {item['profile']:8}  {not_after:20}  {item['cn'] or ''}")
    return 0


def cmd_certs_inspect(args: argparse.Namespace) -> int:
    path = Path(args.what)
    if path.exists():
        document = summary_document(summarize(_load_certificate_file(path)))
    else:
        try:
            serial = format_serial(parse_serial(args.what))
        except ValueError:
            raise ConfigurationError(f"{args.what}: no such file, and not a serial") from None
        with _client(args) as client:
            if client.token is None:
                raise ConfigurationError(
                    "give --token (a read or admin token; or set POCKETCA_TOKEN) to look up a serial"
                )
            document = client.get_certificate(serial)
        document.pop("certificate", None)
    if args.json:
        print_json(document)
    else:
        shown_document = readable_times(document)
        assert isinstance(shown_document, dict)
        width = max(len(k) for k in shown_document)
        for name, value in shown_document.items():
            shown = ", ".join(value) if isinstance(value, list) else value
            print(f"{name + ':':{width + 1}}  {shown if shown is not None else '-'}")
    return 0


def _load_certificate_file(path: Path) -> x509.Certificate:
    data = path.read_bytes()
    try:
        if b"-----BEGIN" in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise ConfigurationError(f"{path} is not a certificate (PEM or DER)") from None


def _write_bundle(out: Path, key: PrivateKey, result: dict[str, object]) -> None:
    out.mkdir(parents=True, exist_ok=True)  # only now, with the certificate in hand
    write_private_file(out / "key.pem", dump_private_key(key))
    write_public_file(out / "cert.pem", str(result["certificate"]).encode())
    write_public_file(out / "chain.pem", "".join(result["chain"]).encode())  # type: ignore[arg-type]

