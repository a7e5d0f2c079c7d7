"""The `/whoami` load generator of the mTLS rows, run as its own process: keep-alive connections with a client
certificate on asyncio (uvloop when installed), the figures as JSON on stdout. Standard library only.

    python bench/whoami_load.py PORT PATH SECONDS CONNECTIONS CERT KEY CA
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
import sys
import time


async def whoami_load(port: int, path: str, seconds: float, conns: int, cert: str, key: str, ca: str) -> dict:
    context = ssl.create_default_context(cafile=ca)
    context.load_cert_chain(cert, key)
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()

    async def exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[int, bytes]:
        writer.write(request)
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        match = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
        if match is None:
            raise RuntimeError(f"no content-length: {head[:200]!r}")
        return status, await reader.readexactly(int(match.group(1)))

    connections = [
        await asyncio.open_connection("127.0.0.1", port, ssl=context, server_hostname="127.0.0.1") for _ in range(conns)
    ]
    first = [await exchange(r, w) for r, w in connections]  # handshakes and a first request, before the clock
    deadline = time.perf_counter() + seconds

    async def loop(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> tuple[int, int, list[float]]:
        done = bad = 0
        latencies: list[float] = []
        clock = time.perf_counter
        while (start := clock()) < deadline:
            status, _ = await exchange(reader, writer)
            latencies.append(clock() - start)
            done += 1
            bad += status != 200
        return done, bad, latencies

    start = time.perf_counter()
    results = await asyncio.gather(*(loop(r, w) for r, w in connections))
    elapsed = time.perf_counter() - start
    for _, writer in connections:
        writer.close()
    latencies = sorted(x for _, _, lat in results for x in lat)
    requests = sum(done for done, _, _ in results)
    return {
        "requests": requests,
        "errors": sum(bad for _, bad, _ in results) + sum(status != 200 for status, _ in first),
        "seconds": elapsed,
        "rps": requests / elapsed,
        "p50_ms": latencies[len(latencies) // 2] * 1000 if latencies else 0,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000 if latencies else 0,
        "first_status": first[0][0],
        "first_body": first[0][1][:300].decode(errors="replace"),
    }


def whoami_load_main(argv: list[str]) -> None:
    port, path, seconds, conns, cert, key, ca = argv
    coroutine = whoami_load(int(port), path, float(seconds), int(conns), cert, key, ca)
    try:
        import uvloop

        result = uvloop.run(coroutine)
    except ImportError:
        result = asyncio.run(coroutine)
    print(json.dumps(result))


if __name__ == "__main__":
    whoami_load_main(sys.argv[1:])
