"""Imports point one way: `service/ca/` is pure X.509 and knows nothing of HTTP, SQL or settings.

Its one outside library besides cryptography is the ASN.1 library the protocols' encodings need (pyasn1 and
pyasn1-modules: SCEP's CMS structures)."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

CA_PACKAGE = Path(__file__).resolve().parent.parent / "service" / "ca"


def imported_modules(source: str, package: str) -> set[str]:
    """Every module a source file imports, anywhere in it (functions, `if TYPE_CHECKING:` blocks too)."""
    modules: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            modules.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the package
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            if module in {"service", "service.ca"}:  # `from service import errors` imports service.errors
                modules.update(f"{module}.{alias.name}" for alias in node.names)
            else:
                modules.add(module)
    return modules


def is_allowed(module: str) -> bool:
    top = module.partition(".")[0]
    return (
        top in sys.stdlib_module_names
        or top == "cryptography"
        or top in {"pyasn1", "pyasn1_modules"}
        or module == "service.errors"
        or module == "service.ca"
        or module.startswith("service.ca.")
    )


def forbidden_imports(source: str, package: str = "service.ca") -> list[str]:
    return sorted(module for module in imported_modules(source, package) if not is_allowed(module))


def ca_modules() -> list[Path]:
    return sorted(CA_PACKAGE.rglob("*.py"))


def test_the_ca_package_is_where_we_think() -> None:
    names = {path.name for path in ca_modules()}
    assert {"__init__.py", "keys.py", "names.py", "csr.py", "policy.py", "issue.py", "crl.py"} <= names


@pytest.mark.parametrize("path", ca_modules(), ids=lambda p: p.name)
def test_ca_modules_import_only_stdlib_cryptography_and_errors(path: Path) -> None:
    assert forbidden_imports(path.read_text()) == []


@pytest.mark.parametrize(
    "source",
    [
        "import sqlalchemy",
        "from fastapi import Request",
        "import service",
        "import service.settings",
        "from service import settings",
        "from service.db.models import CertificateRecord",
        "from service.keystore import FileKeyStore",
        "from .. import authority",
        "from ..api import app",
        "import asn1crypto",
        "from pyasn1x import univ",
        "def f():\n    import httpx\n",
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from service.authority import Authority\n",
    ],
)
def test_the_guard_catches_forbidden_imports(source: str) -> None:
    assert forbidden_imports(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "from __future__ import annotations",
        "import datetime as dt\nimport os.path",
        "from cryptography.hazmat.primitives import hashes",
        "from pyasn1.type import univ",
        "from pyasn1_modules import rfc5652",
        "from service.errors import PolicyError",
        "from service import errors",
        "from service.ca.keys import PrivateKey",
        "from .names import build_subject",
        "from . import keys",
    ],
)
def test_the_guard_lets_allowed_imports_through(source: str) -> None:
    assert forbidden_imports(source) == []
