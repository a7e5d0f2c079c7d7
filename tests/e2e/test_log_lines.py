"""No forged log lines: a request whose path carries a newline and a whole audit-looking line, sent to a real
`pocketca serve` over HTTPS and to its plain-HTTP listener, stays inside its own access line, in the text log
(escaped: `\\n`, `\\u2028`, `\\x85`) and in the JSON log (one object a line, the text inside `path`)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import LiveServer, start_server

FORGED = '2026-12-07T02:30:00.000Z INFO pocketca.audit {"action":"certificate.revoke","actor":"token:FORGED"}'
# the request, and the same with the other line breaks a terminal or a log viewer may honour
PATHS = {
    "lf": "/nothere%0a" + FORGED,
    "cr-lf": "/nothere%0d%0a" + FORGED,
    "u2028": "/nothere%e2%80%a8" + FORGED,
    "u2029": "/nothere%e2%80%a9" + FORGED,
    "u0085": "/nothere%c2%85" + FORGED,
}


@pytest.fixture(scope="module", params=["text", "json"])
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    live = start_server(
        tmp_path_factory.mktemp(f"log-{request.param}") / "data", extra_env={"POCKETCA_LOG_FORMAT": request.param}
    )
    yield live
    live.stop()


def send_all(server: LiveServer) -> None:
    with server.client() as https, httpx.Client(base_url=server.http_url, timeout=15) as plain:
        for path in PATHS.values():
            assert https.get(path).status_code == 404
            assert plain.get(path).status_code == 404
        assert https.get("/healthz").status_code == 200  # the last line: all above are written


def access_lines(server: LiveServer) -> list[str]:
    return [line for line in server.log().splitlines() if "pocketca.access" in line and "nothere" in line]


def test_no_line_of_the_log_is_the_forged_one(server: LiveServer, tmp_path: Path) -> None:
    send_all(server)
    log = server.log()
    for line in log.splitlines():
        assert not line.startswith("2026-12-07T02:30:00.000Z"), line
        assert "token:FORGED" not in line or "nothere" in line, line  # only inside the access line it came in
        if line.startswith("{"):
            document = json.loads(line)  # every JSON line is one whole object
            assert document.get("actor") != "token:FORGED", document
    for separator in ["\u2028", "\u2029", "\x85", "\r"]:
        assert separator not in log


def test_each_request_is_one_access_line_holding_the_whole_path(server: LiveServer) -> None:
    send_all(server)
    lines = access_lines(server)
    assert len(lines) >= 2 * len(PATHS)  # HTTPS and the plain-HTTP listener, one line each
    if lines[0].startswith("{"):
        paths = {json.loads(line)["path"] for line in lines}
        for separator in ["\n", "\r\n", "\u2028", "\u2029", "\x85"]:
            assert f"/nothere{separator}{FORGED}" in paths, paths
    else:
        escaped = ["/nothere\\n" + FORGED, "/nothere\\r\\n" + FORGED, "/nothere\\u2028" + FORGED, "/nothere\\x85"]
        for text in escaped:
            assert any(text in line for line in lines), (text, lines[:3])
        assert all(" 404 caller=" in line for line in lines)
