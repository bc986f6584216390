"""The EC2 API as the simulated instances' platform answers it: moto, plus their real consoles.

moto answers ``GetConsoleOutput`` with a fixed sample text. This front is the fault proxy
(``tests/helpers/aws_faults``) in front of moto with one fault: ``GetConsoleOutput`` answered
with the simulated instance's captured console, as EC2 does (the last 64 KB, base64); every
other call goes to moto unchanged. Point ``AWS_ENDPOINT_URL_EC2`` at it and ``imgrec aws
status`` or a test reads a boot failure through the real API.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from tests.helpers.aws_faults import Call, FaultProxy, Forward, Reply

CONSOLE_LIMIT = 64 * 1024

ConsoleSource = Callable[[str], str | None]


def console_response(instance_id: str, text: str) -> bytes:
    """EC2's GetConsoleOutput answer for ``text`` (its last 64 KB, base64)."""
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


@dataclass
class ConsoleOutput:
    """The fault: GetConsoleOutput of a simulated instance returns what its console printed."""

    consoles: ConsoleSource

    def handle(self, call: Call, forward: Forward) -> Reply | None:
        instance_id = call.params().get("InstanceId") if call.service == "ec2" else None
        if call.action != "GetConsoleOutput" or not instance_id:
            return None
        return Reply(200, {"Content-Type": "text/xml"},
                     console_response(instance_id, self.consoles(instance_id) or ""))


class Ec2Front:
    """Forwards 127.0.0.1:<port> to moto; ``GetConsoleOutput`` comes from ``consoles``."""

    def __init__(self, moto_url: str, consoles: ConsoleSource) -> None:
        self._proxy = FaultProxy(moto_url.rstrip("/"))
        self._proxy.add(ConsoleOutput(consoles))

    @property
    def url(self) -> str:
        return self._proxy.url

    def start(self) -> Ec2Front:
        self._proxy.__enter__()
        return self

    def stop(self) -> None:
        self._proxy.__exit__(None, None, None)
