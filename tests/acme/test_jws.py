"""The JWS rules on their own: keys and algorithms our key types use, the flattened shape, no header extension
we do not understand, thumbprints, and nonces that cost no write until spent, are spent once and expire (in a real
database)."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import josepy as jose
import pytest
from acme import jws as acme_jws
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from sqlalchemy import text

from service.authority.acme import jws
from service.authority.acme.nonces import NONCE_LIFETIME, NonceStore
from service.authority.acme.problems import AcmeProblem
from service.db import migrate
from service.db.session import Database

URL = "https://ca.test/acme/new-account"


@pytest.fixture
def nonces(tmp_path: Path) -> Iterator[NonceStore]:
    db = Database(f"sqlite:///{tmp_path / 'n.db'}")
    migrate.upgrade(db)
    yield NonceStore(db, lambda: dt.datetime.now(dt.UTC))
    db.dispose()


def flattened(protected: dict[str, object], payload: bytes, sign: object) -> bytes:
    header = jws.b64encode(json.dumps(protected).encode())
    body = jws.b64encode(payload)
    signature = sign(f"{header}.{body}".encode())  # type: ignore[operator]
    return json.dumps({"protected": header, "payload": body, "signature": jws.b64encode(signature)}).encode()


def test_eddsa_requests_verify_and_their_thumbprint_is_rfc_8037s(nonces: NonceStore) -> None:
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
    nonces: NonceStore, key: jose.JWK, alg: jose.JWASignature
) -> None:
    nonce = jose.decode_b64jose(nonces.issue())
    body = acme_jws.JWS.sign(b"{}", key=key, alg=alg, nonce=nonce, url=URL).json_dumps().encode()
    verified = jws.verify_request(body, url=URL, nonces=nonces, allow_jwk=True, lookup_kid=lambda k: {})
    assert verified.jwk is not None
    assert jws.thumbprint(verified.jwk) == jose.encode_b64jose(key.public_key().thumbprint())


def test_an_es256_signature_from_the_wrong_curve_does_not_verify(nonces: NonceStore) -> None:
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


def spend(store: NonceStore, nonce: str) -> None:
    """What a request does with its nonce: accept it (jws.verify_request), then spend it before it answers."""
    with store.spending():
        assert store.accept(nonce)


def test_nonces_cost_no_write_until_spent_then_are_single_use_across_workers(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'n.db'}")
    migrate.upgrade(db)
    now = [dt.datetime.now(dt.UTC)]
    store = NonceStore(db, lambda: now[0])
    other = NonceStore(Database(f"sqlite:///{tmp_path / 'n.db'}"), lambda: now[0])  # another worker

    def spent() -> int:
        with db.reader() as session:
            return int(session.scalar(text("SELECT count(*) FROM acme_nonces")) or 0)

    issued = [store.issue() for _ in range(200)]
    assert len(set(issued)) == 200 and spent() == 0  # handed out: nothing written
    first, second = issued[:2]
    spend(other, first)  # the other worker knows the key (the database's) and spends it
    assert spent() == 1
    with pytest.raises(AcmeProblem) as replay:
        spend(store, first)
    assert replay.value.kind == "badNonce"
    now[0] += NONCE_LIFETIME + dt.timedelta(seconds=1)
    assert not store.accept(second)  # expired
    assert not store.accept("x" * 100) and not store.accept(issued[2][:-2] + "AA")  # never issued, or tampered
    store.db.dispose()
    other.db.dispose()


def test_a_refused_request_spends_its_nonce_and_a_rolled_back_write_does_not(nonces: NonceStore) -> None:
    """The nonce goes with the request's first write; if that write rolls back, the request still spends it before
    it answers, so a replay of a refused request is a replay."""
    from service.authority.acme.nonces import SpendingDatabase

    db = SpendingDatabase(nonces.db, nonces)
    nonce = nonces.issue()
    with pytest.raises(AcmeProblem), nonces.spending():
        assert nonces.accept(nonce)
        with db.transaction():
            raise AcmeProblem("malformed", "refused after the nonce was written: rolled back")
    with pytest.raises(AcmeProblem) as replay:
        spend(nonces, nonce)
    assert replay.value.kind == "badNonce"


@pytest.mark.parametrize(
    ("where", "extra"),
    [("protected", {"crit": ["exp"], "exp": 1}), ("protected", {"b64": False, "crit": ["b64"]}),
     ("protected", {"b64": True})],
    ids=["crit-exp", "b64-false", "b64-true"],
)
def test_unknown_critical_header_parameters_are_refused(
    nonces: NonceStore, where: str, extra: dict[str, object]
) -> None:
    """RFC 7515 4.1.11: a `crit` name the server does not understand fails the JWS (go-jose, under Boulder, too);
    `b64` (RFC 7797) is not supported at all."""
    key = ec.generate_private_key(ec.SECP256R1())
    jwk = jose.JWKEC(key=key).public_key().to_json()

    def sign(data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    plain = {"alg": "ES256", "jwk": jwk, "nonce": nonces.issue(), "url": URL}
    assert jws.verify_request(flattened(plain, b"{}", sign), url=URL, nonces=nonces, allow_jwk=True,
                              lookup_kid=lambda k: {}).jwk  # fmt: skip
    body = flattened({**plain, "nonce": nonces.issue(), **extra}, b"{}", sign)
    with pytest.raises(AcmeProblem) as refused:
        jws.verify_request(body, url=URL, nonces=nonces, allow_jwk=True, lookup_kid=lambda k: {})
    assert refused.value.kind == "malformed" and ("crit" in refused.value.detail or "b64" in refused.value.detail)


def test_key_change_and_eab_refuse_critical_header_parameters_too() -> None:
    """keyChange's inner JWS and the external account binding are JWSs as well: the same rule."""
    import hashlib
    import hmac

    key = ec.generate_private_key(ec.SECP256R1())
    jwk = jose.JWKEC(key=key).public_key().to_json()

    def sign(data: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")

    inner = {"alg": "ES256", "jwk": jwk, "url": URL}
    jws.verify_inner(jws.parse_jws(flattened(inner, b"{}", sign)), url=URL)  # accepted as it is
    with pytest.raises(AcmeProblem) as refused:
        jws.verify_inner(jws.parse_jws(flattened({**inner, "crit": ["exp"], "exp": 1}, b"{}", sign)), url=URL)
    assert refused.value.kind == "malformed" and "crit" in refused.value.detail

    mac_key = b"k" * 32
    payload = json.dumps(jws.public_jwk(jwk)).encode()

    def mac(data: bytes) -> bytes:
        return hmac.new(mac_key, data, hashlib.sha256).digest()

    binding = {"alg": "HS256", "kid": "eab-1", "url": URL}
    good = json.loads(flattened(binding, payload, mac))
    assert jws.verify_eab(good, url=URL, account_jwk=jws.public_jwk(jwk), hmac_key_for=lambda k: mac_key) == "eab-1"
    for extra in ({"crit": ["b64"], "b64": False}, {"b64": True}):
        bad = json.loads(flattened({**binding, **extra}, payload, mac))
        with pytest.raises(AcmeProblem) as refused:
            jws.verify_eab(bad, url=URL, account_jwk=jws.public_jwk(jwk), hmac_key_for=lambda k: mac_key)
        assert refused.value.kind == "malformed"
