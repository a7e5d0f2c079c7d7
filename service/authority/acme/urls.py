"""The ACME resource URLs, all under `<base>/acme/`, built from the URL the client used (as in the directory)."""

from __future__ import annotations

from dataclasses import dataclass

PREFIX = "/acme"


@dataclass(frozen=True)
class Urls:
    base: str  # scheme://host[:port], no trailing slash

    def _u(self, path: str) -> str:
        return f"{self.base}{PREFIX}/{path}"

    @property
    def directory(self) -> str:
        return self._u("directory")

    @property
    def new_nonce(self) -> str:
        return self._u("new-nonce")

    @property
    def new_account(self) -> str:
        return self._u("new-account")

    @property
    def new_order(self) -> str:
        return self._u("new-order")

    @property
    def revoke_cert(self) -> str:
        return self._u("revoke-cert")

    @property
    def key_change(self) -> str:
        return self._u("key-change")

    @property
    def renewal_info(self) -> str:
        return self._u("renewal-info")

    def account(self, account_id: str) -> str:
        return self._u(f"account/{account_id}")

    def account_id(self, kid: str) -> str | None:
        prefix = self._u("account/")
        rest = kid.removeprefix(prefix)
        return rest if kid.startswith(prefix) and rest and "/" not in rest else None

    def orders(self, account_id: str) -> str:
        return self._u(f"account/{account_id}/orders")

    def order(self, order_id: str) -> str:
        return self._u(f"order/{order_id}")

    def finalize(self, order_id: str) -> str:
        return self._u(f"order/{order_id}/finalize")

    def authorization(self, authz_id: str) -> str:
        return self._u(f"authz/{authz_id}")

    def challenge(self, challenge_id: str) -> str:
        return self._u(f"chall/{challenge_id}")

    def certificate(self, serial: str) -> str:
        return self._u(f"cert/{serial}")
