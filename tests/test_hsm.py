"""PKCS#11 key URIs (RFC 7512) and the key store against a real SoftHSM2 token (signatures checked by openssl in
tests/e2e/test_hsm_live.py; here by cryptography, for every key type the store accepts)."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp

from service.ca.crl import build_crl_der, encode_revoked_entry
from service.ca.issue import build_root_builder, issuer_id
from service.ca.ocsp import OCSPAnswer, OCSPQuestion, build_ocsp_response, responder_key_hash
from service.datadir.build import build_authority
from service.datadir.offline_root import init_intermediate
from service.datadir.prepare import prepare
from service.datadir.rotation import rotate_with_root
from service.errors import ConfigurationError
from service.keys.pkcs11_key import Pkcs11KeyStore
from service.keys.pkcs11_uri import parse_pkcs11_uri

PIN = "unit-pin-Qx7"  # letters too: digits alone turn up in timestamps and paths

MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def test_uri_attributes_and_the_pin_never_shown(tmp_path: Path) -> None:
    pin = tmp_path / "pin"
    pin.write_text("4711\n")
    uri = parse_pkcs11_uri(f"pkcs11:token=my%20token;object=ca;id=%01%02?module-path={MODULE}&pin-source=file:{pin}")
    assert (uri.token, uri.object, uri.id, uri.module_path) == ("my token", "ca", b"\x01\x02", MODULE)
    assert uri.pin() == "4711"
    secret = parse_pkcs11_uri(f"pkcs11:token=t?module-path={MODULE}&pin-value=99887766")
    assert secret.pin() == "99887766"
    assert "99887766" not in secret.redacted() and "99887766" not in repr(secret)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("token=t", "starts with pkcs11:"),
        ("pkcs11:token=t", "module-path"),
        (f"pkcs11:object=x?module-path={MODULE}", "token=LABEL is required"),
        (f"pkcs11:token=t;slot=1?module-path={MODULE}", "unsupported attributes slot"),
        (f"pkcs11:token=t?module-path={MODULE}&pin-value=1&pin-source=/p", "not both"),
    ],
)
def test_bad_uris_say_what_is_wrong(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_pkcs11_uri(text)


@pytest.fixture
def token(tmp_path: Path) -> Iterator[Path]:
    if shutil.which("softhsm2-util") is None or not Path(MODULE).exists():
        pytest.skip("softhsm2 is not installed")
    (tmp_path / "tokens").mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'tokens'}\nlog.level = ERROR\n")
    old = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "unit", "--pin", PIN, "--so-pin", "12345678"],
        check=True, capture_output=True, timeout=30,
    )  # fmt: skip
    (tmp_path / "pin").write_text(PIN + "\n")
    yield tmp_path / "pin"
    if old is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = old


@pytest.mark.parametrize("key_type", ["p256", "p384", "rsa2048"])
def test_the_token_signs_certificates_crls_and_ocsp(token: Path, key_type: str) -> None:
    uri = parse_pkcs11_uri(f"pkcs11:token=unit;object={key_type}?module-path={MODULE}&pin-source=file:{token}")
    with pytest.raises(ConfigurationError, match="`pocketca init --key-uri` makes it"):
        Pkcs11KeyStore(uri)  # not there, and not asked to make it
    store = Pkcs11KeyStore(uri, create=key_type)  # type: ignore[arg-type]
    try:
        assert PIN not in repr(store)
        now = dt.datetime.now(dt.UTC)
        ca = store.sign_certificate(build_root_builder(store.public_key(), "hsm", now=now, lifetime=dt.timedelta(1)))
        ca.verify_directly_issued_by(ca)  # the token's signature over cryptography's own TBS
        assert ca.signature_hash_algorithm is not None
        assert ca.signature_hash_algorithm.name == ("sha384" if key_type == "p384" else "sha256")
        entry = encode_revoked_entry("1f", "2026-01-01 00:00:00", "keyCompromise")
        crl = x509.load_der_x509_crl(
            build_crl_der(store, ca, [entry], number=7, this_update=now, next_update=now + dt.timedelta(days=1))
        )
        assert crl.is_signature_valid(ca.public_key()) and crl.get_revoked_certificate_by_serial_number(0x1F)  # type: ignore[arg-type]
        question = OCSPQuestion(0x1F, b"\x00" * 20, responder_key_hash(ca), "sha1", None)
        answer = ocsp.load_der_ocsp_response(
            build_ocsp_response(store, ca, question, OCSPAnswer("good"), this_update=now, next_update=now)
        )
        assert answer.responder_key_hash == responder_key_hash(ca)
        public = ca.public_key()
        if key_type.startswith("rsa"):
            from cryptography.hazmat.primitives.asymmetric import padding, rsa

            assert isinstance(public, rsa.RSAPublicKey)
            public.verify(answer.signature, answer.tbs_response_bytes, padding.PKCS1v15(), hashes.SHA256())
        else:
            from cryptography.hazmat.primitives.asymmetric import ec

            assert isinstance(public, ec.EllipticCurvePublicKey)
            public.verify(answer.signature, answer.tbs_response_bytes, ec.ECDSA(answer.signature_hash_algorithm))  # type: ignore[arg-type]
    finally:
        store.close()
    again = Pkcs11KeyStore(uri)  # found the second time, after a close (the module starts afresh)
    assert again.public_key() == store.public_key()
    again.close()


def test_rotation_with_the_key_in_the_token(token: Path, tmp_path: Path) -> None:
    """`ca rotate --root-file` makes the next issuing key in the same token, as a new object; the retired
    issuer's key stays there and keeps signing its CRL and OCSP."""
    from tests.conftest import make_settings

    key_uri = f"pkcs11:token=unit;object=issuing?module-path={MODULE}&pin-source=file:{token}"
    settings = make_settings(tmp_path / "data", ca_key_uri=key_uri)
    root = tmp_path / "root.pem"
    first = init_intermediate(settings, root, b"correct horse")
    assert not (tmp_path / "data" / "ca.key").exists()
    prepare(settings)  # the server certificate, signed in the token by the first issuer
    second = rotate_with_root(settings, root, b"correct horse")
    marker = (tmp_path / "data" / "ca.key.pkcs11").read_text()
    assert "object=pocketca-ca-" in marker and PIN not in marker
    prepare(settings)  # re-issues the server certificate from the second issuer
    authority = build_authority(settings)
    try:
        assert list(authority.issuers) == [issuer_id(second), issuer_id(first)]
        assert all(isinstance(i.signer, Pkcs11KeyStore) for i in authority.issuers.values())
        from cryptography.hazmat.primitives.asymmetric import ec as ec_keys

        issued = authority.issue_for_key(
            ec_keys.generate_private_key(ec_keys.SECP256R1()).public_key(), cn="leaf", sans=["leaf.example"]
        )
        issued.certificate.verify_directly_issued_by(second)
        old = x509.load_der_x509_crl(authority.issuer_crl(issuer_id(first)).der)
        assert old.issuer == first.subject and old.is_signature_valid(first.public_key())  # type: ignore[arg-type]
    finally:
        authority.close()
