"""The server-side commands: they work on the data dir and the database."""

from __future__ import annotations

import argparse
import dataclasses
import getpass
import json
import sys
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from service import __version__
from service.authority import LocalCaller
from service.authority.core import CLI
from service.ca.constraints import ConstraintSpec
from service.ca.inspect import format_time
from service.ca.issue import issuer_id
from service.ca.keys import dump_private_key, parse_key_type
from service.ca.pkcs12 import MIN_PASSWORD_LENGTH, build_pkcs12
from service.cli.common import (
    check_new_files,
    check_writable,
    files_document,
    print_json,
    settings_from,
    summary_document,
)
from service.datadir.build import local_authority, local_tokens
from service.errors import ConfigurationError
from service.keys.files import write_private_file, write_public_file

# --- server side ------------------------------------------------------------------------------------


def cmd_serve(args: argparse.Namespace) -> int:
    from service.datadir.issuers import KeyAccess
    from service.datadir.prepare import prepare
    from service.serving import listeners, server

    settings = settings_from(args)
    host, port, http_port = settings.host, settings.port, settings.http_port
    bound = listeners.bind(host, port, http_port)  # before anything is made in the data dir
    try:
        prepared = prepare(settings, KeyAccess.from_settings(settings))  # the passphrase read once for all of it
        paths, token = prepared.paths, prepared.admin_token
        if token:
            print(f"Admin token (shown once; also in {paths.admin_token}):\n{token}", flush=True)
        publication = f"  publication: http://{host}:{http_port}" if http_port else ""
        print(f"pocketca {__version__}: https://{host}:{port}{publication}  CA: {paths.ca_cert}", flush=True)
        server.serve(settings, bound)
    finally:
        bound.close()
    return 0


def cmd_init(args: argparse.Namespace) -> int:
    from service.datadir import ceremony, offline_root

    settings = settings_from(args)
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
        certificate = ceremony.import_ca(settings, args.import_key, args.import_cert, chain_file=args.import_chain)
    elif args.intermediate:
        passphrase = _root_passphrase(args.root_passphrase_file, confirm=True)
        key_type = parse_key_type(args.key_type) if args.key_type else None
        certificate = offline_root.init_intermediate(
            settings,
            args.root_out,
            passphrase,
            key_type=key_type,
            common_name=args.cn,
            constraints=constraints,
            path_length=args.path_len,
        )
        print(f"root CA in {args.root_out} (its key encrypted): keep it offline; it is needed to rotate and to sign")
        print(f"its CRL (`pocketca ca crl`); the intermediate names {settings.publication_url} for both")
    else:
        key_type = parse_key_type(args.key_type) if args.key_type else None
        certificate = ceremony.init_ca(settings, key_type=key_type, common_name=args.cn)
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
    from service.datadir import rotation
    from service.datadir.urls import with_recorded_urls

    settings = with_recorded_urls(settings_from(args))  # the intermediate's CRL address: serve's
    modes = [bool(args.root_file), bool(args.csr_out), bool(args.import_cert)]
    if sum(modes) != 1:
        raise ConfigurationError(
            "give one of --root-file FILE (the offline root), --csr-out FILE (an external root, step 1)"
            " or --import-cert FILE (step 2)"
        )
    if args.csr_out:
        rotation.rotate_request(settings, args.csr_out)
        print(f"CSR for the new issuing CA in {args.csr_out}: have the root sign it (CA:TRUE, pathlen:0), then run")
        print("  pocketca ca rotate --import-cert NEW.pem --import-chain ROOT.pem")
        return 0
    if args.root_file:
        passphrase = _root_passphrase(args.root_passphrase_file)
        certificate = rotation.rotate_with_root(settings, args.root_file, passphrase)
    else:
        certificate = rotation.rotate_import(settings, args.import_cert, args.import_chain)
    print(f"issuing CA now {certificate.subject.rfc4514_string()} ({issuer_id(certificate)});")
    print("restart `pocketca serve`: new certificates come from it, the old CA keeps its CRL and OCSP")
    return 0


def cmd_ca_crl(args: argparse.Namespace) -> int:
    from service.datadir.offline_root import sign_root_crl

    passphrase = _root_passphrase(args.root_passphrase_file)
    signed = sign_root_crl(
        settings_from(args),
        args.root_file,
        passphrase,
        revoke=args.revoke,
        reason=args.reason,
        next_update_days=args.next_update,
    )
    revoked = [format(entry.serial_number, "x") for entry in signed.crl]
    document = {
        "root": signed.root_id,
        "number": signed.number,
        "revoked": revoked,
        "next_update": signed.crl.next_update_utc.isoformat() if signed.crl.next_update_utc else None,
        "file": str(signed.path),
    }
    if args.json:
        print_json(document)
        return 0
    print(f"root CRL {signed.number} of {signed.root.subject.rfc4514_string()} ({signed.root_id}) in {signed.path}:")
    print(f"  {len(revoked)} revoked, next update {document['next_update']};")
    print(f"  served at once at /crl/{signed.root_id} (copy {signed.path.parent.name}/ to every replica's data dir)")
    return 0


def cmd_ca_list(args: argparse.Namespace) -> int:
    with local_authority(settings_from(args)) as authority:
        issuers = [
            {
                "id": issuer.id,
                "role": "current" if issuer.id == authority.issuer.id else "retired",
                "subject": issuer.certificate.subject.rfc4514_string(),
                "not_after": format_time(issuer.certificate.not_valid_after_utc),
            }
            for issuer in authority.issuers.values()
        ]
        issuers += [
            {
                "id": root_id,
                "role": "root",
                "subject": root.subject.rfc4514_string(),
                "not_after": root.not_valid_after_utc.isoformat(timespec="seconds"),
            }
            for root_id, (root, _) in authority.root_crls.roots.items()
        ]
    if args.json:
        print_json({"items": issuers})
        return 0
    for item in issuers:
        print(f"{item['id']}  {item['role']:7}  until {item['not_after']}  {item['subject']}")
    return 0


def cmd_token_create(args: argparse.Namespace) -> int:
    with local_tokens(settings_from(args)) as tokens:
        new = tokens.create(
            caller=CLI, scope=args.scope, cn=args.cn, sans=args.san, profile=args.profile, ttl=args.ttl, uses=args.uses
        )
    if args.json:
        print_json({"token": new.token, "id": new.id, "expires_at": new.expires_at})
    else:
        print(new.token)
    return 0


def cmd_acme_eab_create(args: argparse.Namespace) -> int:
    from service.authority.acme.accounts import Accounts

    with local_tokens(settings_from(args)) as tokens:  # the database and the profiles; never the CA key
        accounts = Accounts(tokens.db, tokens.audit, tokens.profiles, tokens.clock, eab_required=False)
        key = accounts.create_eab_key(caller=LocalCaller("acme-eab"), profile=args.profile)
    if args.json:
        print_json({"kid": key.kid, "hmac_key": key.hmac_key})
        return 0
    print(f"kid: {key.kid}\nhmac_key: {key.hmac_key}")
    print(f"(shown once) certbot --eab-kid {key.kid} --eab-hmac-key <hmac_key> ...", file=sys.stderr)
    return 0


def cmd_token_list(args: argparse.Namespace) -> int:
    with local_tokens(settings_from(args)) as tokens:
        infos = tokens.list(caller=LocalCaller("token-list"))
    if args.json:
        print_json({"items": [{**dataclasses.asdict(info), "kind": info.kind} for info in infos]})
        return 0
    print(f"{'ID':16}  {'KIND':10}  {'USES LEFT':9}  {'EXPIRES':20}  BINDING")
    for info in infos:
        uses = "-" if info.uses_left is None else str(info.uses_left)
        expires = format_time(info.expires_at) if info.expires_at else "never"
        binding = " ".join(filter(None, [info.cn, *info.sans, f"profile={info.profile}" if info.profile else ""]))
        print(f"{info.id:16}  {info.kind:10}  {uses:9}  {expires:20}  {binding}")
    return 0


def cmd_token_revoke(args: argparse.Namespace) -> int:
    with local_tokens(settings_from(args)) as tokens:
        tokens.delete(args.id, caller=LocalCaller("token-revoke"))
    if args.json:
        print_json({"deleted": args.id})
    else:
        print(f"deleted token {args.id}")
    return 0


def cmd_issue(args: argparse.Namespace) -> int:
    from service.datadir.urls import with_recorded_urls

    settings = with_recorded_urls(settings_from(args))  # the URLs `serve` writes, unless given here
    out: Path = args.out_dir
    # nothing is issued before the files are known to be writable, and none would be replaced unasked
    check_new_files([Path(f) for f in files_document(out).values()], force=args.force, instead="--out-dir DIR")
    if args.p12:
        check_new_files([args.p12], force=args.force, instead="another --p12 FILE")
    password = _p12_password(args.p12_password_file) if args.p12 else None  # known good before anything is issued
    check_writable(out, "--out-dir")
    if args.p12:
        check_writable(args.p12.parent, "--p12")
    with local_authority(settings) as authority:
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
        out.mkdir(parents=True, exist_ok=True)  # only now: a refusal above leaves no empty directory behind
        write_private_file(out / "key.pem", dump_private_key(key))
        write_public_file(out / "cert.pem", issued.certificate.public_bytes(Encoding.PEM))
        write_public_file(out / "chain.pem", b"".join(c.public_bytes(Encoding.PEM) for c in authority.chain))
        if args.p12 and password is not None:
            bundle = build_pkcs12(
                key, issued.certificate, authority.chain, password, friendly_name=args.cn, legacy=args.legacy
            )
            write_private_file(args.p12, bundle)
    if args.json:
        print_json({**summary_document(issued.summary), "files": files_document(out, args.p12)})
    else:
        print(f"issued {issued.summary.serial} for {args.cn}; files in {out}")
    return 0




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
        if len(password) >= MIN_PASSWORD_LENGTH and getpass.getpass("again: ").encode() != password:
            raise ConfigurationError("the two PKCS#12 passwords differ; nothing was issued")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigurationError(f"{source}: the password must be at least {MIN_PASSWORD_LENGTH} characters")
    return password


def cmd_backup(args: argparse.Namespace) -> int:
    from service.datadir import backup

    check_new_files([args.file], force=args.force, instead="another FILE")  # an older backup may hold an older CA key
    summary = backup.backup(settings_from(args), args.file)
    print(f"backed up {summary.certificates} certificates and {', '.join(summary.files)} to {summary.path}")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from service.datadir import backup

    summary = backup.restore(settings_from(args), args.file, force=args.force)
    print(f"restored {summary.certificates} certificates and {', '.join(summary.files)} from {summary.path}")
    return 0


def cmd_openapi(_: argparse.Namespace) -> int:
    from service.app import create_app

    print(json.dumps(create_app().openapi(), indent=2))
    return 0


