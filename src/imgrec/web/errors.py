"""API errors: an HTTP status, a short code and a sentence that says what to do.

Every error response has the body ``{"error": <code>, "detail": <sentence>, ...extra}``.
"""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import BackendUnavailable, StorageFull


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        code: str,
        detail: str,
        *,
        headers: dict[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.headers = headers
        self.extra = extra


def error_response(
    status: int, code: str, detail: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": code, "detail": detail, **extra}, status_code=status,
                        headers=headers)


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.code, exc.detail, exc.headers, **exc.extra)


async def _backend_unavailable(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(
        503, "backend_unavailable",
        f"The queue or object store is unreachable; try again shortly. ({exc})",
        headers={"Retry-After": "5"},
    )


async def _storage_full(_request: Request, exc: Exception) -> JSONResponse:
    return error_response(507, "insufficient_storage", f"The service cannot store uploads: {exc}")


async def _http_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    headers = dict(exc.headers) if exc.headers else None
    return error_response(exc.status_code, code, str(exc.detail), headers)


async def _validation_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = "; ".join(
        f"{'.'.join(str(p) for p in err.get('loc', ()))}: {err.get('msg', '')}"
        for err in exc.errors()
    )
    return error_response(422, "invalid_request", f"The request is not valid: {problems}")


EXCEPTION_HANDLERS = {
    ApiError: _api_error,
    BackendUnavailable: _backend_unavailable,
    StorageFull: _storage_full,
    StarletteHTTPException: _http_error,
    RequestValidationError: _validation_error,
}
