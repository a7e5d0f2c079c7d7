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
