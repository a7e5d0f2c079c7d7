"""Key types: making them, naming them, refusing weak ones, and storing them (optionally encrypted)."""

from __future__ import annotations

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import dsa, ec, ed448, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from service.ca.keys import (
    KEY_TYPES,
    KeyType,
    PrivateKey,
    check_public_key,
    describe_public_key,
    dump_private_key,
    generate_private_key,
    key_violations,
    load_private_key,
    parse_key_type,
    public_keys_match,
    signature_hash,
)
from service.errors import ConfigurationError, PolicyError

PASSPHRASE = b"correct horse battery staple"


@pytest.fixture(scope="module")
def keys() -> dict[str, PrivateKey]:
    """One key of each type for the whole module: RSA-4096 takes a second to make."""
    return {key_type: generate_private_key(key_type) for key_type in KEY_TYPES}  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def dsa_key() -> dsa.DSAPrivateKey:
    return dsa.generate_private_key(key_size=1024)


def rsa_public_key(bits: int, exponent: int = 65537) -> rsa.RSAPublicKey:
    """An RSA public key of exactly `bits` bits without the cost of finding primes (only its size matters)."""
    modulus = (1 << (bits - 1)) | (1 << 64) | 1
    return rsa.RSAPublicNumbers(exponent, modulus).public_key()


def test_the_six_key_types_are_the_contracts() -> None:
    assert set(KEY_TYPES) == {"p256", "p384", "rsa2048", "rsa3072", "rsa4096", "ed25519"}


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_generated_key_is_of_the_requested_type(keys: dict[str, PrivateKey], key_type: str) -> None:
    key = keys[key_type]
    assert describe_public_key(key.public_key()) == key_type
    assert key_violations(key.public_key()) == []


def test_generated_keys_have_the_expected_shape(keys: dict[str, PrivateKey]) -> None:
    p256, p384 = keys["p256"], keys["p384"]
    assert isinstance(p256, ec.EllipticCurvePrivateKey) and isinstance(p256.curve, ec.SECP256R1)
    assert isinstance(p384, ec.EllipticCurvePrivateKey) and isinstance(p384.curve, ec.SECP384R1)
    assert isinstance(keys["ed25519"], ed25519.Ed25519PrivateKey)
    for bits in (2048, 3072, 4096):
        key = keys[f"rsa{bits}"]
        assert isinstance(key, rsa.RSAPrivateKey)
        assert key.key_size == bits
        assert key.public_key().public_numbers().e == 65537


def test_generated_keys_are_fresh() -> None:
    first, second = generate_private_key("p256"), generate_private_key("p256")
    assert not public_keys_match(first.public_key(), second.public_key())


@pytest.mark.parametrize(
    ("key_type", "expected"),
    [("p256", hashes.SHA256), ("p384", hashes.SHA384), ("rsa2048", hashes.SHA256), ("ed25519", type(None))],
)
def test_signature_hash_follows_the_key(keys: dict[str, PrivateKey], key_type: str, expected: type) -> None:
    assert isinstance(signature_hash(keys[key_type]), expected)


@pytest.mark.parametrize(("text", "expected"), [("p256", "p256"), ("P-384", "p384"), (" RSA-2048 ", "rsa2048")])
def test_parse_key_type_accepts_spellings(text: str, expected: KeyType) -> None:
    assert parse_key_type(text) == expected


@pytest.mark.parametrize("text", ["dsa", "p521", "rsa1024", "", "ed448"])
def test_parse_key_type_refuses_others(text: str) -> None:
    with pytest.raises(ValueError, match="unknown key type"):
        parse_key_type(text)


# --- describing and refusing public keys --------------------------------------------------------------


def test_describe_public_key_names_other_curves_and_kinds() -> None:
    assert describe_public_key(ec.generate_private_key(ec.SECP521R1()).public_key()) == "p521"
    assert describe_public_key(ec.generate_private_key(ec.SECP256K1()).public_key()) == "unsupported:secp256k1"
    assert describe_public_key(rsa_public_key(3000)) == "rsa3000"
    assert describe_public_key(ed448.Ed448PrivateKey.generate().public_key()).startswith("unsupported:")


@pytest.mark.parametrize(
    "public_key",
    [
        pytest.param(ec.generate_private_key(ec.SECP256R1()).public_key(), id="p256"),
        pytest.param(ec.generate_private_key(ec.SECP384R1()).public_key(), id="p384"),
        pytest.param(ec.generate_private_key(ec.SECP521R1()).public_key(), id="p521"),
        pytest.param(ed25519.Ed25519PrivateKey.generate().public_key(), id="ed25519"),
        pytest.param(rsa_public_key(2048), id="rsa2048"),
        pytest.param(rsa_public_key(8192), id="rsa8192"),
    ],
)
def test_acceptable_keys_have_no_violations(public_key: CertificatePublicKeyTypes) -> None:
    assert key_violations(public_key) == []
    check_public_key(public_key)  # does not raise


def test_real_rsa_2048_key_is_accepted() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert key_violations(key.public_key()) == []


@pytest.mark.parametrize("bits", [1024, 1536, 2047])
def test_small_rsa_keys_are_refused(bits: int) -> None:
    problems = key_violations(rsa_public_key(bits))
    assert len(problems) == 1
    assert f"{bits} bits" in problems[0] and "2048" in problems[0]


def test_real_rsa_1024_key_is_refused() -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    with pytest.raises(PolicyError) as caught:
        check_public_key(key.public_key())
    assert caught.value.violations == key_violations(key.public_key())
    assert "1024" in caught.value.detail


def test_huge_rsa_key_is_refused() -> None:
    problems = key_violations(rsa_public_key(8200))
    assert len(problems) == 1 and "8200" in problems[0]


def test_small_rsa_exponent_is_refused() -> None:
    key = rsa.generate_private_key(public_exponent=3, key_size=2048)
    problems = key_violations(key.public_key())
    assert len(problems) == 1 and "exponent" in problems[0]


def test_every_rsa_problem_is_reported() -> None:
    problems = key_violations(rsa_public_key(1024, exponent=3))
    assert len(problems) == 2
    assert any("1024" in p for p in problems) and any("exponent" in p for p in problems)


def test_dsa_key_is_refused(dsa_key: dsa.DSAPrivateKey) -> None:
    key = dsa_key
    problems = key_violations(key.public_key())
    assert len(problems) == 1 and "DSA" in problems[0]
    with pytest.raises(PolicyError):
        check_public_key(key.public_key())


@pytest.mark.parametrize("curve", [ec.SECP192R1(), ec.SECP256K1(), ec.SECP224R1()], ids=lambda c: c.name)
def test_unknown_curves_are_refused(curve: ec.EllipticCurve) -> None:
    problems = key_violations(ec.generate_private_key(curve).public_key())
    assert problems == [f"key type {curve.name} is not accepted"]


def test_ed448_is_refused() -> None:
    assert len(key_violations(ed448.Ed448PrivateKey.generate().public_key())) == 1


# --- storing private keys -----------------------------------------------------------------------------


@pytest.mark.parametrize("key_type", KEY_TYPES)
def test_plain_round_trip(keys: dict[str, PrivateKey], key_type: str) -> None:
    key = keys[key_type]
    pem = dump_private_key(key)
    assert pem.startswith(b"-----BEGIN PRIVATE KEY-----\n")
    loaded = load_private_key(pem)
    assert type(loaded) is type(key)
    assert public_keys_match(loaded.public_key(), key.public_key())


@pytest.mark.parametrize("key_type", ["p256", "rsa2048", "ed25519"])
def test_encrypted_round_trip(keys: dict[str, PrivateKey], key_type: str) -> None:
    key = keys[key_type]
    pem = dump_private_key(key, PASSPHRASE)
    assert pem.startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----\n")
    assert pem != dump_private_key(key)
    loaded = load_private_key(pem, PASSPHRASE)
    assert public_keys_match(loaded.public_key(), key.public_key())


def test_encrypted_key_is_really_encrypted(keys: dict[str, PrivateKey]) -> None:
    pem = dump_private_key(keys["p256"], PASSPHRASE)
    with pytest.raises(TypeError):  # cryptography itself cannot read it without the passphrase
        serialization.load_pem_private_key(pem, password=None)


def test_wrong_passphrase_is_a_configuration_error(keys: dict[str, PrivateKey]) -> None:
    pem = dump_private_key(keys["p256"], PASSPHRASE)
    with pytest.raises(ConfigurationError, match="passphrase") as caught:
        load_private_key(pem, b"not the passphrase")
    assert "not the passphrase" not in str(caught.value)


def test_missing_passphrase_is_a_configuration_error(keys: dict[str, PrivateKey]) -> None:
    with pytest.raises(ConfigurationError, match="passphrase"):
        load_private_key(dump_private_key(keys["p256"], PASSPHRASE))


def test_passphrase_for_a_plain_key_is_a_configuration_error(keys: dict[str, PrivateKey]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_private_key(dump_private_key(keys["p256"]), PASSPHRASE)
    assert PASSPHRASE.decode() not in str(caught.value)


@pytest.mark.parametrize("data", [b"", b"garbage", b"-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"])
def test_garbage_is_a_configuration_error(data: bytes) -> None:
    with pytest.raises(ConfigurationError):
        load_private_key(data)


def test_traditional_openssl_forms_load(keys: dict[str, PrivateKey]) -> None:
    for key_type, header in (("rsa2048", b"RSA PRIVATE KEY"), ("p256", b"EC PRIVATE KEY")):
        key = keys[key_type]
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()
        )
        assert header in pem
        assert public_keys_match(load_private_key(pem).public_key(), key.public_key())


def test_a_dsa_private_key_cannot_be_a_ca_key(dsa_key: dsa.DSAPrivateKey) -> None:
    pem = dsa_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(ConfigurationError, match="not supported"):
        load_private_key(pem)


def test_public_keys_match_tells_keys_apart(keys: dict[str, PrivateKey]) -> None:
    assert public_keys_match(keys["p256"].public_key(), keys["p256"].public_key())
    assert not public_keys_match(keys["p256"].public_key(), keys["p384"].public_key())
    assert not public_keys_match(keys["rsa2048"].public_key(), keys["rsa3072"].public_key())
