"""Which PKCS#11 token holds a CA key, named by an RFC 7512 `pkcs11:` URI:

    pkcs11:token=pocketca;object=ca?module-path=/usr/lib/softhsm/libsofthsm2.so&pin-source=file:/etc/pocketca/pin

The PIN comes from `pin-source` (a file: it never shows in a process list) or `pin-value`; it is never logged, never
in an error, and never in this object's repr. Reading a URI needs no python-pkcs11 (the hsm extra).
"""

from __future__ import annotations

import importlib.util
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from service.errors import ConfigurationError

DEFAULT_OBJECT = "pocketca-ca"
MISSING_EXTRA = (
    "POCKETCA_CA_KEY_URI names a PKCS#11 token, and that needs python-pkcs11: install the hsm extra, "
    "pip install 'pocketca[hsm]'"
)


def require_pkcs11() -> None:
    """ConfigurationError (one line naming the extra) when python-pkcs11, the hsm extra, is not installed."""
    if importlib.util.find_spec("pkcs11") is None:
        raise ConfigurationError(MISSING_EXTRA)


@dataclass(frozen=True)
class Pkcs11URI:
    module_path: str
    token: str | None = None
    object: str | None = None
    id: bytes | None = None
    pin_source: str | None = None
    pin_value: str | None = field(default=None, repr=False)

    def pin(self) -> str | None:
        if self.pin_value is not None:
            return self.pin_value
        if self.pin_source is None:
            return None
        source = self.pin_source.removeprefix("file://").removeprefix("file:")
        try:
            return Path(source).read_text().splitlines()[0] if Path(source).stat().st_size else ""
        except OSError as exc:
            raise ConfigurationError(f"cannot read the PKCS#11 PIN from {source}: {exc.strerror}") from None

    def redacted(self) -> str:
        """The URI as it may be shown: every attribute but the PIN's value."""
        path = ";".join(
            f"{k}={urllib.parse.quote(v, safe='')}"
            for k, v in (("token", self.token), ("object", self.object))
            if v is not None
        )
        if self.id is not None:
            path += (";" if path else "") + "id=" + "".join(f"%{b:02x}" for b in self.id)
        query = [("module-path", self.module_path)]
        if self.pin_source is not None:
            query.append(("pin-source", self.pin_source))
        return f"pkcs11:{path}?" + "&".join(f"{k}={urllib.parse.quote(v, safe='/:')}" for k, v in query)


def parse_pkcs11_uri(text: str) -> Pkcs11URI:
    """RFC 7512: path attributes `token`, `object`, `id` (percent-encoded), query `module-path`, `pin-source`,
    `pin-value`. ValueError names what is wrong (never the PIN)."""
    if not text.startswith("pkcs11:"):
        raise ValueError("a PKCS#11 key URI starts with pkcs11: (RFC 7512)")
    body = text.removeprefix("pkcs11:")
    path, _, query = body.partition("?")
    attributes: dict[str, bytes] = {}
    for part in filter(None, path.split(";")):
        name, equals, value = part.partition("=")
        if not equals:
            raise ValueError(f"PKCS#11 URI: {name!r} has no value")
        attributes[name] = urllib.parse.unquote_to_bytes(value)
    queries: dict[str, str] = {}
    for part in filter(None, query.split("&")):
        name, equals, value = part.partition("=")
        if not equals:
            raise ValueError(f"PKCS#11 URI: {name!r} has no value")
        queries[name] = urllib.parse.unquote(value)
    unknown = (set(attributes) - {"token", "object", "id", "type"}) | (
        set(queries) - {"module-path", "pin-source", "pin-value"}
    )
    if unknown:
        raise ValueError(f"PKCS#11 URI: unsupported attributes {', '.join(sorted(unknown))}")
    if "module-path" not in queries:
        raise ValueError("PKCS#11 URI: module-path=/path/to/the/pkcs11/module.so is required")
    if "token" not in attributes:
        raise ValueError("PKCS#11 URI: token=LABEL is required")
    if "pin-source" in queries and "pin-value" in queries:
        raise ValueError("PKCS#11 URI: give pin-source or pin-value, not both")
    return Pkcs11URI(
        module_path=queries["module-path"],
        token=attributes["token"].decode(),
        object=attributes["object"].decode() if "object" in attributes else None,
        id=attributes.get("id"),
        pin_source=queries.get("pin-source"),
        pin_value=queries.get("pin-value"),
    )
