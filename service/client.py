"""The httpx client that automation and the `pocketca enroll/renew/revoke` commands use.

It trusts only the CA file it is given (or the system store when none is), and presents a client
certificate through an SSLContext (`load_cert_chain`, then `verify=context`): httpx 0.28 deprecates
`cert=`, and `verify="ca.pem"` together with `cert=` silently sends no certificate.
"""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx

from service.tls import build_client_context

PEM_CHAIN = "application/pem-certificate-chain"


class ClientError(Exception):
    """The server refused: carries the HTTP status and the problem+json body."""

    def __init__(self, status: int, problem: dict[str, Any]) -> None:
        self.status = status
        self.problem = problem
        super().__init__(f"{status} {problem.get('title', '')}: {problem.get('detail', '')}".strip())


class PocketCAClient:
    def __init__(
        self,
        server: str,
        *,
        ca_file: Path | str | None = None,
        cert_file: Path | str | None = None,
        key_file: Path | str | None = None,
        token: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if ca_file is not None:
            context = build_client_context(ca_file, cert_file, key_file)
        else:
            context = ssl.create_default_context()
            if cert_file is not None:
                context.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=server.rstrip("/"), verify=context, headers=headers, timeout=timeout)

    def __enter__(self) -> PocketCAClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self._http.request(method, path, **kwargs)
        if response.is_error:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text[:200]}
            raise ClientError(response.status_code, problem)
        return response

    def enroll(self, csr_pem: str, *, profile: str | None = None, validity_days: int | None = None) -> dict[str, Any]:
        """POST /csr with the bearer token; returns the contract's JSON (serial, certificate, chain, ...)."""
        body: dict[str, Any] = {"csr": csr_pem}
        if profile is not None:
            body["profile"] = profile
        if validity_days is not None:
            body["validity_days"] = validity_days
        result: dict[str, Any] = self._call("POST", "/csr", json=body).json()
        return result

    def renew(self, csr_pem: str, *, validity_days: int | None = None) -> dict[str, Any]:
        """POST /csr over mTLS without a token: the client certificate is the credential."""
        return self.enroll(csr_pem, validity_days=validity_days)

    def revoke(self, serial: str, *, reason: str | None = None) -> dict[str, Any]:
        result: dict[str, Any] = self._call("POST", f"/certs/{serial}/revoke", json={"reason": reason}).json()
        return result

    def get_ca(self) -> str:
        return self._call("GET", "/ca").text

    def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/whoami").json()
        return result
