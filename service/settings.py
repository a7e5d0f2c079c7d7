"""Configuration from POCKETCA_* environment variables and a .env file; `pocketca` flags win.

Each setting is declared once, as a field of `Settings` with a description: the `pocketca serve` flag
(`--field-name`, help from the description) and the variable (`POCKETCA_FIELD_NAME`) both come from that field.
A new setting is one field here.
"""

from __future__ import annotations

import difflib
import ipaddress
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.ca.identifiers import DEFAULT_ALLOW, DEFAULT_DENY, parse_entry
from service.ca.keys import KEY_TYPES, KeyType, parse_key_type
from service.errors import ConfigurationError

PREFIX = "POCKETCA_"
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file=".env", extra="ignore")

    data_dir: Path = Field(
        Path("./pocketca-data"), description="CA key and cert, server cert, SQLite database, admin token"
    )
    database_url: str | None = Field(None, description="any SQLAlchemy URL (default: SQLite in the data dir)")
    host: str = Field("127.0.0.1", description="address to listen on")
    port: int = Field(8443, ge=0, le=65535, description="HTTPS port to listen on")
    public_url: str = Field(
        "https://localhost:8443", description="the HTTPS URL clients use; renewal tokens are addressed to <url>/csr"
    )
    # the plain-HTTP publication listener (CRL, OCSP, CA certificate) and the base new certificates point at
    http_port: int = Field(
        8080, ge=0, le=65535, description="plain-HTTP port for the CRL, OCSP and CA certificate (0: off)"
    )
    publication_url: str = Field(
        "http://localhost:8080", description="base URL written into new certificates' CRL distribution point and AIA"
    )
    server_names: Annotated[list[str], NoDecode] = Field(
        ["localhost", "127.0.0.1", "::1"], description="comma-separated names for the service's own TLS certificate"
    )
    key_type: KeyType = Field("p256", description=f"CA key type when one is made: {', '.join(KEY_TYPES)}")
    ca_key_passphrase: SecretStr | None = Field(
        None, description="encrypt the CA key with this (prefer the _FILE form)"
    )
    ca_key_passphrase_file: Path | None = Field(None, description="file whose first line is the CA key passphrase")
    # the CA key in a PKCS#11 token: an RFC 7512 URI (service.keys.pkcs11_uri); secret, as it may carry pin-value
    ca_key_uri: SecretStr | None = Field(
        None, description="the CA key in a PKCS#11 token: an RFC 7512 pkcs11: URI (prefer pin-source=file:)"
    )
    workers: int = Field(1, ge=1, le=64, description="uvicorn worker processes")
    # limits (see README, "Limits")
    max_body_bytes: int = Field(
        64 * 1024, ge=1024, le=16 * 1024 * 1024, description="largest request body; more gets 413"
    )
    max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024, description="largest request head; more gets 431")
    header_timeout: float = Field(10.0, gt=0, le=600, description="seconds a client has to send a request head")
    body_timeout: float = Field(10.0, gt=0, le=600, description="seconds a client has to send a request body; then 408")
    keepalive_timeout: int = Field(5, ge=1, le=600, description="seconds an idle keep-alive connection stays open")
    issue_rate_per_minute: int = Field(
        600, ge=0, le=1_000_000, description="issuances per token per minute, then 429; 0: no limit"
    )
    auth_failures_per_minute: int = Field(
        10,
        ge=0,
        le=1_000_000,
        description="bearer tokens and console logins naming no token we know, per client address (per worker) in a"
        " minute, then 429; 0: no limit",
    )
    # TLS terminated in front of us (see README, "Behind a proxy")
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        [], description="addresses or networks whose client-certificate, X-Forwarded-For and X-Request-Id are believed"
    )
    client_cert_header: str = Field(
        "X-SSL-Client-Cert",
        pattern=r"^[A-Za-z0-9-]{1,64}$",
        description="header a trusted proxy forwards the certificate in",
    )
    # operations (see README, "Logs and metrics")
    log_format: str = Field("text", description=f"log lines: {' or '.join(LOG_FORMATS)} (one JSON object a line)")
    log_level: str = Field("info", description=f"least severe level logged: {', '.join(LOG_LEVELS)}")
    # the ACME server (see README, "ACME")
    acme_profile: str = Field("server", description="pocketca profile of ACME orders that name none")
    acme_http_port: int = Field(80, ge=1, le=65535, description="port http-01 validation connects to")
    acme_tls_port: int = Field(443, ge=1, le=65535, description="port tls-alpn-01 validation connects to")
    acme_dns_resolver: str | None = Field(
        None, description="ip:port of the DNS server every ACME lookup uses (default: the system's)"
    )
    acme_eab_required: bool = Field(False, description="refuse ACME accounts without an external account binding")
    # what ACME identifiers may name and the validator may dial (see README, "Security"; service.ca.identifiers)
    acme_allow: Annotated[list[str], NoDecode] = Field(
        list(DEFAULT_ALLOW),
        description="comma-separated CIDRs and DNS suffixes (.corp.example) ACME identifiers and the addresses "
        "validation dials must match; default: the private networks and every DNS name",
    )
    acme_deny: Annotated[list[str], NoDecode] = Field(
        list(DEFAULT_DENY),
        description="comma-separated CIDRs and DNS suffixes they must not match, unless an allow entry is more "
        "specific; default: the special-purpose blocks (loopback, link-local, ...) and localhost",
    )
    # ACME rate limits, in a sliding window of 3 hours (Boulder's numbers; see README, "ACME")
    acme_accounts_per_address: int = Field(
        10, ge=0, le=1_000_000, description="new ACME accounts per client address in 3 hours, then 429; 0: no limit"
    )
    acme_orders_per_account: int = Field(
        300, ge=0, le=1_000_000, description="new ACME orders per account in 3 hours, then 429; 0: no limit"
    )
    acme_orders_per_address: int = Field(
        300, ge=0, le=1_000_000, description="new ACME orders per client address in 3 hours, then 429; 0: no limit"
    )

    @field_validator("acme_dns_resolver")
    @classmethod
    def _resolver(cls, value: str | None) -> str | None:
        if value:
            host, sep, port = value.rpartition(":")
            try:
                ipaddress.ip_address((host if sep else value).strip("[]"))
                if sep:
                    int(port)
            except ValueError:
                raise ValueError("must be an IP address and port, such as 127.0.0.1:53") from None
        return value or None

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [n.strip() for n in value.split(",") if n.strip()]
        if isinstance(value, list):
            for network in value:
                ipaddress.ip_network(str(network), strict=False)  # ValueError names the bad entry
        return value

    @field_validator("acme_allow", "acme_deny", mode="before")
    @classmethod
    def _split_entries(cls, value: object) -> object:
        if isinstance(value, str):
            value = [entry.strip() for entry in value.split(",") if entry.strip()]
        if isinstance(value, list):
            for entry in value:
                parse_entry(str(entry))  # ValueError names the bad entry
        return value

    @field_validator("server_names", mode="before")
    @classmethod
    def _split_names(cls, value: object) -> object:
        if isinstance(value, str):
            return [name.strip() for name in value.split(",") if name.strip()]
        return value

    @field_validator("key_type", mode="before")
    @classmethod
    def _key_type(cls, value: object) -> object:
        if isinstance(value, str):
            return parse_key_type(value)
        return value

    @field_validator("public_url", "publication_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str | None) -> str | None:
        return normalize_database_url(value) if value else value

    @field_validator("log_format")
    @classmethod
    def _log_format(cls, value: str) -> str:
        return _one_of(value, LOG_FORMATS)

    @field_validator("log_level")
    @classmethod
    def _log_level(cls, value: str) -> str:
        return _one_of(value, LOG_LEVELS)

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'pocketca.db'}"

    def passphrase(self) -> bytes | None:
        """The CA key passphrase, from the variable or the file (first line, newline stripped)."""
        if self.ca_key_passphrase is not None:
            return self.ca_key_passphrase.get_secret_value().encode()
        if self.ca_key_passphrase_file is not None:
            path = self.ca_key_passphrase_file
            try:
                return path.read_bytes().rstrip(b"\r\n")
            except OSError as exc:
                raise ConfigurationError(
                    f"cannot read the CA key passphrase file {path} (POCKETCA_CA_KEY_PASSPHRASE_FILE, "
                    f"--ca-key-passphrase-file): {exc.strerror}"
                ) from None
        return None


class ClientSettings(BaseSettings):
    """Defaults for the client commands' --server, --token and --ca-file (flags win)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, env_file=".env", extra="ignore")

    server: str | None = Field(None, description="the pocketca server, e.g. https://ca.example:8443")
    token: SecretStr | None = Field(None, description="bearer token for the client commands")
    ca_file: Path | None = Field(None, description="trust only this CA file (default: the system store)")


def _one_of(value: str, choices: tuple[str, ...]) -> str:
    if value.lower() not in choices:
        raise ValueError(f"use one of {', '.join(choices)}")
    return value.lower()


def variable(field: str) -> str:
    return PREFIX + field.upper()


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def normalize_database_url(url: str) -> str:
    """`postgres://` and `postgresql://` (as Heroku, libpq and many tools write them) mean the psycopg 3 driver
    pocketca ships with; SQLAlchemy would otherwise look for psycopg2 (or fail on `postgres`)."""
    for scheme in ("postgres://", "postgresql://"):
        if url.startswith(scheme):
            return "postgresql+psycopg://" + url.removeprefix(scheme)
    return url


KNOWN_VARIABLES = frozenset(variable(name) for model in (Settings, ClientSettings) for name in model.model_fields)
# not settings, but read by pocketca: the test suite's own variables
_IGNORED_PREFIXES = ("POCKETCA_TEST_",)


def unknown_variables(environ: Mapping[str, str], extra_known: Iterable[str] = ()) -> list[str]:
    """One warning per POCKETCA_* variable that is not a setting, naming the closest known one."""
    known = KNOWN_VARIABLES | set(extra_known)
    warnings = []
    for name in sorted(environ):
        if not name.startswith(PREFIX) or name in known or name.startswith(_IGNORED_PREFIXES):
            continue
        close = difflib.get_close_matches(name, sorted(known), n=1, cutoff=0.6)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{name} is not a pocketca setting and is ignored{hint}")
    return warnings


def get_settings(**overrides: object) -> Settings:
    """Reads the environment now (never at import time); keyword overrides win, as flags do."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]


def described(model: type[BaseModel]) -> dict[str, str]:
    """field -> description, for flags and docs."""
    return {name: info.description or "" for name, info in model.model_fields.items()}
