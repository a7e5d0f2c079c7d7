"""A route class for the hottest routes: the route the OpenAPI document describes, served without FastAPI's
per-request dependency solving. An adapter over FastAPI's and Starlette's names that are not their public API
(`Dependant` and `get_dependant`, `APIRoute` internals, `Route.matches`, the app's exception handler table), read
from the versions below; tests/serving/test_upstream.py fails, naming the version, when an upgrade changes them.
Kept because it pays: without it `/whoami` serves 0.62x the requests at 1.54x the CPU (bench/ab.py, issue 23).

FastAPI resolves a route's dependencies, parameters and response model on every request; for POST /csr that
cost about as much as signing the certificate, and for GET /whoami several times the route's own work
(bench/SPEED.md). `LeanRoute` reads the same `Dependant` FastAPI builds from the endpoint's signature, once, and
keeps a plan of it: the `Request`, the query parameters (validated as one pydantic model, with FastAPI's error
locations), and `async def` dependencies (each called once per request, as FastAPI caches them). Dependency
overrides are honoured. A signature with anything else (a body, header or cookie parameter, a `yield`
dependency, a plain `def` one) is refused when the route is declared, so the plan never serves less than the
signature says. The endpoint must return a `Response`: there is no response model to validate against, only
to document.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.dependencies.models import Dependant
from fastapi.dependencies.utils import get_dependant
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute
from pydantic import BaseModel, ValidationError, create_model
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Match, Route
from starlette.types import ASGIApp, Receive, Scope, Send

FASTAPI = "0.165"  # the versions the names here were read from
STARLETTE = "1.10"

_UNSERVED = (
    "path_params",
    "header_params",
    "cookie_params",
    "body_params",
    "websocket_param_name",
    "http_connection_param_name",
    "response_param_name",
    "background_tasks_param_name",
    "security_scopes_param_name",
)


@dataclass(frozen=True)
class _Plan:
    call: Callable[..., Any]
    request_name: str | None
    query: type[BaseModel] | None
    needs: tuple[tuple[str | None, _Plan], ...]  # (parameter name, or None for a route-level dependency)
    use_cache: bool
    is_async: bool

    @classmethod
    def of(cls, dependant: Dependant, *, where: str, endpoint: bool = False) -> _Plan:
        call = dependant.call
        assert call is not None
        unserved = [name for name in _UNSERVED if getattr(dependant, name)]
        if unserved:
            raise TypeError(f"LeanRoute {where}: {call.__name__} has {', '.join(unserved)}, which it does not serve")
        if not endpoint and not inspect.iscoroutinefunction(call):
            raise TypeError(f"LeanRoute {where}: dependency {call.__name__} must be a plain async def")
        query = None
        if dependant.query_params:
            fields: dict[str, Any] = {f.name: (f.field_info.annotation, f.field_info) for f in dependant.query_params}
            query = create_model(f"{call.__name__}_query", **fields)
        needs = tuple((d.name, cls.of(d, where=where)) for d in dependant.dependencies)
        is_async = inspect.iscoroutinefunction(call)
        return cls(call, dependant.request_param_name, query, needs, dependant.use_cache, is_async)


class LeanRoute(APIRoute):
    def __init__(self, path: str, endpoint: Callable[..., Any], **kwargs: Any) -> None:
        super().__init__(path, endpoint, **kwargs)
        handler = self.get_route_handler()

        async def app(scope: Scope, receive: Receive, send: Send) -> None:
            # no exit stacks (no yield dependencies here) and no second exception wrapper: an error is rendered
            # by the app's own handler for it, exactly as for any route; one without a handler (a bug) goes up
            # to Starlette's ServerErrorMiddleware, as from any route
            request = Request(scope, receive, send)
            try:
                response = await handler(request)
            except Exception as exc:
                render = _exception_handler(request.app, exc)
                if render is None:
                    raise
                response = await render(request, exc)
            await response(scope, receive, send)

        self.app = app

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        where = f"{sorted(self.methods or ())} {self.path}"
        plan = _Plan.of(self.dependant, where=where, endpoint=True)
        if not inspect.iscoroutinefunction(self.endpoint):
            raise TypeError(f"LeanRoute {where}: the endpoint must be an async def")
        path = self.path_format
        overrides: dict[Callable[..., Any], _Plan] = {}  # plans of the overriding callables, made on first use

        def planned(needed: _Plan, request: Request) -> _Plan:
            active = request.app.dependency_overrides
            override = active.get(needed.call) if active else None
            if override is None:
                return needed
            if override not in overrides:  # the override's own signature, as FastAPI would read it
                dependant = get_dependant(path=path, call=override, use_cache=needed.use_cache)
                overrides[override] = _Plan.of(dependant, where=where, endpoint=True)
            return overrides[override]

        async def solve(needed: _Plan, request: Request, cache: dict[Any, Any]) -> dict[str, Any]:
            values: dict[str, Any] = {}
            if needed.request_name is not None:
                values[needed.request_name] = request
            for name, sub in needed.needs:  # first, as FastAPI does: a caller is refused before its query is read
                sub = planned(sub, request)
                if sub.use_cache and sub.call in cache:
                    value = cache[sub.call]
                else:
                    values_of_sub = await solve(sub, request, cache)
                    if sub.is_async:
                        value = await sub.call(**values_of_sub)
                    else:  # only an override can be a plain def (checked above): run as FastAPI runs one
                        value = await run_in_threadpool(sub.call, **values_of_sub)
                    if sub.use_cache:
                        cache[sub.call] = value
                if name is not None:
                    values[name] = value
            if needed.query is not None:
                values.update(_query(needed.query, request))
            return values

        async def handler(request: Request) -> Response:
            response = await self.endpoint(**await solve(plan, request, {}))
            if not isinstance(response, Response):
                raise TypeError(f"LeanRoute {where}: the endpoint returned {type(response).__name__}, not a Response")
            return response

        return handler


def install(app: FastAPI, *routers: APIRouter) -> None:
    """Puts the routers' routes on the app's own router, ahead of every included one: FastAPI tries an included
    router's routes through a per-candidate context (bench/SPEED.md: most of a /whoami once the dependencies
    are planned). So they must not need what including gives: a prefix or router-level dependencies."""
    for router in routers:
        if router.prefix or router.dependencies:
            raise TypeError("lean.install takes routers without a prefix or dependencies")
        if not all(isinstance(route, LeanRoute) for route in router.routes):
            raise TypeError("lean.install takes routers of LeanRoutes (route_class=LeanRoute)")
        for route in router.routes:
            assert isinstance(route, LeanRoute)
            # as including would: the app's operation ids (the router's own were made without the app)
            name_of = app.router.generate_unique_id_function
            route.unique_id = route.operation_id or (name_of(route) if callable(name_of) else route.unique_id)
            app.router.routes.append(route)


class LeanDispatch:
    """ASGI middleware, innermost: a request for one of the routes at the head of the app's router (those
    `install` put there) goes to that route's own `handle` at once, past Starlette's exception and exit-stack
    layers and the router's loop, which cost a quarter of a /whoami. The route is found as the router finds it
    (`matches`, in the router's order, the /whoami page before the JSON route); anything else, and a request
    that is not a full match (a 405), goes on to the router."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._owner: FastAPI | None = None
        self._by_path: dict[str, list[BaseRoute]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        owner: FastAPI | None = scope.get("app")
        if scope["type"] == "http" and owner is not None:
            for route in self._head(owner).get(scope["path"], ()):
                match, child = route.matches(scope)
                if match is Match.FULL:
                    if isinstance(route, LeanRoute):
                        scope.update(child)
                        scope.setdefault("router", owner.router)
                        await route.handle(scope, receive, send)
                        return
                    break  # a route of another kind: the router serves it
        await self.app(scope, receive, send)

    def _head(self, owner: FastAPI) -> dict[str, list[BaseRoute]]:
        """The app's routes with fixed paths before the first included router or parametrized path, by path."""
        if self._owner is not owner:  # once: the stack is built once the app serves, with its routes in place
            head: dict[str, list[BaseRoute]] = {}
            for route in owner.router.routes:
                if not isinstance(route, Route) or route.param_convertors:
                    break
                head.setdefault(route.path, []).append(route)
            self._owner, self._by_path = owner, head
        return self._by_path


@functools.cache
def _defaults(model: type[BaseModel]) -> dict[str, Any] | None:
    """What an empty query validates to; None when it does not validate (a required parameter)."""
    try:
        return dict(model.model_validate({}))
    except ValidationError:
        return None


def _exception_handler(app: FastAPI, exc: Exception) -> Any:
    """The app's handler for this exception along its MRO; None for the catch-all (500), which Starlette's
    ServerErrorMiddleware runs once the exception has gone up to it."""
    for cls in type(exc).__mro__:
        if cls is Exception:
            return None
        if cls in app.exception_handlers:
            return app.exception_handlers[cls]
    return None


def _query(model: type[BaseModel], request: Request) -> dict[str, Any]:
    if not request.scope.get("query_string"):
        defaults = _defaults(model)
        if defaults is not None:  # most requests have no query: the defaults, validated once
            return defaults
    try:
        parsed = model.model_validate(dict(request.query_params))
    except ValidationError as exc:  # the locations FastAPI gives: ("query", <name>)
        errors = [{**e, "loc": ("query", *e["loc"])} for e in exc.errors(include_input=False)]
        raise RequestValidationError(errors) from None
    return dict(parsed)

