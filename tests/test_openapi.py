"""openapi/openapi.json is the committed output of `pocketca openapi`; this fails when they drift."""

import json
from pathlib import Path

import pytest

from service.cli import main

SPEC = Path(__file__).resolve().parents[1] / "openapi" / "openapi.json"


def test_committed_spec_matches_the_app(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["openapi"]) == 0
    generated = json.loads(capsys.readouterr().out)
    committed = json.loads(SPEC.read_text())
    assert generated == committed, "run `pocketca openapi > openapi/openapi.json` and commit it"


def test_spec_documents_every_contract_endpoint() -> None:
    paths = json.loads(SPEC.read_text())["paths"]
    for path, method in [
        ("/csr", "post"),
        ("/ca", "get"),
        ("/ca.crt", "get"),
        ("/crl", "get"),
        ("/crl.pem", "get"),
        ("/certs/{serial}", "get"),
        ("/certs/{serial}/revoke", "post"),
        ("/whoami", "get"),
        ("/healthz", "get"),
    ]:
        assert method in paths[path], f"{method.upper()} {path} missing"
    content = paths["/csr"]["post"]["requestBody"]["content"]
    assert {"application/json", "application/pkcs10"} <= set(content)


def test_every_operation_says_who_may_call_it() -> None:
    spec = json.loads(SPEC.read_text())
    schemes = spec["components"]["securitySchemes"]
    assert schemes["bearer"] == {"type": "http", "scheme": "bearer", "description": schemes["bearer"]["description"]}
    assert schemes["mutualTLS"]["type"] == "mutualTLS"
    operations = {(m, p): o for p, ops in spec["paths"].items() for m, o in ops.items()}
    for key, operation in operations.items():
        assert "security" in operation, key
        for requirement in operation["security"]:
            assert set(requirement) <= set(schemes), key
    assert operations[("post", "/csr")]["security"] == [{"bearer": []}, {"mutualTLS": []}]
    assert operations[("get", "/whoami")]["security"] == [{"mutualTLS": []}]
    assert operations[("get", "/metrics")]["security"] == [{"bearer": []}]
    assert operations[("get", "/crl")]["security"] == []


def test_operation_ids_are_readable_and_unique() -> None:
    spec = json.loads(SPEC.read_text())
    ids = [o["operationId"] for ops in spec["paths"].values() for o in ops.values()]
    assert len(ids) == len(set(ids))
    for operation_id in ids:
        assert "_" not in operation_id and not operation_id.endswith(("Get", "Post", "Delete")), operation_id
    assert spec["paths"]["/csr"]["post"]["operationId"] == "signCsr"
    assert spec["paths"]["/certs/{serial}/revoke"]["post"]["operationId"] == "revokeCertificate"


def test_413_and_422_bodies_are_in_the_schema() -> None:
    spec = json.loads(SPEC.read_text())
    csr = spec["paths"]["/csr"]["post"]["responses"]
    assert csr["413"]["content"]["application/problem+json"]["schema"] == {"$ref": "#/components/schemas/Problem"}
    ref = csr["422"]["content"]["application/problem+json"]["schema"]["$ref"]
    validation = spec["components"]["schemas"][ref.rsplit("/", 1)[1]]
    errors = validation["allOf"][1]["properties"]["errors"]
    assert errors["items"]["required"] == ["loc", "msg"]
