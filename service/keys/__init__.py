"""Signers: the CA key in a PEM file (file_key.FileKeyStore) or in a PKCS#11 token (pkcs11_key.Pkcs11KeyStore),
behind one interface that signs for the caller and never hands out the key."""

from __future__ import annotations

from typing import Protocol

from service.ca.issue import Signer


class KeyStore(Signer, Protocol):
    """A Signer that holds a resource (a token session) until it is closed; closing twice is harmless."""

    def close(self) -> None: ...
