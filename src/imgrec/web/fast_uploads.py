"""The two synchronous upload routes, ``POST /`` and ``POST /api/v1/classify``, as raw ASGI.

Under load these two routes are nearly every request the web tier serves, and FastAPI's path to
them (its exception and exit-stack middleware, the router's scan of every route, dependency
solving, a second exception wrapper, response validation) cost about as much CPU as the upload
work itself (``docs/performance.md``). ``FastUploads`` is the outermost app middleware: it
answers these two routes with the same endpoint code, behind the same API-key and body-limit
middleware, with the same exception handlers (so the same status codes, headers and JSON error
bodies), and hands every other request, including other methods on these paths, to the FastAPI
stack. The FastAPI routes for both paths stay registered: they document them in the OpenAPI
schema and answer them when the fast path is off (``create_app(fast_uploads=False)``, which the
tests use to check that both give the same answers).

Example::

    app.add_middleware(FastUploads, endpoints={"/": plain}, guard=lambda inner: inner,
                       handlers=EXCEPTION_HANDLERS)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[Request, Exception], Awaitable[Response]]


class FastUploads:
    """ASGI middleware: ``POST`` to one of ``endpoints``' paths runs its endpoint directly.

    ``guard`` wraps the direct path in the middleware the app's own stack has in front of its
    routes (API key, body size), so a refusal there is the same response on either path.
    """

    def __init__(self, app: ASGIApp, *, endpoints: Mapping[str, Endpoint],
                 guard: Callable[[ASGIApp], ASGIApp],
                 handlers: Mapping[Any, Callable[..., Awaitable[Response]]]) -> None:
        self.app = app
        self.endpoints = dict(endpoints)
        self.handlers = dict(handlers)
        self._direct = guard(self._answer)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] == "http" and scope["method"] == "POST"
                and scope["path"] in self.endpoints and not scope.get("root_path")):
            await self._direct(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        try:
            response = await self.endpoints[scope["path"]](request)
        except Exception as exc:
            # As Starlette's exception middleware: the handler of the nearest class in the MRO;
            # anything unhandled goes on up (to the body limit, then to the 500 middleware).
            handler = next((self.handlers[cls] for cls in type(exc).__mro__
                            if cls in self.handlers), None)
            if handler is None:
                raise
            response = await handler(request, exc)
            exc.__traceback__ = None
        await response(scope, receive, send)
