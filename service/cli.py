"""The `pocketca` command. A composition root: it reads Settings and wires the layers together."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import errno
import getpass
import json
import os
import re
import socket
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from service import __version__
from service.authority import Authority, LocalCaller
from service.authority.core import CLI
from service.authority.tokens import TokenManager
from service.ca.constraints import ConstraintSpec
from service.ca.csr import build_csr
from service.ca.inspect import CertificateSummary, format_serial, parse_serial, summarize
from service.ca.issue import issuer_id
from service.ca.keys import KEY_TYPES, PrivateKey, dump_private_key, parse_key_type
from service.ca.pkcs12 import MIN_PASSWORD_LENGTH, build_pkcs12
from service.db.session import Database, check_database
from service.errors import ConfigurationError
from service.failures import explain
from service.keystore import write_private_file, write_public_file
from service.settings import ClientSettings, Settings, described, flag, get_settings, unknown_variables, variable

if TYPE_CHECKING:
    from service.client import PocketCAClient

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


def _settings(args: argparse.Namespace) -> Settings:
    return get_settings(**{field: getattr(args, field, None) for field in Settings.model_fields})


def given_settings(args: argparse.Namespace) -> frozenset[str]:
    """The settings given as flags (so a bad value blames the flag, not the variable)."""
    return frozenset(field for field in Settings.model_fields if getattr(args, field, None) is not None)


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
    _add_settings_flags(init, DATABASE_FLAGS)
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
    _add_settings_flags(rotate, DATABASE_FLAGS)
    rotate.add_argument("--root-file", type=Path, help="the offline root file from `init --intermediate`")
    rotate.add_argument("--root-passphrase-file", type=Path, help="its passphrase (else asked on a TTY)")
    rotate.add_argument("--csr-out", type=Path, help="an external root: write the new CA's CSR here (step 1)")
    rotate.add_argument("--import-cert", type=Path, help="an external root: the signed CA certificate (step 2)")
    rotate.add_argument("--import-chain", type=Path, help="with --import-cert: its issuer first, up to the root")
    rotate.set_defaults(func=cmd_ca_rotate)
    issuers = ca_commands.add_parser("list", help="the issuing CAs, current first")
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
    issue.add_argument("--out-dir", type=Path, default=Path("."))
    _add_json_flag(issue)
    issue.set_defaults(func=cmd_issue)

    enroll = commands.add_parser("enroll", help="get a certificate from a pocketca server with a token")
    _add_client_flags(enroll, token=True)
    enroll.add_argument("--cn", required=True)
    enroll.add_argument("--san", action="append", default=[])
    enroll.add_argument("--profile", default=None)
    enroll.add_argument("--validity-days", type=int, default=None)
    enroll.add_argument("--out-dir", type=Path, default=Path("."))
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
    backup.set_defaults(func=cmd_backup)
    restore = commands.add_parser("restore", help="bring a backup back (stop the service first)")
    _add_settings_flags(restore, ["data_dir", "database_url"])
    restore.add_argument("file", type=Path)
    restore.add_argument("--force", action="store_true", help="replace an existing CA and database")
    restore.set_defaults(func=cmd_restore)

    openapi = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi.set_defaults(func=cmd_openapi)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    for warning in unknown_variables(os.environ):
        print(f"pocketca: warning: {warning}", file=sys.stderr)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help, --version, or a usage error it has already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except (Exception, KeyboardInterrupt) as exc:
        failure = explain(exc, given_settings(args))
        if failure is None:
            raise
        for line in failure.lines:
            print(f"pocketca: {line}", file=sys.stderr)
        return failure.code


def _print_json(document: object) -> None:
    print(json.dumps(document, indent=2, default=str))


# --- server side ------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from service import bootstrap, server

    settings = _settings(args)
    _check_listen(settings)  # before anything is made in the data dir
    prepared = bootstrap.prepare(settings)
    if prepared.admin_token:
        print(f"Admin token (shown once; also in {prepared.paths.admin_token}):\n{prepared.admin_token}", flush=True)
    publication = f"  publication: http://{settings.host}:{settings.http_port}" if settings.http_port else ""
    print(
        f"pocketca {__version__}: https://{settings.host}:{settings.port}{publication}  CA: {prepared.paths.ca_cert}",
        flush=True,
    )
    server.serve(settings)
    return 0


def _check_listen(settings: Settings) -> None:
    """That `serve` can listen where it is told, on both ports (uvicorn would log the failure and exit 3 after
    starting up); the listeners themselves are bound later, before any worker starts."""
    ports = [(settings.port, "POCKETCA_PORT/--port")]
    if settings.http_port:
        ports.append((settings.http_port, "POCKETCA_HTTP_PORT/--http-port"))
    for port, setting in ports:
        where = f"{settings.host}:{port} (POCKETCA_HOST/--host, {setting})"
        try:
            family, kind, proto, _, address = socket.getaddrinfo(settings.host, port, type=socket.SOCK_STREAM)[0]
        except OSError as exc:
            raise ConfigurationError(f"cannot listen on {where}: {exc.strerror or exc}") from None
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn binds
            try:
                probe.bind(address)
            except OSError as exc:
                hint = "; stop what uses it or choose another port" if exc.errno == errno.EADDRINUSE else ""
                raise ConfigurationError(f"cannot listen on {where}: {exc.strerror}{hint}") from None


def cmd_init(args: argparse.Namespace) -> int:
    from service import bootstrap

    settings = _settings(args)
    if bool(args.import_key) != bool(args.import_cert):
        raise ConfigurationError("--import-key and --import-cert go together")
    if args.import_chain and not args.import_key:
        raise ConfigurationError("--import-chain goes with --import-key and --import-cert")
    if args.intermediate != bool(args.root_out):
        raise ConfigurationError("--intermediate needs --root-out FILE (where the offline root goes), and back")
    if args.import_key and args.intermediate:
        raise ConfigurationError("--intermediate makes a root; --import-* takes a CA made elsewhere: choose one")
    constraints = ConstraintSpec(
        permitted_dns=tuple(args.permitted_dns),
        excluded_dns=tuple(args.excluded_dns),
        permitted_ip=tuple(args.permitted_ip),
        excluded_ip=tuple(args.excluded_ip),
        permitted_email=tuple(args.permitted_email),
        excluded_email=tuple(args.excluded_email),
    )
    if not constraints.is_empty() and not args.intermediate:
        raise ConfigurationError("name constraints go on an intermediate: add --intermediate --root-out FILE")
    if args.import_key:
        certificate = bootstrap.import_ca(settings, args.import_key, args.import_cert, chain_file=args.import_chain)
    elif args.intermediate:
        passphrase = _root_passphrase(args.root_passphrase_file, confirm=True)
        key_type = parse_key_type(args.key_type) if args.key_type else None
        certificate = bootstrap.init_intermediate(
            settings,
            args.root_out,
            passphrase,
            key_type=key_type,
            common_name=args.cn,
            constraints=constraints,
            path_length=args.path_len,
        )
        print(f"root CA in {args.root_out} (its key encrypted): keep it offline; it is needed only to rotate")
    else:
        key_type = parse_key_type(args.key_type) if args.key_type else None
        certificate = bootstrap.init_ca(settings, key_type=key_type, common_name=args.cn)
    print(f"CA {certificate.subject.rfc4514_string()} in {settings.data_dir}")
    return 0


def _root_passphrase(path: Path | None, *, confirm: bool = False) -> bytes:
    """From the file (first line), or typed on a terminal; never from the environment or a flag's value."""
    if path is not None:
        try:
            return path.read_bytes().splitlines()[0] if path.read_bytes() else b""
        except OSError as exc:
            raise ConfigurationError(f"cannot read {path}: {exc.strerror}") from None
    if not sys.stdin.isatty():
        raise ConfigurationError(
            "the root key needs a passphrase: give --root-passphrase-file FILE or run on a terminal"
        )
    passphrase = getpass.getpass("root key passphrase: ").encode()
    if confirm and getpass.getpass("again: ").encode() != passphrase:
        raise ConfigurationError("the two passphrases differ")
    return passphrase


def cmd_ca_rotate(args: argparse.Namespace) -> int:
    from service import bootstrap

    settings = _settings(args)
    modes = [bool(args.root_file), bool(args.csr_out), bool(args.import_cert)]
    if sum(modes) != 1:
        raise ConfigurationError(
            "give one of --root-file FILE (the offline root), --csr-out FILE (an external root, step 1)"
            " or --import-cert FILE (step 2)"
        )
    if args.csr_out:
        bootstrap.rotate_request(settings, args.csr_out)
        print(f"CSR for the new issuing CA in {args.csr_out}: have the root sign it (CA:TRUE, pathlen:0), then run")
        print("  pocketca ca rotate --import-cert NEW.pem --import-chain ROOT.pem")
        return 0
    if args.root_file:
        passphrase = _root_passphrase(args.root_passphrase_file)
        certificate = bootstrap.rotate_with_root(settings, args.root_file, passphrase)
    else:
        certificate = bootstrap.rotate_import(settings, args.import_cert, args.import_chain)
    print(f"issuing CA now {certificate.subject.rfc4514_string()} ({issuer_id(certificate)});")
    print("restart `pocketca serve`: new certificates come from it, the old CA keeps its CRL and OCSP")
    return 0


def cmd_ca_list(args: argparse.Namespace) -> int:
    with _local_authority(_settings(args)) as authority:
        issuers = [
            {
                "id": issuer.id,
                "role": "current" if issuer.id == authority.issuer.id else "retired",
                "subject": issuer.certificate.subject.rfc4514_string(),
                "not_after": issuer.certificate.not_valid_after_utc.isoformat(timespec="seconds"),
            }
            for issuer in authority.issuers.values()
        ]
    if args.json:
        _print_json({"items": issuers})
        return 0
    for item in issuers:
        print(f"{item['id']}  {item['role']:7}  until {item['not_after']}  {item['subject']}")
    return 0


def _check_current(db: Database) -> None:
    from service.db import migrate

    if not migrate.is_current(db):
        raise ConfigurationError("the database is not initialised: run `pocketca serve` once first")


@contextlib.contextmanager
def _local_authority(settings: Settings) -> Iterator[Authority]:
    from service import bootstrap

    check_database(settings.sqlalchemy_url)
    authority = bootstrap.build_authority(settings)
    try:
        _check_current(authority.db)
        yield authority
    finally:
        authority.close()


@contextlib.contextmanager
def _local_tokens(args: argparse.Namespace) -> Iterator[TokenManager]:
    """Token commands need the database, never the CA key."""
    from service import bootstrap

    settings = _settings(args)
    check_database(settings.sqlalchemy_url)
    tokens = bootstrap.build_token_manager(settings)
    try:
        _check_current(tokens.db)
        yield tokens
    finally:
        tokens.db.dispose()


def cmd_token_create(args: argparse.Namespace) -> int:
    with _local_tokens(args) as tokens:
        new = tokens.create(
            caller=CLI, scope=args.scope, cn=args.cn, sans=args.san, profile=args.profile, ttl=args.ttl, uses=args.uses
        )
    if args.json:
        _print_json({"token": new.token, "id": new.id, "expires_at": new.expires_at})
    else:
        print(new.token)
    return 0


def cmd_acme_eab_create(args: argparse.Namespace) -> int:
    from service.acme.accounts import Accounts

    with _local_tokens(args) as tokens:  # the database and the profiles; never the CA key
        accounts = Accounts(tokens.db, tokens.audit, tokens.profiles, tokens.clock, eab_required=False)
        key = accounts.create_eab_key(caller=LocalCaller("acme-eab"), profile=args.profile)
    if args.json:
        _print_json({"kid": key.kid, "hmac_key": key.hmac_key})
        return 0
    print(f"kid: {key.kid}\nhmac_key: {key.hmac_key}")
    print(f"(shown once) certbot --eab-kid {key.kid} --eab-hmac-key <hmac_key> ...", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    with _local_tokens(args) as tokens:
        infos = tokens.list(caller=LocalCaller("token-list"))
    if args.json:
        _print_json({"items": [dataclasses.asdict(info) for info in infos]})
        return 0
    print(f"{'ID':16}  {'SCOPE':6}  {'USES LEFT':9}  {'EXPIRES':25}  BINDING")
    for info in infos:
        uses = "-" if info.uses_left is None else str(info.uses_left)
        expires = info.expires_at.isoformat(timespec="seconds") if info.expires_at else "never"
        binding = " ".join(filter(None, [info.cn, *info.sans, f"profile={info.profile}" if info.profile else ""]))
        print(f"{info.id:16}  {info.scope:6}  {uses:9}  {expires:25}  {binding}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with _local_tokens(args) as tokens:
        tokens.delete(args.id, caller=LocalCaller("token-revoke"))
    if args.json:
        _print_json({"deleted": args.id})
    else:
        print(f"deleted token {args.id}")
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    from service import bootstrap

    settings = bootstrap.with_recorded_urls(_settings(args))  # the URLs `serve` writes, unless given here
    out: Path = args.out_dir
    password = _p12_password(args.p12_password_file) if args.p12 else None  # known good before anything is issued
    _check_writable(out, "--out-dir")
    if args.p12:
        _check_writable(args.p12.parent, "--p12")
    with _local_authority(settings) as authority:
        if args.profile not in authority.profiles:
            raise ConfigurationError(
                f"--profile {args.profile!r} is not configured; use one of {', '.join(sorted(authority.profiles))}"
            )
        key = ec.generate_private_key(ec.SECP256R1())
        issued = authority.issue_for_key(
            key.public_key(),
            cn=args.cn,
            sans=args.san,
            profile=args.profile,
            validity_days=args.validity_days,
            caller=LocalCaller("issue"),
        )
        write_private_file(out / "key.pem", dump_private_key(key))
        write_public_file(out / "cert.pem", issued.certificate.public_bytes(Encoding.PEM))
        write_public_file(out / "chain.pem", b"".join(c.public_bytes(Encoding.PEM) for c in authority.chain))
        if args.p12 and password is not None:
            bundle = build_pkcs12(
                key, issued.certificate, authority.chain, password, friendly_name=args.cn, legacy=args.legacy
            )
            write_private_file(args.p12, bundle)
    if args.json:
        _print_json({**_summary_document(issued.summary), "files": _files(out, args.p12)})
    else:
        print(f"issued {issued.summary.serial} for {args.cn}; files in {out}")
    return 0


def _check_writable(directory: Path, what: str) -> None:
    """A directory we can write to (made if missing): checked before a certificate is issued for its files."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(f"{what} {directory}: {exc.strerror}") from None
    if not os.access(directory, os.W_OK | os.X_OK):
        raise ConfigurationError(f"{what} {directory}: not writable")


def _p12_password(path: Path | None) -> bytes:
    if path is not None:
        try:
            password = path.read_bytes().rstrip(b"\r\n")
        except OSError as exc:
            raise ConfigurationError(f"--p12-password-file {path}: {exc.strerror}") from None
        source = f"--p12-password-file {path}"
    else:
        if not sys.stdin.isatty():
            raise ConfigurationError(
                "--p12 needs a password: give --p12-password-file FILE (there is no terminal to ask)"
            )
        password = getpass.getpass("PKCS#12 password: ").encode()
        source = "the PKCS#12 password"
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigurationError(f"{source}: the password must be at least {MIN_PASSWORD_LENGTH} characters")
    return password


def cmd_backup(args: argparse.Namespace) -> int:
    from service import backup

    summary = backup.backup(_settings(args), args.file)
    print(f"backed up {summary.certificates} certificates and {', '.join(summary.files)} to {summary.path}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from service import backup

    summary = backup.restore(_settings(args), args.file, force=args.force)
    print(f"restored {summary.certificates} certificates and {', '.join(summary.files)} from {summary.path}")
    return 0


def cmd_openapi(_: argparse.Namespace) -> int:
    from service.api.app import create_app

    print(json.dumps(create_app().openapi(), indent=2))
    return 0


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


def _files(out: Path, p12: Path | None = None) -> dict[str, str]:
    files = {"key": str(out / "key.pem"), "cert": str(out / "cert.pem"), "chain": str(out / "chain.pem")}
    if p12 is not None:
        files["p12"] = str(p12)
    return files


def _summary_document(summary: CertificateSummary) -> dict[str, object]:
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


def cmd_enroll(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if client.token is None:
            raise ConfigurationError("give --token (or set POCKETCA_TOKEN): enrollment needs a token")
        _check_writable(args.out_dir, "--out-dir")
        key = ec.generate_private_key(ec.SECP256R1())
        csr = build_csr(key, args.cn, args.san).public_bytes(Encoding.PEM).decode()
        result = client.enroll(csr, profile=args.profile, validity_days=args.validity_days)
    _write_bundle(args.out_dir, key, result)
    if args.json:
        _print_json({**result, "files": _files(args.out_dir)})
    else:
        print(f"enrolled {result['serial']} for {result['cn']}; files in {args.out_dir}")
    return 0


def cmd_renew(args: argparse.Namespace) -> int:
    from service import renewer
    from service.client import check_key_pair

    check_key_pair(args.cert, args.key)
    for path in (args.cert, args.key):
        _check_writable(path.parent, "--cert/--key directory")
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
                _print_json({"renewed": False, "not_after": current.not_valid_after_utc.isoformat()})
            else:
                print(f"not due: {args.cert} expires {current.not_valid_after_utc.isoformat()}")
            return 0
    result = renewer.renew_once(target)  # mTLS with clientAuth, a renewal token without
    if args.json:
        _print_json({"renewed": True, **result, "files": {"key": str(args.key), "cert": str(args.cert)}})
    else:
        print(f"renewed: {result['serial']} valid until {result['not_after']}")
    # the renewal is done and kept; the operator's hook failing is a local error (the contract's 2), said in a line
    return 2 if renewer.run_exec(args.exec_command, lambda line: print(line, file=sys.stderr)) else 0


def cmd_revoke(args: argparse.Namespace) -> int:
    with _client(args, cert_file=args.cert, key_file=args.key) as client:
        if client.token is None and not (args.cert and args.key):
            raise ConfigurationError("give --token (or set POCKETCA_TOKEN), or --cert and --key")
        result = client.revoke(args.serial, reason=args.reason)
    if args.json:
        _print_json(result)
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
    write_public_file(args.out, chain_pem.encode())
    if args.json:
        _print_json({"out": str(args.out), "subject": root.subject.rfc4514_string(), "fingerprint_sha256": found})
    else:
        print(f"wrote {args.out}: {root.subject.rfc4514_string()} (SHA-256 {found})")
    return 0


def _parse_fingerprint(text: str) -> str:
    value = text.strip().lower().removeprefix("sha256:").replace(":", "").replace(" ", "")
    if not re.fullmatch(r"[0-9a-f]{64}", value):
        raise ConfigurationError(f"--fingerprint {text!r} is not a SHA-256 fingerprint (64 hex digits, colons allowed)")
    return value


def cmd_certs_list(args: argparse.Namespace) -> int:
    with _client(args) as client:
        if client.token is None:
            raise ConfigurationError("give --token (a read or admin token; or set POCKETCA_TOKEN)")
        items = client.list_certificates(status=args.status, cn=args.cn, limit=args.limit)
    if args.json:
        _print_json({"items": items})
        return 0
    print(f"{'SERIAL':40}  {'STATUS':7}  {'PROFILE':8}  {'NOT AFTER':25}  CN")
    for item in items:
        print(
            f"{item['serial']:40}  {item['status']:7}  {item['profile']:8}  {item['not_after']:25}  {item['cn'] or ''}"
        )
    return 0


def cmd_certs_inspect(args: argparse.Namespace) -> int:
    path = Path(args.what)
    if path.exists():
        document = _summary_document(summarize(_load_certificate_file(path)))
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
        _print_json(document)
    else:
        width = max(len(k) for k in document)
        for name, value in document.items():
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
    write_private_file(out / "key.pem", dump_private_key(key))
    write_public_file(out / "cert.pem", str(result["certificate"]).encode())
    write_public_file(out / "chain.pem", "".join(result["chain"]).encode())  # type: ignore[arg-type]
