"""http.lean: LeanRoute serves what its signature declares, as FastAPI would, and refuses what it cannot serve."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

import httpx
import pytest
from fastapi import APIRouter, Depends, FastAPI, Header, Query, Request, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel

from service.app import create_app
from service.authority import Authority
from service.http import lean, problems
from service.http.lean import LeanDispatch, LeanRoute

pytestmark = pytest.mark.anyio
calls: list[str] = []


async def counted(request: Request) -> str:
    calls.append("counted")
    return request.headers.get("x-who", "nobody")


async def uses_counted(who: Annotated[str, Depends(counted)]) -> str:
    return f"via {who}"


async def endpoint(
    direct: Annotated[str, Depends(counted)],
    indirect: Annotated[str, Depends(uses_counted)],
    days: Annotated[int | None, Query(ge=1)] = None,
    name: Annotated[str | None, Query(max_length=3)] = None,
) -> Response:
    return Response(f"{direct}|{indirect}|{days}|{name}", media_type="text/plain")


async def needs_a_query(q: Annotated[int, Query()]) -> Response:
    return Response(str(q), media_type="text/plain")


def _app(route_class: type[APIRoute]) -> FastAPI:
    app = FastAPI()
    problems.install(app)
    router = APIRouter(route_class=route_class)
    router.get("/thing")(endpoint)
    router.get("/need")(needs_a_query)
    if route_class is LeanRoute:
        lean.install(app, router)
        app.add_middleware(LeanDispatch)
    else:
        app.include_router(router)
    return app


@pytest.fixture(params=[LeanRoute, APIRoute], ids=["lean", "fastapi"])
async def http(request: pytest.FixtureRequest) -> AsyncIterator[tuple[httpx.AsyncClient, FastAPI]]:
    app = _app(request.param)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        yield client, app


QUERIES = [
    ("/thing", {}),
    ("/thing", {"days": "3", "name": "abc"}),
    ("/thing", {"days": "0"}),
    ("/thing", {"days": "x"}),
    ("/thing", {"name": "abcd"}),
    ("/thing", {"days": "x", "name": "abcd"}),
    ("/need", {}),  # a required parameter: an empty query is a 422, not the defaults
    ("/need", {"q": "7"}),
]


@pytest.mark.parametrize(("path", "query"), QUERIES, ids=[f"{p}{q}" for p, q in QUERIES])
async def test_answers_as_fastapi_does(path: str, query: dict[str, str]) -> None:
    answers = []
    for route_class in (LeanRoute, APIRoute):
        transport = httpx.ASGITransport(app=_app(route_class), raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
            response = await client.get(path, params=query, headers={"x-who": "ann"})
            answers.append((response.status_code, response.headers["content-type"], response.content))
    assert answers[0] == answers[1]


async def test_a_dependency_is_called_once_per_request(http: tuple[httpx.AsyncClient, FastAPI]) -> None:
    client, _ = http
    calls.clear()
    response = await client.get("/thing", headers={"x-who": "ann"})
    assert response.text == "ann|via ann|None|None"
    assert calls == ["counted"]


async def test_overrides_are_honoured_plain_def_ones_too(http: tuple[httpx.AsyncClient, FastAPI]) -> None:
    client, app = http
    app.dependency_overrides[counted] = lambda: "stand-in"  # a plain def: FastAPI runs it in a thread
    assert (await client.get("/thing")).text == "stand-in|via stand-in|None|None"

    async def asks(x_other: Annotated[str, Header()] = "-") -> str:  # the override's own signature is read
        return x_other

    if isinstance(app.router.routes[-1], LeanRoute):  # what LeanRoute does not serve, even overriding: a bug
        app.dependency_overrides[counted] = asks
        assert (await client.get("/thing")).status_code == 500
    app.dependency_overrides.clear()
    assert (await client.get("/thing", headers={"x-who": "bo"})).text == "bo|via bo|None|None"


class Body(BaseModel):
    x: int


async def _with_body(body: Body) -> Response:
    return Response()


async def _with_header(x_token: Annotated[str, Header()]) -> Response:
    return Response()


def _sync_dependency() -> str:
    return "x"


async def _with_sync_dependency(value: Annotated[str, Depends(_sync_dependency)]) -> Response:
    return Response()


def _sync_endpoint() -> Response:
    return Response()


@pytest.mark.parametrize(
    ("declared", "refusal"),
    [
        (_with_body, "body_params"),
        (_with_header, "header_params"),
        (_with_sync_dependency, "must be a plain async def"),
        (_sync_endpoint, "the endpoint must be an async def"),
    ],
)
def test_what_it_cannot_serve_is_refused_when_declared(declared: object, refusal: str) -> None:
    router = APIRouter(route_class=LeanRoute)
    with pytest.raises(TypeError, match=refusal):
        router.post("/x")(declared)  # type: ignore[arg-type]


async def test_an_endpoint_that_returns_no_response_is_a_500() -> None:
    async def returns_a_dict() -> dict[str, str]:
        return {"a": "b"}

    app = FastAPI()
    problems.install(app)
    router = APIRouter(route_class=LeanRoute)
    router.get("/dict")(returns_a_dict)
    lean.install(app, router)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="https://testserver") as client:
        response = await client.get("/dict")
    assert response.status_code == 500 and "returned dict" not in response.text  # the bug is logged, not told


def test_install_takes_only_lean_routers_without_a_prefix() -> None:
    app = FastAPI()
    with pytest.raises(TypeError, match="without a prefix"):
        lean.install(app, APIRouter(prefix="/p", route_class=LeanRoute))
    plain = APIRouter()
    plain.get("/x")(_with_header)
    with pytest.raises(TypeError, match="LeanRoutes"):
        lean.install(app, plain)


def test_the_documented_operations_are_the_lean_routes(authority: Authority) -> None:
    """The OpenAPI document describes the route that runs: /csr and /whoami are LeanRoutes of the app."""
    app = create_app(authority=authority)
    document = app.openapi()
    by_key = {
        (method.upper(), route.path): route
        for route in app.routes
        if isinstance(route, APIRoute) and route.include_in_schema
        for method in route.methods or ()
    }
    for method, path in (("POST", "/csr"), ("GET", "/whoami")):
        route = by_key[(method, path)]
        assert isinstance(route, LeanRoute)
        assert document["paths"][path][method.lower()]["operationId"] == route.unique_id
        assert app.router.routes.index(route) < 5  # ahead of every included router
