"""The JWS rules on their own: keys and algorithms our key types use, the flattened shape, thumbprints, and
nonces that are single use and expire (in a real database)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import josepy as jose
import pytest
from acme import jws as acme_jws
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from service.acme import jws
from service.acme.problems import AcmeProblem
from service.db import migrate
from service.db.session import Database

URL = "https://ca.test/acme/new-account"


@pytest.fixture
def nonces(tmp_path: Path) -> Iterator[jws.NonceStore]:
    db = Database(f"sqlite:///{tmp_path / 'n.db'}")
    migrate.upgrade(db)
    yield jws.NonceStore(db, lambda: dt.datetime.now(dt.UTC))
    db.dispose()


def flattened(protected: dict[str, object], payload: bytes, sign: object) -> bytes:
    header = jws.b64encode(json.dumps(protected).encode())
    body = jws.b64encode(payload)
    signature = sign(f"{header}.{body}".encode())  # type: ignore[operator]
    return json.dumps({"protected": header, "payload": body, "signature": jws.b64encode(signature)}).encode()


def test_eddsa_requests_verify_and_their_thumbprint_is_rfc_8037s(nonces: jws.NonceStore) -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    jwk = {"kty": "OKP", "crv": "Ed25519", "x": jws.b64encode(key.public_key().public_bytes_raw())}
    body = flattened({"alg": "EdDSA", "jwk": jwk, "nonce": nonces.issue(), "url": URL}, b"{}", key.sign)
    verified = jws.verify_request(body, url=URL, nonces=nonces, allow_jwk=True, lookup_kid=lambda k: {})
    assert verified.jwk == jwk and verified.payload() == {}
    # RFC 8037 appendix A.3
    example = {"crv": "Ed25519", "kty": "OKP", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}
    assert jws.thumbprint(example) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


@pytest.mark.parametrize(
    ("key", "alg"),
    [
        (jose.JWKEC(key=ec.generate_private_key(ec.SECP384R1())), jose.ES384),
        (jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1())), jose.ES256),
        (jose.JWKRSA(key=rsa.generate_private_key(65537, 2048)), jose.RS256),
    ],
    ids=["ES384", "ES256", "RS256"],
)
def test_es384_es256_and_rs256_verify_with_josepys_thumbprint(
    nonces: jws.NonceStore, key: jose.JWK, alg: jose.JWASignature
) -> None:
    nonce = jose.decode_b64jose(nonces.issue())
    body = acme_jws.JWS.sign(b"{}", key=key, alg=alg, nonce=nonce, url=URL).json_dumps().encode()
    verified = jws.verify_request(body, url=URL, nonces=nonces, allow_jwk=True, lookup_kid=lambda k: {})
    assert verified.jwk is not None
    assert jws.thumbprint(verified.jwk) == jose.encode_b64jose(key.public_key().thumbprint())


def test_an_es256_signature_from_the_wrong_curve_does_not_verify(nonces: jws.NonceStore) -> None:
    key = jose.JWKEC(key=ec.generate_private_key(ec.SECP384R1()))
    nonce = jose.decode_b64jose(nonces.issue())
    body = json.loads(acme_jws.JWS.sign(b"{}", key=key, alg=jose.ES384, nonce=nonce, url=URL).json_dumps())
    header = json.loads(jws.b64decode(body["protected"], "h"))
    body["protected"] = jws.b64encode(json.dumps({**header, "alg": "ES256"}).encode())
    with pytest.raises(AcmeProblem) as refused:
        jws.verify_request(json.dumps(body).encode(), url=URL, nonces=nonces, allow_jwk=True, lookup_kid=lambda k: {})
    assert refused.value.kind == "malformed" and "signature" in refused.value.detail


@pytest.mark.parametrize(
    ("jwk", "says"),
    [
        (jose.JWKRSA(key=rsa.generate_private_key(65537, 1024)).public_key().to_json(), "2048"),
        (jose.JWKEC(key=ec.generate_private_key(ec.SECP521R1())).public_key().to_json(), "P-256 or P-384"),
        (jose.JWKEC(key=ec.generate_private_key(ec.SECP256R1())).to_json(), "never send a private key"),
        ({"kty": "oct", "k": "c2VjcmV0"}, "private key"),
        ({"kty": "OKP", "crv": "X25519", "x": "AAAA"}, "Ed25519"),
        ({"kty": "EC", "crv": "P-256", "x": "AAAA", "y": "AAAA"}, "not a valid public key"),
    ],
    ids=["rsa1024", "p521", "private-ec", "oct", "x25519", "off-curve"],
)
def test_weak_private_and_foreign_keys_are_bad_public_keys(jwk: dict[str, object], says: str) -> None:
    with pytest.raises(AcmeProblem) as refused:
        jws.load_jwk(jwk)
    assert refused.value.kind == "badPublicKey" and says in refused.value.detail


@pytest.mark.parametrize(
    "document",
    [
        {"protected": "e30", "payload": "", "signature": "", "header": {"alg": "none"}},
        {"payload": "", "signatures": []},
        {"protected": "e30=", "payload": "", "signature": ""},
        ["not", "an", "object"],
    ],
    ids=["unprotected-header", "general-serialization", "padded", "array"],
)
def test_only_the_flattened_serialization_is_accepted(document: object) -> None:
    with pytest.raises(AcmeProblem) as refused:
        jws.parse_jws(json.dumps(document).encode())
    assert refused.value.kind == "malformed"


def test_nonces_are_single_use_and_expire(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'n.db'}")
    migrate.upgrade(db)
    now = [dt.datetime.now(dt.UTC)]
    store = jws.NonceStore(db, lambda: now[0])
    other = jws.NonceStore(Database(f"sqlite:///{tmp_path / 'n.db'}"), lambda: now[0])  # another worker
    first, second = store.issue(), store.issue()
    assert first != second
    assert other.consume(first) and not store.consume(first)
    now[0] += jws.NONCE_LIFETIME + dt.timedelta(seconds=1)
    assert not store.consume(second)
    assert not store.consume("x" * 100)
    store.db.dispose()
    other.db.dispose()
