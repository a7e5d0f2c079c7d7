"""ACME problem documents rendered: an AcmeProblem (service.authority.acme.problems) as application/problem+json."""

from __future__ import annotations

from fastapi.responses import JSONResponse

from service.authority.acme.problems import AcmeProblem

PROBLEM_JSON = "application/problem+json"


def problem_response(problem: AcmeProblem) -> JSONResponse:
    return JSONResponse(
        problem.document(), status_code=problem.status, media_type=PROBLEM_JSON, headers=problem.headers
    )
