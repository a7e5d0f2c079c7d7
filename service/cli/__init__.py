"""The `pocketca` command. A composition root: it reads Settings and wires the layers together.

The parser and `main` are here; the commands are in `local` (the data dir and the database) and `remote` (a
server over HTTPS), what they share in `common`."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

from service import __version__
from service.ca.keys import KEY_TYPES
from service.cli.common import DATABASE_FLAGS, SETTINGS_HELP, given_settings, parse_duration
from service.cli.local import (
    cmd_acme_eab_create,
    cmd_backup,
    cmd_ca_crl,
    cmd_ca_list,
    cmd_ca_rotate,
    cmd_init,
    cmd_issue,
    cmd_openapi,
    cmd_restore,
    cmd_serve,
    cmd_token_create,
    cmd_token_list,
    cmd_token_revoke,
)
from service.cli.remote import cmd_ca_bootstrap, cmd_certs_inspect, cmd_certs_list, cmd_enroll, cmd_renew, cmd_revoke
from service.failures import explain
from service.settings import Settings, flag, unknown_variables, variable


def _add_settings_flags(parser: argparse.ArgumentParser, names: Sequence[str] | None = None) -> None:
    for field, help_text in SETTINGS_HELP.items():
        if names is None or field in names:
            default = Settings.model_fields[field].default
            default = ",".join(map(str, default)) if isinstance(default, list) else default
            shown = f"; default {default}" if default not in (None, [], "") and "default" not in help_text else ""
            parser.add_argument(flag(field), dest=field, default=None, help=f"{help_text}{shown} [{variable(field)}]")


def _add_client_flags(parser: argparse.ArgumentParser, *, token: bool = False) -> None:
    """--server, --ca-file (and --token): defaults from POCKETCA_SERVER, POCKETCA_CA_FILE, POCKETCA_TOKEN."""
    parser.add_argument("--server", default=None, help="e.g. https://ca.example:8443 [POCKETCA_SERVER]")
    parser.add_argument(
        "--ca-file", type=Path, default=None, help="trust only this CA (default: the system store) [POCKETCA_CA_FILE]"
    )
    if token:
        parser.add_argument("--token", default=None, help="bearer token [POCKETCA_TOKEN]")
    _add_json_flag(parser)


def _add_force_flag(parser: argparse.ArgumentParser, what: str = "existing key and certificate files") -> None:
    parser.add_argument("--force", action="store_true", help=f"replace {what} (else refused)")


def _add_json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pocketca", description="A small certificate authority for mutual TLS.")
    parser.add_argument("--version", action="version", version=f"pocketca {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTPS service (makes CA, database, token on first run)")
    _add_settings_flags(serve)
    serve.set_defaults(func=cmd_serve)

    init = commands.add_parser("init", help="make a CA, or import one made with openssl")
    _add_settings_flags(init, [*DATABASE_FLAGS, "publication_url"])
    init.add_argument("--key-type", dest="key_type", default=None, help=f"one of {', '.join(KEY_TYPES)}")
    init.add_argument("--cn", default=None, help="the CA's common name (default 'pocketca root CA')")
    init.add_argument("--import-key", type=Path, help="PEM private key of an existing CA")
    init.add_argument("--import-cert", type=Path, help="PEM certificate of that CA")
    init.add_argument(
        "--key-uri",
        dest="ca_key_uri",
        default=None,
        help="make (or use) the CA key in this PKCS#11 token, an RFC 7512 pkcs11: URI [POCKETCA_CA_KEY_URI]",
    )
    init.add_argument("--import-chain", type=Path, help="with --import-*: the CA's issuer first, up to the root")
    init.add_argument("--intermediate", action="store_true", help="an offline root and an issuing intermediate")
    init.add_argument("--root-out", type=Path, help="with --intermediate: the file the root (key encrypted) goes to")
    init.add_argument("--root-passphrase-file", type=Path, help="the root key's passphrase (else asked on a TTY)")
    init.add_argument("--path-len", type=int, default=0, help="the intermediate's pathLenConstraint (default 0)")
    for kind, example in (("dns", "example.com"), ("ip", "10.0.0.0/8"), ("email", "example.com")):
        for which in ("permitted", "excluded"):
            init.add_argument(
                f"--{which}-{kind}",
                action="append",
                default=[],
                metavar=example.upper() if kind != "ip" else "CIDR",
                help=f"with --intermediate: a name constraint, {which} {kind} (repeatable), e.g. {example}",
            )
    init.set_defaults(func=cmd_init)

    ca = commands.add_parser("ca", help="the issuing CAs (rotate, list) and the CA as a client sees it (bootstrap)")
    ca_commands = ca.add_subparsers(dest="ca_command", required=True, metavar="ACTION")
    rotate = ca_commands.add_parser(
        "rotate", help="a new issuing intermediate; the old one keeps its CRL and OCSP (restart serve after)"
    )
    _add_settings_flags(rotate, [*DATABASE_FLAGS, "publication_url"])
    rotate.add_argument("--root-file", type=Path, help="the offline root file from `init --intermediate`")
    rotate.add_argument("--root-passphrase-file", type=Path, help="its passphrase (else asked on a TTY)")
    rotate.add_argument("--csr-out", type=Path, help="an external root: write the new CA's CSR here (step 1)")
    rotate.add_argument("--import-cert", type=Path, help="an external root: the signed CA certificate (step 2)")
    rotate.add_argument("--import-chain", type=Path, help="with --import-cert: its issuer first, up to the root")
    rotate.set_defaults(func=cmd_ca_rotate)
    root_crl = ca_commands.add_parser(
        "crl", help="sign the offline root's next CRL into the data dir (the service serves it at /crl/<root id>)"
    )
    _add_settings_flags(root_crl, ["data_dir"])
    root_crl.add_argument("--root-file", type=Path, required=True, help="the root file from `init --intermediate`")
    root_crl.add_argument("--root-passphrase-file", type=Path, help="its passphrase (else asked on a TTY)")
    root_crl.add_argument("--revoke", metavar="ISSUER_ID", help="revoke this retired issuing CA (`pocketca ca list`)")
    root_crl.add_argument("--reason", help="with --revoke: keyCompromise, cACompromise, superseded, ...")
    root_crl.add_argument(
        "--next-update", type=int, default=90, metavar="DAYS", help="the CRL's nextUpdate, days ahead (default 90)"
    )
    _add_json_flag(root_crl)
    root_crl.set_defaults(func=cmd_ca_crl)
    issuers = ca_commands.add_parser("list", help="the issuing CAs, current first, and their roots")
    _add_settings_flags(issuers, DATABASE_FLAGS)
    _add_json_flag(issuers)
    issuers.set_defaults(func=cmd_ca_list)

    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser("create", help="print a new token once")
    _add_settings_flags(create, DATABASE_FLAGS)
    create.add_argument(
        "--scope",
        default=None,
        choices=["admin", "issue", "revoke", "read"],
        help="default admin; issue for an enrollment token",
    )
    create.add_argument("--cn", default=None, help="an enrollment token, bound to this CN ...")
    create.add_argument("--san", action="append", default=[], help="... and exactly these SANs (repeatable)")
    create.add_argument("--profile", default=None, help="the only profile the token may use")
    create.add_argument("--ttl", type=parse_duration, default=None, help="lifetime such as 1h or 30d (enrollment: 24h)")
    create.add_argument("--uses", type=int, default=None, help="how many uses (default unlimited; enrollment: 1)")
    _add_json_flag(create)
    create.set_defaults(func=cmd_token_create)
    listing = token_commands.add_parser("list", help="list tokens (never their secrets)")
    _add_settings_flags(listing, DATABASE_FLAGS)
    _add_json_flag(listing)
    listing.set_defaults(func=cmd_token_list)
    delete = token_commands.add_parser("revoke", help="delete a token by id")
    _add_settings_flags(delete, DATABASE_FLAGS)
    delete.add_argument("id")
    _add_json_flag(delete)
    delete.set_defaults(func=cmd_token_revoke)

    acme = commands.add_parser("acme", help="the ACME server's external account binding keys")
    acme_commands = acme.add_subparsers(dest="acme_command", required=True, metavar="ACTION")
    eab = acme_commands.add_parser("eab", help="external account binding keys")
    eab_commands = eab.add_subparsers(dest="eab_command", required=True, metavar="ACTION")
    eab_create = eab_commands.add_parser("create", help="print a new EAB key id and HMAC key once")
    _add_settings_flags(eab_create, DATABASE_FLAGS)
    eab_create.add_argument("--profile", default=None, help="the only profile accounts bound by it may order")
    _add_json_flag(eab_create)
    eab_create.set_defaults(func=cmd_acme_eab_create)

    issue = commands.add_parser("issue", help="issue locally with a key made here (for people without a CSR)")
    _add_settings_flags(issue, [*DATABASE_FLAGS, "public_url", "publication_url"])
    issue.add_argument("--cn", required=True)
    issue.add_argument("--san", action="append", default=[], help="repeatable: DNS name, IP, email or URI")
    issue.add_argument("--profile", default="client", help="client, server, peer or one from profiles.toml")
    issue.add_argument("--validity-days", type=int, default=None)
    issue.add_argument("--p12", type=Path, help="also write a password-protected PKCS#12 bundle here")
    issue.add_argument("--p12-password-file", type=Path, help="file holding the PKCS#12 password (else asked)")
    issue.add_argument("--legacy", action="store_true", help="3DES PKCS#12 for keystores that read nothing newer")
    issue.add_argument("--out-dir", type=Path, default=Path("."), help="where key.pem, cert.pem, chain.pem go")
    _add_force_flag(issue)
    _add_json_flag(issue)
    issue.set_defaults(func=cmd_issue)

    enroll = commands.add_parser("enroll", help="get a certificate from a pocketca server with a token")
    _add_client_flags(enroll, token=True)
    enroll.add_argument("--cn", required=True)
    enroll.add_argument("--san", action="append", default=[])
    enroll.add_argument("--profile", default=None)
    enroll.add_argument("--validity-days", type=int, default=None)
    enroll.add_argument("--out-dir", type=Path, default=Path("."), help="where key.pem, cert.pem, chain.pem go")
    _add_force_flag(enroll)
    enroll.set_defaults(func=cmd_enroll)

    renew = commands.add_parser(
        "renew", help="renew a certificate (over mTLS, or with a renewal token when it has no clientAuth)"
    )
    _add_client_flags(renew)
    renew.add_argument("--cert", type=Path, required=True)
    renew.add_argument("--key", type=Path, required=True)
    renew.add_argument(
        "--if-expires-within",
        type=parse_duration,
        default=None,
        metavar="DURATION",
        help="do nothing unless the certificate expires within this (e.g. 30d): for timers;"
        " with --daemon, renew when it expires within this instead of at two thirds of its life",
    )
    renew.add_argument("--validity-days", type=int, default=None, help="ask for this lifetime (profile caps)")
    renew.add_argument(
        "--daemon",
        action="store_true",
        help="keep running: renew at two thirds of the lifetime (with jitter), retry while the server is"
        " down, run --exec after each change; stops on SIGTERM",
    )
    renew.add_argument(
        "--exec",
        dest="exec_command",
        default=None,
        metavar="COMMAND",
        help="shell command to run after the files changed (e.g. 'systemctl reload app')",
    )
    renew.set_defaults(func=cmd_renew)

    revoke = commands.add_parser("revoke", help="revoke a certificate")
    _add_client_flags(revoke, token=True)
    revoke.add_argument("--cert", type=Path)
    revoke.add_argument("--key", type=Path)
    revoke.add_argument("--reason", default=None)
    revoke.add_argument("serial")
    revoke.set_defaults(func=cmd_revoke)

    bootstrap_ca = ca_commands.add_parser("bootstrap", help="fetch the CA, trusting it only if its fingerprint matches")
    _add_client_flags(bootstrap_ca)
    bootstrap_ca.add_argument(
        "--fingerprint", required=True, help="the root's SHA-256 fingerprint (hex, colons allowed)"
    )
    bootstrap_ca.add_argument("--out", type=Path, default=Path("ca.pem"), help="where to write the CA (default ca.pem)")
    _add_force_flag(bootstrap_ca, "a different CA in --out")
    bootstrap_ca.set_defaults(func=cmd_ca_bootstrap)

    certs = commands.add_parser("certs", help="issued certificates")
    certs_commands = certs.add_subparsers(dest="certs_command", required=True, metavar="ACTION")
    certs_list = certs_commands.add_parser("list", help="list issued certificates (read or admin token)")
    _add_client_flags(certs_list, token=True)
    certs_list.add_argument("--status", choices=["valid", "revoked", "expired"], default=None)
    certs_list.add_argument("--cn", default=None)
    certs_list.add_argument("--limit", type=int, default=None, help="at most this many (default: all)")
    certs_list.set_defaults(func=cmd_certs_list)
    inspect = certs_commands.add_parser("inspect", help="show a certificate: a PEM or DER file, or a serial")
    _add_client_flags(inspect, token=True)
    inspect.add_argument("what", metavar="FILE|SERIAL")
    inspect.set_defaults(func=cmd_certs_inspect)

    backup = commands.add_parser("backup", help="snapshot the database and CA material (safe while serving)")
    _add_settings_flags(backup, ["data_dir", "database_url"])
    backup.add_argument("file", type=Path)
    _add_force_flag(backup, "an existing backup FILE")
    backup.set_defaults(func=cmd_backup)
    restore = commands.add_parser("restore", help="bring a backup back (stop the service first)")
    _add_settings_flags(restore, ["data_dir", "database_url"])
    restore.add_argument("file", type=Path)
    restore.add_argument("--force", action="store_true", help="replace an existing CA and database")
    restore.set_defaults(func=cmd_restore)

    openapi = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi.set_defaults(func=cmd_openapi)
    return parser


# a reader of our output went away (`pocketca certs list | head -3`): exit quietly, as a Unix tool killed by SIGPIPE
CLOSED_PIPE = 128 + signal.SIGPIPE


def main(argv: Sequence[str] | None = None) -> int:
    # what a user reads is ours: a library's warning (cryptography on a CA bundle with a negative serial, say)
    # never reaches the terminal; the filters come back when the command is done (tests call main in-process)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            code = _run(argv)
            sys.stdout.flush()  # here, so a closed pipe is seen now and not at exit, as a traceback
        except BrokenPipeError:
            _discard_stdout()
            return CLOSED_PIPE
    return code


def _run(argv: Sequence[str] | None) -> int:
    for warning in unknown_variables(os.environ):
        print(f"pocketca: warning: {warning}", file=sys.stderr)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help, --version, or a usage error it has already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except BrokenPipeError:
        raise
    except (Exception, KeyboardInterrupt) as exc:
        failure = explain(exc, given_settings(args))
        if failure is None:
            raise
        for line in failure.lines:
            print(f"pocketca: {line}", file=sys.stderr)
        return failure.code


def _discard_stdout() -> None:
    """Python flushes stdout once more at exit; into a closed pipe that would print a traceback of its own."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # stdout is no file descriptor (captured in a test): nothing to flush later
        pass


