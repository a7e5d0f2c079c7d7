"""The names service/serving reaches for that are not a library's public API: each test fails, naming the
upstream version, when an upgrade changes one of them, before a live server would fail less clearly."""

from __future__ import annotations

import dataclasses
import inspect

import fastapi
import pytest
import starlette
import uvicorn
import uvicorn.lifespan.on
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.routing import APIRoute
from starlette.routing import Match, Route

from service.http import lean
from service.serving import upstream


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _uvicorn_changed(what: str) -> str:
    where = f"see service/serving/upstream.py (read from {upstream.UVICORN})"
    return f"uvicorn {uvicorn.__version__} changed {what}; {where}"


def _fastapi_changed(what: str) -> str:
    return (
        f"fastapi {fastapi.__version__} / starlette {starlette.__version__} changed {what}; see service/http/lean.py"
        f" (read from fastapi {lean.FASTAPI}, starlette {lean.STARLETTE})"
    )


def test_uvicorn_is_the_version_upstream_was_read_from() -> None:
    assert _minor(uvicorn.__version__) == upstream.UVICORN, (
        f"uvicorn {uvicorn.__version__} is not the version service/serving/upstream.py was read from "
        f"({upstream.UVICORN}): check each name it lists, then update UVICORN and the pin in pyproject.toml"
    )


@pytest.mark.parametrize("name", ["H11Protocol", "HttpToolsProtocol"])
def test_uvicorn_http_protocols_keep_their_constructor_and_hooks(name: str) -> None:
    cls = getattr(upstream, name)
    assert cls is not None, _uvicorn_changed(f"{name}'s module")
    parameters = list(inspect.signature(cls.__init__).parameters)
    assert parameters[:5] == ["self", "config", "server_state", "app_state", "_loop"], _uvicorn_changed(
        f"{name}.__init__ {parameters}"
    )
    hooks = ["connection_made", "connection_lost"]
    if name == "HttpToolsProtocol":
        hooks += ["on_message_begin", "on_headers_complete"]
    for hook in hooks:
        assert callable(getattr(cls, hook, None)), _uvicorn_changed(f"{name}.{hook}")
    source = inspect.getsource(cls)
    for attribute in ("self.app = ", "self.transport = transport"):
        assert attribute in source, _uvicorn_changed(f"{name} ({attribute!r} is gone)")


def test_uvicorn_server_keeps_startup_shutdown_and_the_state_a_second_listener_shares() -> None:
    for method in ("startup", "shutdown"):
        parameters = list(inspect.signature(getattr(uvicorn.Server, method)).parameters)
        assert parameters == ["self", "sockets"], _uvicorn_changed(f"Server.{method} {parameters}")
    source = inspect.getsource(uvicorn.Server)
    for attribute in ("self.servers", "self.server_state", "self.lifespan", "self.started", "self.should_exit"):
        assert attribute in source, _uvicorn_changed(f"Server ({attribute} is gone)")
    config = uvicorn.Config(app=lambda *_: None)
    for attribute in ("backlog", "http", "ssl_context_factory"):
        assert hasattr(config, attribute), _uvicorn_changed(f"Config.{attribute}")
    config_source = inspect.getsource(uvicorn.Config)
    for attribute in ("self.http_protocol_class", "self.loaded_app"):
        assert attribute in config_source, _uvicorn_changed(f"Config ({attribute} is gone)")
    assert "self.state" in inspect.getsource(uvicorn.lifespan.on.LifespanOn), _uvicorn_changed("LifespanOn.state")


def test_fastapi_and_starlette_are_the_versions_lean_was_read_from() -> None:
    assert (_minor(fastapi.__version__), _minor(starlette.__version__)) == (lean.FASTAPI, lean.STARLETTE), (
        f"fastapi {fastapi.__version__} / starlette {starlette.__version__} are not the versions "
        f"service/http/lean.py was read from (fastapi {lean.FASTAPI}, starlette {lean.STARLETTE}): check what "
        "it reads, then update FASTAPI and STARLETTE"
    )


def test_fastapi_dependant_keeps_the_fields_lean_plans_from() -> None:
    fields = {field.name for field in dataclasses.fields(Dependant)}
    wanted = {*lean._UNSERVED, "query_params", "dependencies", "call", "request_param_name", "use_cache"}
    assert wanted <= fields, _fastapi_changed(f"Dependant (missing {sorted(wanted - fields)})")
    parameters = inspect.signature(get_dependant).parameters
    assert {"path", "call", "use_cache"} <= set(parameters), _fastapi_changed(f"get_dependant {list(parameters)}")


def test_fastapi_routes_and_starlette_matching_keep_what_lean_uses() -> None:
    for attribute in ("get_route_handler", "matches", "handle"):
        assert callable(getattr(APIRoute, attribute, None)), _fastapi_changed(f"APIRoute.{attribute}")
    route = APIRoute("/x", lambda: None)
    for attribute in ("dependant", "path_format", "unique_id", "methods", "param_convertors"):
        assert hasattr(route, attribute), _fastapi_changed(f"APIRoute.{attribute}")
    assert Match.FULL and issubclass(APIRoute, Route), _fastapi_changed("starlette.routing.Match / Route")
    app = fastapi.FastAPI()
    for attribute in ("exception_handlers", "dependency_overrides"):
        assert isinstance(getattr(app, attribute, None), dict), _fastapi_changed(f"FastAPI.{attribute}")
    assert hasattr(app.router, "generate_unique_id_function"), _fastapi_changed("APIRouter.generate_unique_id_function")
