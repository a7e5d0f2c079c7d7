"""Serving: uvicorn over TLS with the plain-HTTP publication listener beside it, forked workers and their
supervisor, the server certificate reloaded into the live TLS context.

Modules by vocabulary: `listeners` (the two sockets, bound once, before the data dir is touched), `contexts`
(the SSL contexts and a connection's TLS facts), `protocols` (what each connection adds to uvicorn's HTTP
protocols), `publication` (the plain-HTTP app), `reloaders` (the certificate watcher), `workers` (the process
supervisor), `server` (uvicorn's Config and Server put together: `serve`).

Every reach into uvicorn's names that are not its public API lives in `upstream`, the adapter, with a test that
names the upstream version when it breaks (tests/serving/test_upstream.py, which also holds the tripwires of
service.http.lean, the hot routes' class over FastAPI's and Starlette's non-public names: the front doors import
it, so it lives below them, with what they share).
"""
