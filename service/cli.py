"""The `pocketca` command. A composition root: it reads Settings and wires the layers together."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import getpass
import json
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding
from pydantic import ValidationError

from service import __version__
from service.authority import Authority, LocalCaller
from service.ca.constraints import ConstraintSpec
from service.ca.csr import build_csr
from service.ca.inspect import get_sans
from service.ca.issue import issuer_id
from service.ca.keys import KEY_TYPES, PrivateKey, dump_private_key, parse_key_type
from service.ca.names import get_common_name
from service.ca.pkcs12 import MIN_PASSWORD_LENGTH, build_pkcs12
from service.errors import ConfigurationError, ServiceError
from service.keystore import write_private_file, write_public_file
from service.settings import Settings, get_settings

# `serve` flags, one per POCKETCA_* variable: (flag, Settings field, help)
SERVE_FLAGS = [
    ("--data-dir", "data_dir", "CA key and cert, server cert, SQLite database, admin token"),
    ("--database-url", "database_url", "any SQLAlchemy URL (default: SQLite in the data dir)"),
    ("--host", "host", "address to listen on (default 127.0.0.1)"),
    ("--port", "port", "port to listen on (default 8443)"),
    ("--public-url", "public_url", "base URL written into certificates (CRL, AIA, OCSP)"),
    ("--server-names", "server_names", "comma-separated names for the service's own TLS certificate"),
    ("--key-type", "key_type", f"CA key type when one is made: {', '.join(KEY_TYPES)}"),
    ("--ca-key-passphrase", "ca_key_passphrase", "encrypt the CA key with this (prefer the _FILE form)"),
    ("--ca-key-passphrase-file", "ca_key_passphrase_file", "file whose first line is the CA key passphrase"),
    (
        "--ca-key-uri",
        "ca_key_uri",
        "the CA key in a PKCS#11 token: pkcs11:token=..;object=..?module-path=..&pin-source=..",
    ),
    ("--workers", "workers", "uvicorn worker processes (default 1)"),
    ("--max-body-bytes", "max_body_bytes", "largest request body; more gets 413 (default 65536)"),
    ("--max-header-bytes", "max_header_bytes", "largest request head; more gets 431 (default 16384)"),
    ("--header-timeout", "header_timeout", "seconds a client has to send a request head (default 10)"),
    ("--body-timeout", "body_timeout", "seconds a client has to send a request body; then 408 (default 10)"),
    ("--keepalive-timeout", "keepalive_timeout", "seconds an idle keep-alive connection stays open (default 5)"),
    ("--trusted-proxies", "trusted_proxies", "addresses or networks whose client-certificate header is believed"),
    ("--client-cert-header", "client_cert_header", "header a trusted proxy forwards the certificate in"),
    (
        "--issue-rate-per-minute",
        "issue_rate_per_minute",
        "issuances per token per minute, then 429; 0: none (default 600)",
    ),
]
_DURATION = re.compile(r"^(\d+)([smhdw])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_duration(text: str) -> dt.timedelta:
    match = _DURATION.match(text.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"{text!r} is not a duration like 30m, 1h, 7d")
    return dt.timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {field: getattr(args, field, None) for _, field, _ in SERVE_FLAGS}
    return get_settings(**overrides)


def _add_settings_flags(parser: argparse.ArgumentParser, names: Sequence[str] | None = None) -> None:
    for flag, field, help_text in SERVE_FLAGS:
        if names is None or field in names:
            parser.add_argument(flag, dest=field, default=None, help=f"{help_text} [POCKETCA_{field.upper()}]")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pocketca", description="A small certificate authority for mutual TLS.")
    parser.add_argument("--version", action="version", version=f"pocketca {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the HTTPS service (makes CA, database, token on first run)")
    _add_settings_flags(serve)
    serve.set_defaults(func=cmd_serve)

    init = commands.add_parser("init", help="make a CA, or import one made with openssl")
    _add_settings_flags(init, ["data_dir", "database_url", "ca_key_passphrase", "ca_key_passphrase_file", "ca_key_uri"])
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

    ca = commands.add_parser("ca", help="the issuing CAs: rotate, list")
    ca_commands = ca.add_subparsers(dest="ca_command", required=True, metavar="ACTION")
    rotate = ca_commands.add_parser(
        "rotate", help="a new issuing intermediate; the old one keeps its CRL and OCSP (restart serve after)"
    )
    _add_settings_flags(
        rotate, ["data_dir", "database_url", "ca_key_passphrase", "ca_key_passphrase_file", "ca_key_uri"]
    )
    rotate.add_argument("--root-file", type=Path, help="the offline root file from `init --intermediate`")
    rotate.add_argument("--root-passphrase-file", type=Path, help="its passphrase (else asked on a TTY)")
    rotate.add_argument("--csr-out", type=Path, help="an external root: write the new CA's CSR here (step 1)")
    rotate.add_argument("--import-cert", type=Path, help="an external root: the signed CA certificate (step 2)")
    rotate.add_argument("--import-chain", type=Path, help="with --import-cert: its issuer first, up to the root")
    rotate.set_defaults(func=cmd_ca_rotate)
    issuers = ca_commands.add_parser("list", help="the issuing CAs, current first")
    _add_settings_flags(
        issuers, ["data_dir", "database_url", "ca_key_passphrase", "ca_key_passphrase_file", "ca_key_uri"]
    )
    issuers.set_defaults(func=cmd_ca_list)

    token = commands.add_parser("token", help="manage API tokens")
    token_commands = token.add_subparsers(dest="token_command", required=True, metavar="ACTION")
    create = token_commands.add_parser("create", help="print a new token once")
    _add_settings_flags(
        create, ["data_dir", "database_url", "ca_key_passphrase", "ca_key_passphrase_file", "ca_key_uri"]
    )
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
    create.set_defaults(func=cmd_token_create)
    listing = token_commands.add_parser("list", help="list tokens (never their secrets)")
    _add_settings_flags(
        listing, ["data_dir", "database_url", "ca_key_passphrase", "ca_key_passphrase_file", "ca_key_uri"]
    )
    listing.set_defaults(func=cmd_token_list)
    delete = token_commands.add_parser("revoke", help="delete a token by id")
    _add_settings_flags(
        delete, ["data_dir", "database_url", "ca_key_passphrase", "ca_key_passphrase_file", "ca_key_uri"]
    )
    delete.add_argument("id")
    delete.set_defaults(func=cmd_token_revoke)

    issue = commands.add_parser("issue", help="issue locally with a key made here (for people without a CSR)")
    _add_settings_flags(
        issue, ["data_dir", "database_url", "public_url", "ca_key_passphrase", "ca_key_passphrase_file", "ca_key_uri"]
    )
    issue.add_argument("--cn", required=True)
    issue.add_argument("--san", action="append", default=[], help="repeatable: DNS name, IP, email or URI")
    issue.add_argument("--profile", default="client", choices=["client", "server", "peer"])
    issue.add_argument("--validity-days", type=int, default=None)
    issue.add_argument("--p12", type=Path, help="also write a password-protected PKCS#12 bundle here")
    issue.add_argument("--p12-password-file", type=Path, help="file holding the PKCS#12 password (else asked)")
    issue.add_argument("--legacy", action="store_true", help="3DES PKCS#12 for keystores that read nothing newer")
    issue.add_argument("--out-dir", type=Path, default=Path("."))
    issue.set_defaults(func=cmd_issue)

    for name, helptext in (
        ("enroll", "get a certificate from a pocketca server with a token"),
        ("renew", "renew a certificate over mTLS"),
        ("revoke", "revoke a certificate"),
    ):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--server", required=True, help="e.g. https://ca.example:8443")
        sub.add_argument("--ca-file", type=Path, help="trust only this CA (default: the system store)")
        if name == "enroll":
            sub.add_argument("--token", required=True)
            sub.add_argument("--cn", required=True)
            sub.add_argument("--san", action="append", default=[])
            sub.add_argument("--profile", default=None)
            sub.add_argument("--validity-days", type=int, default=None)
            sub.add_argument("--out-dir", type=Path, default=Path("."))
            sub.set_defaults(func=cmd_enroll)
        elif name == "renew":
            sub.add_argument("--cert", type=Path, required=True)
            sub.add_argument("--key", type=Path, required=True)
            sub.add_argument(
                "--if-expires-within",
                type=parse_duration,
                default=None,
                metavar="DURATION",
                help="do nothing unless the certificate expires within this (e.g. 30d): for timers",
            )
            sub.add_argument(
                "--exec",
                dest="exec_command",
                default=None,
                metavar="COMMAND",
                help="shell command to run after the files changed (e.g. 'systemctl reload app')",
            )
            sub.set_defaults(func=cmd_renew)
        else:
            sub.add_argument("--token")
            sub.add_argument("--cert", type=Path)
            sub.add_argument("--key", type=Path)
            sub.add_argument("--reason", default=None)
            sub.add_argument("serial")
            sub.set_defaults(func=cmd_revoke)

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
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exit_:  # argparse: --help, --version, or a usage error it has already printed
        return exit_.code if isinstance(exit_.code, int) else 2
    try:
        return int(args.func(args) or 0)
    except ConfigurationError as exc:
        print(f"pocketca: {exc}", file=sys.stderr)
        return 2
    except ServiceError as exc:
        print(f"pocketca: {exc.detail}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        for error in exc.errors(include_input=False):
            field = ".".join(str(part) for part in error["loc"])
            print(f"pocketca: setting {field} (POCKETCA_{field.upper()}): {error['msg']}", file=sys.stderr)
        return 2
    except ValueError as exc:  # bad flag values
        print(f"pocketca: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        message = _client_failure(exc)
        if message is None:
            raise
        print(f"pocketca: {message}", file=sys.stderr)
        return 1


def _client_failure(exc: Exception) -> str | None:
    """What a client command's failure says. httpx and the client are imported only by the commands that talk
    to a server, so `pocketca serve` starts without them (bench/SPEED.md)."""
    if "service.client" not in sys.modules:
        return None
    import httpx

    from service.client import ClientError

    if isinstance(exc, ClientError):
        return str(exc)
    if isinstance(exc, httpx.HTTPError):
        return f"cannot reach the server: {exc}"
    return None


# --- server side ------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from service import bootstrap, tls

    settings = _settings(args)
    prepared = bootstrap.prepare(settings)
    if prepared.admin_token:
        print(f"Admin token (shown once; also in {prepared.paths.admin_token}):\n{prepared.admin_token}", flush=True)
    print(f"pocketca {__version__}: https://{settings.host}:{settings.port}  CA: {prepared.paths.ca_cert}", flush=True)
    tls.serve(settings)
    return 0


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
    with _local_authority(args) as authority:
        for issuer in authority.issuers.values():
            role = "current" if issuer.id == authority.issuer.id else "retired"
            until = issuer.certificate.not_valid_after_utc.isoformat(timespec="seconds")
            print(f"{issuer.id}  {role:7}  until {until}  {issuer.certificate.subject.rfc4514_string()}")
    return 0


@contextlib.contextmanager
def _local_authority(args: argparse.Namespace) -> Iterator[Authority]:
    from service import bootstrap
    from service.db import migrate

    authority = bootstrap.build_authority(_settings(args))
    try:
        if not migrate.is_current(authority.db):
            raise ConfigurationError("the database is not initialised: run `pocketca serve` once first")
        yield authority
    finally:
        authority.close()


def cmd_token_create(args: argparse.Namespace) -> int:
    with _local_authority(args) as authority:
        new = authority.create_token(
            scope=args.scope, cn=args.cn, sans=args.san, profile=args.profile, ttl=args.ttl, uses=args.uses
        )
        print(new.token)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    with _local_authority(args) as authority:
        print(f"{'ID':16}  {'SCOPE':6}  {'USES LEFT':9}  {'EXPIRES':25}  BINDING")
        for info in authority.list_tokens(caller=LocalCaller("token-list")):
            uses = "-" if info.uses_left is None else str(info.uses_left)
            expires = info.expires_at.isoformat(timespec="seconds") if info.expires_at else "never"
            binding = " ".join(filter(None, [info.cn, *info.sans, f"profile={info.profile}" if info.profile else ""]))
            print(f"{info.id:16}  {info.scope:6}  {uses:9}  {expires:25}  {binding}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with _local_authority(args) as authority:
        authority.delete_token(args.id, caller=LocalCaller("token-revoke"))
        print(f"deleted token {args.id}")
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    with _local_authority(args) as authority:
        key = ec.generate_private_key(ec.SECP256R1())
        issued = authority.issue_for_key(
            key.public_key(),
            cn=args.cn,
            sans=args.san,
            profile=args.profile,
            validity_days=args.validity_days,
            caller=LocalCaller("issue"),
        )
        out: Path = args.out_dir
        write_private_file(out / "key.pem", dump_private_key(key))
        write_public_file(out / "cert.pem", issued.certificate.public_bytes(Encoding.PEM))
        write_public_file(out / "chain.pem", b"".join(c.public_bytes(Encoding.PEM) for c in authority.chain))
        if args.p12:
            password = _p12_password(args.p12_password_file)
            bundle = build_pkcs12(
                key, issued.certificate, authority.chain, password, friendly_name=args.cn, legacy=args.legacy
            )
            write_private_file(args.p12, bundle)
        print(f"issued {issued.summary.serial} for {args.cn}; files in {out}")
    return 0


def _p12_password(path: Path | None) -> bytes:
    password = path.read_bytes().rstrip(b"\r\n") if path else getpass.getpass("PKCS#12 password: ").encode()
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigurationError(f"the PKCS#12 password must be at least {MIN_PASSWORD_LENGTH} characters")
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


def cmd_enroll(args: argparse.Namespace) -> int:
    from service.client import PocketCAClient

    key = ec.generate_private_key(ec.SECP256R1())
    csr = build_csr(key, args.cn, args.san).public_bytes(Encoding.PEM).decode()
    with PocketCAClient(args.server, ca_file=args.ca_file, token=args.token) as client:
        result = client.enroll(csr, profile=args.profile, validity_days=args.validity_days)
    _write_bundle(args.out_dir, key, result)
    print(f"enrolled {result['serial']} for {result['cn']}; files in {args.out_dir}")
    return 0


def cmd_renew(args: argparse.Namespace) -> int:
    from service.client import PocketCAClient

    current = x509.load_pem_x509_certificate(args.cert.read_bytes())
    if args.if_expires_within is not None:
        remaining = current.not_valid_after_utc - dt.datetime.now(dt.UTC)
        if remaining > args.if_expires_within:
            print(f"not due: {args.cert} expires {current.not_valid_after_utc.isoformat()}")
            return 0
    key = ec.generate_private_key(ec.SECP256R1())  # a renewal rotates the key
    csr = build_csr(key, get_common_name(current.subject) or "", list(get_sans(current)))
    with PocketCAClient(args.server, ca_file=args.ca_file, cert_file=args.cert, key_file=args.key) as client:
        result = client.renew(csr.public_bytes(Encoding.PEM).decode())
    # each file is replaced atomically (temp file, fsync, rename); the key first, so a reader that sees the
    # new certificate always finds its key
    write_private_file(args.key, dump_private_key(key))
    write_public_file(args.cert, result["certificate"].encode())
    print(f"renewed: {result['serial']} valid until {result['not_after']}")
    if args.exec_command:
        done = subprocess.run(["/bin/sh", "-c", args.exec_command], check=False)  # noqa: S603 (the operator's hook)
        if done.returncode != 0:
            print(f"pocketca: --exec command exited with {done.returncode}", file=sys.stderr)
            return 1
    return 0


def cmd_revoke(args: argparse.Namespace) -> int:
    from service.client import PocketCAClient

    if not args.token and not (args.cert and args.key):
        raise ConfigurationError("give --token, or --cert and --key")
    with PocketCAClient(
        args.server, ca_file=args.ca_file, token=args.token, cert_file=args.cert, key_file=args.key
    ) as client:
        result = client.revoke(args.serial, reason=args.reason)
    print(f"revoked {result['serial']} ({result['revocation_reason']})")
    return 0


def _write_bundle(out: Path, key: PrivateKey, result: dict[str, object]) -> None:
    write_private_file(out / "key.pem", dump_private_key(key))
    write_public_file(out / "cert.pem", str(result["certificate"]).encode())
    write_public_file(out / "chain.pem", "".join(result["chain"]).encode())  # type: ignore[arg-type]
