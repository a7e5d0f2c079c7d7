"""The OpenAPI document: readable operationIds, who may call each operation (bearer token, client certificate,
or anyone), and the error responses every operation really gives (problem+json, 413 and 422 included)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from service.http.problems import PROBLEM_JSON

_PROBLEM_SCHEMA: dict[str, Any] = {
    "title": "Problem",
    "type": "object",
    "description": "RFC 9457 problem details; `type` is urn:pocketca:problem:<slug> (about:blank: plain HTTP errors)",
    "required": ["type", "title", "status", "detail"],
    "properties": {
        "type": {"type": "string", "examples": ["urn:pocketca:problem:invalid-csr"]},
        "title": {"type": "string"},
        "status": {"type": "integer"},
        "detail": {"type": "string"},
        "violations": {"type": "array", "items": {"type": "string"}, "description": "every policy rule broken"},
    },
}
_VALIDATION_SCHEMA: dict[str, Any] = {
    "title": "ValidationProblem",
    "description": "a 422: the problem, with every field that is wrong (type urn:pocketca:problem:validation)",
    "allOf": [
        {"$ref": "#/components/schemas/Problem"},
        {
            "type": "object",
            "required": ["errors"],
            "properties": {
                "errors": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["loc", "msg"],
                        "properties": {
                            "loc": {"type": "array", "items": {"type": "string"}, "description": "e.g. body.csr"},
                            "msg": {"type": "string"},
                        },
                    },
                }
            },
        },
    ],
}


def _problem(ref: str = "Problem") -> dict[str, Any]:
    return {"content": {PROBLEM_JSON: {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


_COMMON = {
    "4XX": {"description": "the request was refused", **_problem()},
    "5XX": {"description": "the service failed", **_problem()},
}
_TOO_LARGE = {"413": {"description": "the body is over the limit (POCKETCA_MAX_BODY_BYTES)", **_problem()}}
_INVALID = {"422": {"description": "a parameter or field is not valid", **_problem("ValidationProblem")}}

SECURITY_SCHEMES = {
    "bearer": {"type": "http", "scheme": "bearer", "description": "a pocketca token: pca_<id>_<secret>"},
    "mutualTLS": {"type": "mutualTLS", "description": "a client certificate issued by this CA, in the TLS handshake"},
}
Requirements = list[dict[str, list[str]]]
BEARER: Requirements = [{"bearer": []}]
BEARER_OR_CERTIFICATE: Requirements = [{"bearer": []}, {"mutualTLS": []}]
CERTIFICATE: Requirements = [{"mutualTLS": []}]
# who may call what (CONTRACT.md); operations not listed are public (an empty requirement)
SECURITY: dict[tuple[str, str], Requirements] = {
    ("post", "/csr"): BEARER_OR_CERTIFICATE,
    ("get", "/certs"): BEARER,
    ("get", "/certs/{serial}"): BEARER_OR_CERTIFICATE,
    ("post", "/certs/{serial}/revoke"): BEARER_OR_CERTIFICATE,
    ("post", "/pkcs12"): BEARER,
    ("get", "/tokens"): BEARER,
    ("post", "/tokens"): BEARER,
    ("delete", "/tokens/{token_id}"): BEARER,
    ("get", "/audit"): BEARER,
    ("get", "/metrics"): BEARER,
    ("post", "/acme/eab"): BEARER,
    ("get", "/whoami"): CERTIFICATE,
}


# where the handler's name says only the method, or not that it is ACME's
_OPERATION_IDS = {
    "ocsp_post": "answerOcsp",
    "ocsp_get": "answerOcspInUrl",
    "directory": "getAcmeDirectory",
    "renewal_info": "getAcmeRenewalInfo",
    "create_eab": "createAcmeEabKey",
}


def operation_id(route: APIRoute) -> str:
    """The handler's name in camelCase (signCsr, listCertificates): stable while the function keeps its name."""
    if route.name in _OPERATION_IDS:
        return _OPERATION_IDS[route.name]
    head, *rest = route.name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def install(app: FastAPI) -> None:
    def build() -> dict[str, Any]:
        if app.openapi_schema is None:
            spec = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            components = spec.setdefault("components", {})
            schemas = components.setdefault("schemas", {})
            schemas.pop("HTTPValidationError", None)
            schemas.pop("ValidationError", None)
            schemas["Problem"] = _PROBLEM_SCHEMA
            schemas["ValidationProblem"] = _VALIDATION_SCHEMA
            components["securitySchemes"] = SECURITY_SCHEMES
            for path, operations in spec["paths"].items():
                for method, operation in operations.items():
                    responses = operation.setdefault("responses", {})
                    validated = responses.pop("422", None) is not None or "requestBody" in operation
                    if "requestBody" in operation:
                        responses.update(_TOO_LARGE)
                    if validated:
                        responses.update(_INVALID)
                    responses.update(_COMMON)
                    operation["security"] = SECURITY.get((method, path), [])
            app.openapi_schema = spec
        return app.openapi_schema

    app.openapi = build  # type: ignore[method-assign]
