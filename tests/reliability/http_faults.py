"""A small HTTP proxy in front of moto that rewrites chosen requests and responses.

moto answers as a well-behaved AWS: 404 for every missing key, whole batches accepted. This
proxy makes it answer as AWS also does, at the HTTP level the adapters see: a test gives a
``Rewrite`` that may change a request before moto sees it (drop a batch entry) and the response
before the client sees it (a 403 instead of a 404, a ``Failed`` entry). moto does not check
signatures, so rewritten bodies are accepted.

Example::

    def deny_missing(ex: Exchange) -> None:
        if ex.status == 404:
            ex.status, ex.response_body = 403, ACCESS_DENIED_XML

    with RewritingProxy(moto.url, on_response=deny_missing) as proxy:
        s3 = Endpoint(proxy.url).client("s3")
"""

from __future__ import annotations

import http.client
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection", "date", "server"}


@dataclass
class Exchange:
    """One request through the proxy; ``on_request``/``on_response`` may change its fields."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    status: int = 0
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes = b""

    @property
    def target(self) -> str:
        """The AWS JSON protocol's operation (``AmazonSQS.SendMessageBatch``), if any."""
        return self.headers.get("X-Amz-Target", self.headers.get("x-amz-target", ""))


Rewrite = Callable[[Exchange], None]


class RewritingProxy:
    """Forwards 127.0.0.1:<port> to ``target``; calls the rewrites on each exchange."""

    def __init__(self, target: str, *, on_request: Rewrite | None = None,
                 on_response: Rewrite | None = None) -> None:
        parts = urlsplit(target)
        assert parts.hostname and parts.port, target
        upstream = (parts.hostname, parts.port)
        self.exchanges: list[Exchange] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _forward(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                ex = Exchange(self.command, self.path, dict(self.headers.items()),
                              self.rfile.read(length))
                if on_request is not None:
                    on_request(ex)
                headers = {k: v for k, v in ex.headers.items() if k.lower() not in _HOP_BY_HOP}
                conn = http.client.HTTPConnection(*upstream, timeout=30)
                try:
                    conn.request(ex.method, ex.path, body=ex.body or None, headers=headers)
                    response = conn.getresponse()
                    ex.response_body = response.read()
                    ex.status, ex.response_headers = response.status, response.getheaders()
                finally:
                    conn.close()
                if on_response is not None:
                    on_response(ex)
                proxy.exchanges.append(ex)
                self.send_response(ex.status)
                for name, value in ex.response_headers:
                    if name.lower() not in _HOP_BY_HOP:
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(ex.response_body)))
                self.end_headers()
                if ex.method != "HEAD":
                    self.wfile.write(ex.response_body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _forward

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> RewritingProxy:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
