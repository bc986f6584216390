"""The EC2 API as the simulated instances' platform answers it: moto, plus their real consoles.

moto answers ``GetConsoleOutput`` with a fixed sample text. This front forwards every EC2 call
to moto unchanged (the Host header too, so a signature still verifies) except that one, which it
answers with the simulated instance's captured console, as EC2 does: the last 64 KB, base64.
Point ``AWS_ENDPOINT_URL_EC2`` at it and ``imgrec aws status`` or a test reads a boot failure
through the real API.
"""

from __future__ import annotations

import base64
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs
from xml.sax.saxutils import escape

import httpx

CONSOLE_LIMIT = 64 * 1024
# httpx hands back decoded bodies, so Content-Encoding goes too (EC2 requests are not encoded).
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "te",
               "trailer", "upgrade", "proxy-authorization", "proxy-authenticate",
               "content-encoding"}

ConsoleSource = Callable[[str], str | None]


class Ec2Front:
    """Forwards 127.0.0.1:<port> to moto; ``GetConsoleOutput`` comes from ``consoles``."""

    def __init__(self, moto_url: str, consoles: ConsoleSource) -> None:
        self.moto_url = moto_url.rstrip("/")
        self.consoles = consoles
        self.client = httpx.Client(timeout=60)
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="ec2-front",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self) -> Ec2Front:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self.client.close()

    def console_response(self, instance_id: str) -> bytes:
        text = self.consoles(instance_id) or ""
        data = text.encode()[-CONSOLE_LIMIT:]
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            '<GetConsoleOutputResponse xmlns="http://ec2.amazonaws.com/doc/2016-11-15/">'
            f"<requestId>{uuid.uuid4()}</requestId>"
            f"<instanceId>{escape(instance_id)}</instanceId>"
            f"<timestamp>{stamp}</timestamp>"
            f"<output>{base64.b64encode(data).decode()}</output>"
            "</GetConsoleOutputResponse>"
        ).encode()


def _handler(front: Ec2Front) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib's name
            pass

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _reply(self, status: int, headers: list[tuple[str, str]], body: bytes) -> None:
            self.send_response(status)
            for key, value in headers:
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _forward(self) -> None:
            body = self._body()
            form = parse_qs(body.decode(errors="replace")) if self.command == "POST" else {}
            if form.get("Action") == ["GetConsoleOutput"] and form.get("InstanceId"):
                self._reply(200, [("Content-Type", "text/xml")],
                            front.console_response(form["InstanceId"][0]))
                return
            headers = [(k, v) for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP]
            try:
                resp = front.client.request(self.command, front.moto_url + self.path,
                                            headers=headers, content=body)
            except httpx.HTTPError as exc:
                self._reply(502, [("Content-Type", "text/plain")], str(exc).encode())
                return
            self._reply(resp.status_code, list(resp.headers.multi_items()), resp.content)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward  # noqa: N815

    return Handler
