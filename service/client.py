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
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from service.ca.keys import public_keys_match
from service.errors import ConfigurationError, UnreachableError

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
        """Every file is checked here, each failure naming its file (ConfigurationError), before any request."""
        if not server.startswith(("https://", "http://")):
            raise ConfigurationError(f"--server {server!r} (POCKETCA_SERVER) is not a URL like https://ca.example:8443")
        if ca_file is not None:
            check_ca_file(Path(ca_file))
        if cert_file is not None:
            check_key_pair(Path(cert_file), Path(key_file) if key_file is not None else None)
        try:
            if ca_file is not None:
                context = build_client_context(ca_file, cert_file, key_file)
            else:
                context = ssl.create_default_context()
                if cert_file is not None:
                    context.load_cert_chain(str(cert_file), str(key_file) if key_file else None, password=_no_prompt)
        except ssl.SSLError as exc:  # what the checks above did not foresee
            raise ConfigurationError(f"cannot use {ca_file or ''} {cert_file or ''}: {exc.reason or exc}") from None
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.token = token
        self.server = server.rstrip("/")
        self.ca_file = ca_file
        self.cert_file = cert_file
        self._http = httpx.Client(base_url=self.server, verify=context, headers=headers, timeout=timeout)

    def __enter__(self) -> PocketCAClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise UnreachableError(self._explain(exc)) from exc
        if response.is_error:
            try:
                problem = response.json()
            except ValueError:
                problem = {"title": response.reason_phrase, "detail": response.text[:200]}
            raise ClientError(response.status_code, problem)
        return response

    def _explain(self, exc: httpx.TransportError) -> str:
        """Cannot connect, TLS verification failed, and our certificate not accepted, told apart."""
        where = self.server
        verify = _find(exc, ssl.SSLCertVerificationError)
        if verify is not None:
            trust = f"the CA in {self.ca_file}" if self.ca_file else "the system's CAs (give --ca-file)"
            return (
                f"TLS verification of {where} failed: {verify.verify_message}; the server's certificate is not "
                f"trusted by {trust}; get the right CA with `pocketca ca bootstrap` or check the URL's host name"
            )
        tls = _find(exc, ssl.SSLError)
        if tls is not None:
            reason = str(tls.reason or tls).lower()
            if self.cert_file is not None and "alert" in reason:
                return (
                    f"{where} did not accept the client certificate {self.cert_file} ({tls.reason}): "
                    "it must be a current certificate issued by this pocketca"
                )
            return f"TLS with {where} failed: {tls.reason or tls}"
        if isinstance(exc, httpx.TimeoutException):
            return f"{where} did not answer in time ({type(exc).__name__}); is the URL right and the server up?"
        if self.cert_file is not None and isinstance(exc, (httpx.ReadError, httpx.RemoteProtocolError)):
            return f"{where} closed the connection: it did not accept the client certificate {self.cert_file}"
        cause = exc.__cause__ or exc.__context__ or exc
        return f"cannot connect to {where}: {cause}; is the server running and the URL right?"

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

    def list_certificates(
        self, *, status: str | None = None, cn: str | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """GET /certs, following the cursor until `limit` items (or all of them)."""
        items: list[dict[str, Any]] = []
        params: dict[str, Any] = {k: v for k, v in {"status": status, "cn": cn}.items() if v is not None}
        while True:
            params["limit"] = min(1000, limit - len(items)) if limit else 1000
            page = self._call("GET", "/certs", params=params).json()
            items.extend(page["items"])
            if not page.get("next_cursor") or (limit and len(items) >= limit):
                return items
            params["cursor"] = page["next_cursor"]

    def get_certificate(self, serial: str) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", f"/certs/{serial}").json()
        return result

    def get_ca(self) -> str:
        return self._call("GET", "/ca").text

    def whoami(self) -> dict[str, Any]:
        result: dict[str, Any] = self._call("GET", "/whoami").json()
        return result


def _no_prompt(*_: object) -> bytes:
    raise ConfigurationError("the key file is encrypted: give an unencrypted key")


def _find(exc: BaseException, kind: type[BaseException]) -> Any:
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return None
        if isinstance(seen, kind):
            return seen
        seen = seen.__cause__ or seen.__context__
    return None


def check_ca_file(path: Path) -> list[x509.Certificate]:
    """A readable PEM file holding at least one certificate."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"--ca-file {path} (POCKETCA_CA_FILE): {exc.strerror}") from None
    try:
        certificates = x509.load_pem_x509_certificates(data)
    except ValueError:
        raise ConfigurationError(
            f"--ca-file {path} holds no PEM certificate; fetch the CA with "
            "`pocketca ca bootstrap --server URL --fingerprint SHA256 --out ca.pem`"
        ) from None
    return certificates


def check_key_pair(cert_file: Path, key_file: Path | None) -> None:
    """A PEM certificate and the unencrypted PEM key that belongs to it."""
    try:
        cert_data = cert_file.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"--cert {cert_file}: {exc.strerror}") from None
    try:
        certificate = x509.load_pem_x509_certificate(cert_data)
    except ValueError:
        raise ConfigurationError(f"--cert {cert_file} is not a PEM certificate") from None
    key_path = key_file or cert_file
    try:
        key_data = key_path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"--key {key_path}: {exc.strerror}") from None
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        raise ConfigurationError(
            f"--key {key_path} is encrypted; give the unencrypted key (`openssl pkey -in {key_path} -out plain.key`)"
        ) from None
    except ValueError:
        raise ConfigurationError(f"--key {key_path} is not a PEM private key") from None
    if not public_keys_match(key.public_key(), certificate.public_key()):  # type: ignore[arg-type]
        raise ConfigurationError(f"--key {key_path} is not the key of the certificate {cert_file}")


def fetch_ca_unverified(server: str, *, timeout: float = 30.0) -> str:
    """GET /ca without verifying the server (there is nothing to verify it with yet): the caller must check the
    root's fingerprint before trusting what came back."""
    if not server.startswith(("https://", "http://")):
        raise ConfigurationError(f"--server {server!r} (POCKETCA_SERVER) is not a URL like https://ca.example:8443")
    try:
        response = httpx.get(server.rstrip("/") + "/ca", verify=False, timeout=timeout)  # noqa: S501 (fingerprint)
    except httpx.TransportError as exc:
        cause = exc.__cause__ or exc.__context__ or exc
        raise UnreachableError(
            f"cannot connect to {server}: {cause}; is the server running and the URL right?"
        ) from None
    if response.is_error:
        raise ClientError(response.status_code, {"title": response.reason_phrase, "detail": response.text[:200]})
    return response.text


def build_client_context(
    ca_file: Path | str, cert_file: Path | str | None = None, key_file: Path | str | None = None
) -> ssl.SSLContext:
    """What httpx clients use: trust only our CA, optionally present a client certificate."""
    context = ssl.create_default_context(cafile=str(ca_file))
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file is not None:
        context.load_cert_chain(str(cert_file), str(key_file) if key_file is not None else None)
    return context
