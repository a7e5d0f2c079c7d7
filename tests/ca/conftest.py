"""A throwaway SCEP PKI for the pure SCEP tests: a P-256 CA (pocketca's default) and an RSA CA, each with an RSA
RA certificate made by service.ca, and a device enrolling."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from service.ca.issue import build_ca_certificate
from service.ca.keys import KeyType, PrivateKey, generate_private_key, signature_hash
from service.ca.scep_ra import build_ra_builder
from service.ca.scep_types import RegistrationAuthority
from tests.ca.scep_device import Device
from tests.helpers import now


@dataclass(frozen=True)
class ScepPki:
    ca_key: PrivateKey
    ca: x509.Certificate
    ra: RegistrationAuthority

    @property
    def ra_certificate(self) -> x509.Certificate:
        return self.ra.certificate


def make_scep_pki(key_type: KeyType = "p256", cn: str = "SCEP test CA") -> ScepPki:
    ca_key = generate_private_key(key_type)
    ca = build_ca_certificate(ca_key, cn, now=now(), lifetime=dt.timedelta(days=30))
    ra_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    builder = build_ra_builder(ra_key.public_key(), f"{cn} RA", ca, now=now(), lifetime=dt.timedelta(days=30))
    return ScepPki(ca_key, ca, RegistrationAuthority(builder.sign(ca_key, signature_hash(ca_key)), ra_key))


@pytest.fixture(scope="session")
def scep_pki() -> ScepPki:
    return make_scep_pki()


@pytest.fixture(scope="session")
def scep_rsa_pki() -> ScepPki:
    return make_scep_pki("rsa2048", "SCEP RSA CA")


@pytest.fixture(scope="session")
def other_pki() -> ScepPki:
    """Another CA and RA: envelopes for it are not ours."""
    return make_scep_pki(cn="other SCEP CA")


@pytest.fixture(scope="session")
def device() -> Device:
    return Device(cn="device-1")
