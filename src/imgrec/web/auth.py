"""Optional API key: when ``IMGREC_API_KEY`` is set, every route but the open ones needs it.

A client sends the key as ``X-API-Key: <key>`` or ``Authorization: Bearer <key>``; a browser
opening the page gets a password prompt (HTTP Basic: any user name, the key as password) and
then sends it with the page's own calls. Keys are compared in constant time. ``/healthz`` stays
open for load balancers, and the page's static assets load without a key (they hold no data).

Example::

    IMGREC_API_KEY=s3cret imgrec serve
    curl -H 'X-API-Key: s3cret' -F myfile=@cat.jpg http://127.0.0.1:3000/
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_response

log = logging.getLogger(__name__)

OPEN_PATHS = frozenset({"/healthz", "/favicon.ico"})
OPEN_PREFIXES = ("/static/",)
_BEARER = "bearer "
_BASIC = "basic "


def presented_key(headers: dict[bytes, bytes]) -> str | None:
    """The key a request carries in ``X-API-Key`` or ``Authorization`` (Bearer or Basic)."""
    direct = headers.get(b"x-api-key")
    if direct:
        return direct.decode("latin-1").strip()
    auth = headers.get(b"authorization", b"").decode("latin-1").strip()
    if auth.lower().startswith(_BEARER):
        return auth[len(_BEARER):].strip()
    if auth.lower().startswith(_BASIC):
        try:
            decoded = base64.b64decode(auth[len(_BASIC):].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return ""
        return decoded.partition(":")[2]
    return None


def key_matches(presented: str | None, expected: str) -> bool:
    """Constant-time comparison (the time taken does not reveal how much of a key is right)."""
    if presented is None:
        return False
    return hmac.compare_digest(presented.encode("utf-8"), expected.encode("utf-8"))


def is_open(path: str) -> bool:
    """Paths served without a key: the health check and the page's static assets."""
    return path in OPEN_PATHS or path.startswith(OPEN_PREFIXES)


class ApiKeyAuth:
    """ASGI middleware: 401 with a JSON error unless the request carries the API key."""

    def __init__(self, app: ASGIApp, api_key: str) -> None:
        if not api_key:
            raise ValueError("api_key must not be empty")
        self.app = app
        self._key = api_key

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        presented = presented_key(dict(scope["headers"]))
        if key_matches(presented, self._key):
            await self.app(scope, receive, send)
            return
        # Never log the presented key: only that one was missing or wrong.
        reason = "missing" if presented is None else "wrong"
        client = scope.get("client")
        log.info("401 for %s %s from %s: API key %s", scope["method"], scope["path"],
                 client[0] if client else "unknown", reason)
        # Browsers opening the page get a Basic challenge (a password prompt); programs don't.
        scheme = "Basic" if _is_page_visit(scope) else "Bearer"
        response = error_response(
            401, "unauthorized",
            f"This service needs an API key and the one sent is {reason}: send it in the "
            "'X-API-Key' header or as 'Authorization: Bearer <key>'.",
            headers={"WWW-Authenticate": f'{scheme} realm="imgrec"'},
        )
        await response(scope, receive, send)


def _is_page_visit(scope: Scope) -> bool:
    accept = dict(scope["headers"]).get(b"accept", b"").lower()
    return scope["method"] == "GET" and scope["path"] == "/" and b"text/html" in accept
