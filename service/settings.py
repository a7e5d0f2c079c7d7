"""Configuration from POCKETCA_* environment variables and a .env file; `pocketca serve` flags win."""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from service.ca.keys import KeyType, parse_key_type


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="POCKETCA_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./pocketca-data")
    database_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(8443, ge=0, le=65535)
    public_url: str = "https://localhost:8443"
    server_names: Annotated[list[str], NoDecode] = ["localhost", "127.0.0.1", "::1"]
    key_type: KeyType = "p256"
    ca_key_passphrase: SecretStr | None = None
    ca_key_passphrase_file: Path | None = None
    # the CA key in a PKCS#11 token: an RFC 7512 URI (service.hsm); secret, as it may carry pin-value
    ca_key_uri: SecretStr | None = None
    workers: int = Field(1, ge=1, le=64)
    # limits (see README, "Limits")
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    max_header_bytes: int = Field(16 * 1024, ge=1024, le=1024 * 1024)
    header_timeout: float = Field(10.0, gt=0, le=600)
    body_timeout: float = Field(10.0, gt=0, le=600)
    keepalive_timeout: int = Field(5, ge=1, le=600)
    issue_rate_per_minute: int = Field(600, ge=0, le=1_000_000)
    # TLS terminated in front of us (see README, "Behind a proxy")
    trusted_proxies: Annotated[list[str], NoDecode] = []
    client_cert_header: str = Field("X-SSL-Client-Cert", pattern=r"^[A-Za-z0-9-]{1,64}$")

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_networks(cls, value: object) -> object:
        if isinstance(value, str):
            value = [n.strip() for n in value.split(",") if n.strip()]
        if isinstance(value, list):
            for network in value:
                ipaddress.ip_network(str(network), strict=False)  # ValueError names the bad entry
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

    @field_validator("public_url")
    @classmethod
    def _public_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError("must be an http(s) URL")
        return value.rstrip("/")

    @property
    def sqlalchemy_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir / 'pocketca.db'}"

    def passphrase(self) -> bytes | None:
        """The CA key passphrase, from the variable or the file (first line, newline stripped)."""
        if self.ca_key_passphrase is not None:
            return self.ca_key_passphrase.get_secret_value().encode()
        if self.ca_key_passphrase_file is not None:
            return self.ca_key_passphrase_file.read_bytes().rstrip(b"\r\n")
        return None

    def as_environment(self) -> dict[str, str]:
        """The resolved settings as POCKETCA_* variables, so spawned workers see what the flags said."""
        env = {
            "POCKETCA_DATA_DIR": str(self.data_dir.resolve()),
            "POCKETCA_HOST": self.host,
            "POCKETCA_PORT": str(self.port),
            "POCKETCA_PUBLIC_URL": self.public_url,
            "POCKETCA_SERVER_NAMES": ",".join(self.server_names),
            "POCKETCA_KEY_TYPE": self.key_type,
            "POCKETCA_WORKERS": str(self.workers),
            "POCKETCA_MAX_BODY_BYTES": str(self.max_body_bytes),
            "POCKETCA_MAX_HEADER_BYTES": str(self.max_header_bytes),
            "POCKETCA_HEADER_TIMEOUT": str(self.header_timeout),
            "POCKETCA_BODY_TIMEOUT": str(self.body_timeout),
            "POCKETCA_KEEPALIVE_TIMEOUT": str(self.keepalive_timeout),
            "POCKETCA_ISSUE_RATE_PER_MINUTE": str(self.issue_rate_per_minute),
            "POCKETCA_TRUSTED_PROXIES": ",".join(self.trusted_proxies),
            "POCKETCA_CLIENT_CERT_HEADER": self.client_cert_header,
        }
        if self.database_url:
            env["POCKETCA_DATABASE_URL"] = self.database_url
        if self.ca_key_passphrase is not None:
            env["POCKETCA_CA_KEY_PASSPHRASE"] = self.ca_key_passphrase.get_secret_value()
        if self.ca_key_passphrase_file is not None:
            env["POCKETCA_CA_KEY_PASSPHRASE_FILE"] = str(self.ca_key_passphrase_file.resolve())
        if self.ca_key_uri is not None:
            env["POCKETCA_CA_KEY_URI"] = self.ca_key_uri.get_secret_value()
        return env


def get_settings(**overrides: object) -> Settings:
    """Reads the environment now (never at import time); keyword overrides win, as flags do."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})  # type: ignore[arg-type]
