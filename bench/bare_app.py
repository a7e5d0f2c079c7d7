"""The framework's ceiling for the mTLS rows of bench/suite.py: a bare ASGI app that answers every request with
a constant, run by uvicorn with the same TLS settings, worker count and HTTP implementation as pocketca:

    .venv/bin/uvicorn bench.bare_app:app --host 127.0.0.1 --port P --workers 2 --http httptools \\
        --ssl-certfile D/server.pem --ssl-keyfile D/server.key --ssl-ca-certs D/ca.pem --ssl-cert-reqs 1 \\
        --ssl-ciphers ECDHE+AESGCM:ECDHE+CHACHA20 --no-access-log

(--ssl-cert-reqs 1 is ssl.CERT_OPTIONAL, as in service/serving/contexts.py: a client certificate that is presented must
chain to the CA.) No routing, no middleware, no database: what uvicorn + httptools + TLS cost on their own.
"""

from __future__ import annotations

from typing import Any

BODY = b'{"cn":"bench"}'
HEADERS = [(b"content-type", b"application/json"), (b"content-length", str(len(BODY)).encode())]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
    await send({"type": "http.response.body", "body": BODY})
