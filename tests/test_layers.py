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
        or top in ("cryptography", "idna", "publicsuffixlist")  # the last two: pure name rules and their data
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


# The front doors: each parses its protocol, calls the authority and renders the answer. They never import each
# other; what they share lives below them, in service/http; only the composition root imports them all.
SERVICE = CA_PACKAGE.parent
FRONT_DOORS = ("api", "acme", "web", "enroll", "est", "scep", "cmp")
COMPOSITION_ROOT = "service.app"
# (importer, front-door module) pairs outside the composition root, each a debt with its reason
KNOWN_REACHES: set[tuple[str, str]] = set()  # none left: the CLI's EAB command calls service.authority.acme


def module_name(path: Path) -> str:
    parts = path.relative_to(SERVICE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_of(path: Path) -> str:
    name = module_name(path)
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def front_door(module: str) -> str | None:
    """The front door a module belongs to (`service.web.console` -> `web`), or None."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "service" and parts[1] in FRONT_DOORS else None


def service_modules() -> list[Path]:
    return sorted(SERVICE.rglob("*.py"))


def front_door_imports(path: Path) -> list[tuple[str, str]]:
    """(importer, imported) for every front-door module the file imports outside its own front door."""
    importer = module_name(path)
    own = front_door(importer)
    imported = imported_modules(path.read_text(), package_of(path))
    return sorted((importer, m) for m in imported if front_door(m) is not None and front_door(m) != own)


def described(pairs: list[tuple[str, str]]) -> list[str]:
    return [f"{importer} imports {imported}" for importer, imported in pairs]


def test_the_front_doors_and_the_composition_root_are_where_we_think() -> None:
    names = {module_name(path) for path in service_modules()}
    assert {COMPOSITION_ROOT, "service.http", "service.api", "service.acme", "service.web"} <= names


def test_no_front_door_imports_another() -> None:
    offenders = [
        pair for path in service_modules() if front_door(module_name(path)) for pair in front_door_imports(path)
    ]
    assert described(offenders) == []


def test_http_imports_no_front_door() -> None:
    offenders = [pair for path in sorted((SERVICE / "http").rglob("*.py")) for pair in front_door_imports(path)]
    assert described(offenders) == []


def test_only_the_composition_root_imports_the_front_doors() -> None:
    offenders = [
        pair
        for path in service_modules()
        if front_door(module_name(path)) is None and module_name(path) != COMPOSITION_ROOT
        for pair in front_door_imports(path)
        if pair not in KNOWN_REACHES
    ]
    assert described(offenders) == []


def test_the_composition_root_imports_every_front_door_that_has_routes() -> None:
    doors = {front_door(m) for _, m in front_door_imports(SERVICE / "app.py")}
    assert {"api", "acme", "web"} <= doors


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("web/console.py", "from service.api.deps import CallerDep", ["service.web.console imports service.api.deps"]),
        ("acme/routes.py", "from ..web import pages", ["service.acme.routes imports service.web"]),
        ("http/problems.py", "from service import acme", ["service.http.problems imports service.acme"]),
        ("web/console.py", "from . import pages\nfrom service.http.callers import AuthorityDep", []),
        ("api/routes/csr.py", "from ..schemas import CSRRequest", []),
    ],
)
def test_the_front_door_guard_names_the_offending_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str, source: str, expected: list[str]
) -> None:
    fake = tmp_path / "service" / path
    fake.parent.mkdir(parents=True)
    fake.write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "SERVICE", tmp_path / "service")
    assert described(front_door_imports(fake)) == expected


# --- front doors over one authority: no front door touches db/, and the authority imports no front door --------

AUTHORITY_PACKAGE = SERVICE / "authority"


def imports_of(path: Path) -> set[str]:
    return imported_modules(path.read_text(), package_of(path))


def is_under(module: str, package: str) -> bool:
    return module == package or module.startswith(f"{package}.")


def db_imports(path: Path) -> list[tuple[str, str]]:
    """(importer, imported) for every service.db module the file imports."""
    return sorted((module_name(path), m) for m in imports_of(path) if is_under(m, "service.db"))


def upward_imports(path: Path) -> list[tuple[str, str]]:
    """(importer, imported) for every front-door or service.http module the file imports."""
    return sorted(
        (module_name(path), m) for m in imports_of(path) if front_door(m) is not None or is_under(m, "service.http")
    )


def test_no_front_door_touches_db() -> None:
    """A front door parses its protocol, calls the authority and renders the answer: the authority is its way in."""
    offenders = [pair for path in service_modules() if front_door(module_name(path)) for pair in db_imports(path)]
    assert described(offenders) == []


def test_the_authority_imports_no_front_door_and_not_http() -> None:
    offenders = [pair for path in sorted(AUTHORITY_PACKAGE.rglob("*.py")) for pair in upward_imports(path)]
    assert described(offenders) == []


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        ("acme/routes.py", "from service.db.sql import DatabaseError", ["service.acme.routes imports service.db.sql"]),
        ("api/routes/csr.py", "from service.db import tokens", ["service.api.routes.csr imports service.db"]),
        (
            "web/console.py",
            "def f():\n    import service.db.session\n",
            ["service.web.console imports service.db.session"],
        ),
        ("acme/routes.py", "from service.authority.acme.orders import Order", []),
    ],
)
def test_the_db_guard_names_the_front_door_that_touches_db(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str, source: str, expected: list[str]
) -> None:
    fake = tmp_path / "service" / path
    fake.parent.mkdir(parents=True)
    fake.write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "SERVICE", tmp_path / "service")
    assert described(db_imports(fake)) == expected


@pytest.mark.parametrize(
    ("path", "source", "expected"),
    [
        (
            "authority/acme/orders.py",
            "from service.acme import problems",
            ["service.authority.acme.orders imports service.acme"],
        ),
        (
            "authority/core.py",
            "from service.http.callers import CallerDep",
            ["service.authority.core imports service.http.callers"],
        ),
        ("authority/acme/jws.py", "from ..problems import AcmeProblem", []),
        ("authority/acme/accounts.py", "from service.db import acme_accounts", []),
    ],
)
def test_the_authority_guard_names_the_import_running_back_up(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, path: str, source: str, expected: list[str]
) -> None:
    fake = tmp_path / "service" / path
    fake.parent.mkdir(parents=True)
    fake.write_text(source)
    monkeypatch.setattr(sys.modules[__name__], "SERVICE", tmp_path / "service")
    assert described(upward_imports(fake)) == expected


# --- one path to the database: nothing above service/db writes SQL or touches a row object -----------------------

DB_PACKAGE = SERVICE / "db"
ROW_MODULES = ("service.db.models", "service.db.acme", "service.db.base")  # the ORM's row classes (…Record)


def reaches_below_db(source: str, package: str = "service.x") -> list[str]:
    """What a module above service/db must not import: SQLAlchemy (anything of it), or the modules of row classes
    (or a `…Record` class from anywhere in service.db)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = next(iter(imported_modules(ast.unparse(node), package)), "") if node.level else node.module or ""
            names = [base]
            if base.startswith("service.db"):
                names += [f"{base}.{alias.name}" for alias in node.names]
        found.update(name for name in names if _is_below_db(name))
    return sorted(found)


def _is_below_db(name: str) -> bool:
    if name.partition(".")[0] == "sqlalchemy":
        return True
    if any(name == m or name.startswith(f"{m}.") for m in ROW_MODULES):
        return True
    return name.startswith("service.db.") and name.endswith("Record")


def modules_above_db() -> list[Path]:
    return sorted(p for p in SERVICE.rglob("*.py") if DB_PACKAGE not in p.parents)


def test_nothing_above_db_imports_sqlalchemy_or_row_classes() -> None:
    """db/ owns every table and statement, hot and cold: the layers above get plain values (db.sql, db.tokens,
    db.certificates, db.acme_orders... return dataclasses), so none of them imports SQLAlchemy or a row class."""
    offenders = {}
    for path in modules_above_db():
        reached = reaches_below_db(path.read_text(), ".".join(path.relative_to(SERVICE.parent).with_suffix("").parts))
        if reached:
            offenders[str(path.relative_to(SERVICE.parent))] = reached
    assert offenders == {}, "modules above service/db that reach below it:\n" + "\n".join(
        f"  {path}: {', '.join(names)}" for path, names in offenders.items()
    )


@pytest.mark.parametrize(
    "source",
    [
        "import sqlalchemy",
        "from sqlalchemy.orm import Session",
        "def f():\n    from sqlalchemy.exc import OperationalError\n",
        "from service.db.models import CertificateRecord",
        "from service.db import models",
        "from service.db.acme import AcmeOrderRecord",
        "from service.db.base import Base",
    ],
)
def test_the_db_guard_catches_reaches_below_db(source: str) -> None:
    assert reaches_below_db(source) != []


@pytest.mark.parametrize(
    "source",
    [
        "from service.db import certificates as certificate_rows",
        "from service.db.acme_orders import OrderRow",
        "from service.db.session import Database",
        "from service.db.sql import DatabaseError, Transaction",
    ],
)
def test_the_db_guard_lets_db_functions_through(source: str) -> None:
    assert reaches_below_db(source) == []
