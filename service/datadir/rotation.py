"""Rotation: a new issuing intermediate takes the current one's place, which retires to issuers/<issuer id>/ and
keeps answering (CRL, OCSP) until its last certificate expires. The new one is signed by the offline root
(`--root-file`), or by an external root in two steps: a CSR out (`--csr-out`), its certificate in (`--import-cert`).
"""

from __future__ import annotations

from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID

from service.authority import utcnow
from service.ca.constraints import name_constraints_of
from service.ca.issue import build_intermediate_builder, issuer_id
from service.ca.keys import (
    KeyType,
    PrivateKey,
    generate_private_key,
    load_private_key,
    public_keys_match,
    signature_hash,
)
from service.ca.names import get_common_name
from service.datadir.issuers import (
    KeyAccess,
    ca_problems,
    load_ca,
    read_certificate,
    read_chain,
    token_store,
    write_issuer_certificates,
)
from service.datadir.layout import DataPaths, exclusive, load_parents
from service.datadir.offline_root import INTERMEDIATE_LIFETIME, read_root_file
from service.datadir.schema import upgrade
from service.db.session import Database
from service.errors import CACheckError, ConfigurationError, NoCAError
from service.keys.file_key import FileKeyStore
from service.keys.files import write_private_file, write_public_file
from service.settings import Settings


def rotate_with_root(settings: Settings, root_file: Path, root_passphrase: bytes) -> x509.Certificate:
    """A new issuing intermediate signed by the offline root; the old issuer retires (see `_install_issuer`)."""
    root_key, root = read_root_file(root_file, root_passphrase)
    paths = DataPaths(settings.data_dir)
    keys = KeyAccess.from_settings(settings)
    current, parents = _current_certificates(paths)
    if parents[-1] != root:
        raise ConfigurationError(f"{root_file} is not the root of the current issuing CA")
    if len(parents) != 1:
        raise ConfigurationError("the current CA's issuer is not the root: rotate with --csr-out for that issuer")
    key: PrivateKey | str
    if paths.ca_key_in_token.exists():  # the new key in the same token, as a new object
        label = f"pocketca-ca-{utcnow():%Y%m%d%H%M%S}"
        store = token_store(keys, create=_key_type_of(current), label=label)
        public_key = store.public_key()
        key = store.uri.redacted()
        store.close()
    else:
        key = generate_private_key(_key_type_of(current))
        public_key = key.public_key()
    basic = current.extensions.get_extension_for_class(x509.BasicConstraints).value
    builder = build_intermediate_builder(
        public_key,
        _next_name(get_common_name(current.subject) or "pocketca issuing CA"),
        parents[0],
        now=utcnow(),
        lifetime=INTERMEDIATE_LIFETIME,
        path_length=basic.path_length,
        name_constraints=name_constraints_of(current),
        publication_url=settings.publication_url,
    )
    certificate = builder.sign(root_key, signature_hash(root_key))
    _install_issuer(settings, keys, paths, key, certificate, parents)
    return certificate


def rotate_request(settings: Settings, csr_out: Path) -> Path:
    """Step one with an external root: a new key (kept in the data dir) and a CSR for the root's owner to sign."""
    paths = DataPaths(settings.data_dir)
    if paths.ca_key_in_token.exists():
        raise ConfigurationError("the CA key is in a PKCS#11 token: rotate with --root-file (a CSR is not supported)")
    if (paths.pending / "ca.key").exists():  # its CSR may be with the root's owner: its key is never replaced
        raise ConfigurationError(
            f"a rotation is already pending ({paths.pending / 'ca.csr'}): finish it with"
            f" `pocketca ca rotate --import-cert NEW.pem`, or remove {paths.pending} to start again"
        )
    current, _ = _current_certificates(paths)
    key = generate_private_key(_key_type_of(current))
    common_name = _next_name(get_common_name(current.subject) or "pocketca issuing CA")
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, signature_hash(key))
    )
    with exclusive(paths):
        FileKeyStore.create(paths.pending / "ca.key", key, KeyAccess.from_settings(settings).passphrase)
        write_public_file(paths.pending / "ca.csr", csr.public_bytes(Encoding.PEM))
    write_public_file(csr_out, csr.public_bytes(Encoding.PEM))
    return csr_out


def rotate_import(settings: Settings, cert_file: Path, chain_file: Path | None) -> x509.Certificate:
    """Step two: the certificate the external root signed for the pending key becomes the issuing CA."""
    paths = DataPaths(settings.data_dir)
    if not (paths.pending / "ca.key").exists():
        raise ConfigurationError("no rotation is pending: run `pocketca ca rotate --csr-out FILE` first")
    keys = KeyAccess.from_settings(settings)
    key = load_private_key((paths.pending / "ca.key").read_bytes(), keys.passphrase)
    certificate = read_certificate(cert_file)
    _, current_parents = _current_certificates(paths)
    parents = read_chain(chain_file) if chain_file is not None else current_parents
    problems = ca_problems(certificate, parents)
    if not public_keys_match(key.public_key(), certificate.public_key()):
        problems.append("the certificate is not for the pending key (from `pocketca ca rotate --csr-out`)")
    if problems:
        raise CACheckError("rotate to", problems)
    _install_issuer(settings, keys, paths, key, certificate, parents)
    for name in ("ca.key", "ca.csr"):
        (paths.pending / name).unlink(missing_ok=True)
    return certificate


def _current_certificates(paths: DataPaths) -> tuple[x509.Certificate, list[x509.Certificate]]:
    if not paths.ca_cert.exists():
        raise NoCAError(paths.root, "run `pocketca init` first")

    current = x509.load_pem_x509_certificate(paths.ca_cert.read_bytes())
    parents = load_parents(paths.root)
    if not parents:
        raise ConfigurationError(
            "this CA is a self-signed root, not an intermediate: rotation needs `pocketca init --intermediate`"
            " or an imported intermediate (--import-chain)"
        )
    return current, parents


def _key_type_of(certificate: x509.Certificate) -> KeyType:
    key = certificate.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        return "p384" if key.curve.name == "secp384r1" else "p256"
    if isinstance(key, rsa.RSAPublicKey):
        return "rsa4096" if key.key_size >= 4096 else "rsa3072" if key.key_size >= 3072 else "rsa2048"
    return "ed25519"


def _next_name(common_name: str) -> str:
    head, _, number = common_name.rpartition(" ")
    return f"{head} {int(number) + 1}" if head and number.isdigit() else f"{common_name} 2"


def _install_issuer(
    settings: Settings,
    keys: KeyAccess,
    paths: DataPaths,
    key: PrivateKey | str,
    certificate: x509.Certificate,
    parents: list[x509.Certificate],
) -> None:
    """The current issuer moves to issuers/<id>/ (it keeps its CRL and OCSP); the new one takes its place. Rows
    from before issuers are first given to the old one. A running service picks this up when restarted."""
    with exclusive(paths):
        store, old = load_ca(settings, keys)
        store.close()
        db = Database(settings.sqlalchemy_url)
        try:
            with db.lock("bootstrap"):
                upgrade(db, old)
        finally:
            db.dispose()
        retired = paths.issuers / issuer_id(old)
        retired.mkdir(parents=True, exist_ok=True, mode=0o700)
        paths.issuers.chmod(0o700)
        for name in ("ca.key", "ca.key.pkcs11", "ca.pem", "chain.pem"):
            if (paths.root / name).exists():
                write_private_file(retired / name, (paths.root / name).read_bytes())
                if name != "ca.key":
                    (retired / name).chmod(0o644)
        if isinstance(key, str):  # a token object, named by its URI (no PIN)
            write_public_file(paths.ca_key_in_token, (key + "\n").encode())
            paths.ca_key.unlink(missing_ok=True)
        else:
            FileKeyStore.create(paths.ca_key, key, keys.passphrase)
            paths.ca_key_in_token.unlink(missing_ok=True)
        write_issuer_certificates(paths.root, certificate, parents)
