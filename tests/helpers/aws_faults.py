"""An HTTP proxy in front of moto that makes it behave like real AWS where moto does not.

moto is strongly consistent, has no quotas, answers 404 where S3 answers 403 and lets a queue
be re-created at once. ``FaultProxy`` forwards every call to moto and lets a test add *faults*:
rules that see one AWS call (service, action, request) and either answer it themselves with
exactly the error AWS documents, or rewrite moto's answer. The service talks to the proxy
(``AWS_ENDPOINT_URL`` points at it) and cannot tell.

Example::

    with FaultProxy(moto.url) as proxy:
        proxy.add(DescribeLag(seconds=2))
        proxy.add(Ec2Error("RunInstances", "VcpuLimitExceeded", "You have requested more vCPU"))
        env["AWS_ENDPOINT_URL"] = proxy.url
"""

from __future__ import annotations

import http.client
import json
import re
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

_HOP_HEADERS = {"connection", "keep-alive", "transfer-encoding", "content-length", "host"}
_CREDENTIAL_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/[^/]+/([^/]+)/aws4_request")


@dataclass
class Call:
    """One AWS API call as the proxy received it."""

    service: str  # ec2, sqs, s3, iam, sts, ...
    action: str  # RunInstances, CreateQueue, GetObject (S3: method + "Object"/"Bucket")
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def params(self) -> dict[str, str]:
        """The call's parameters: query-protocol form fields, or the JSON protocol's body."""
        if self.headers.get("x-amz-target"):
            data = json.loads(self.body or b"{}")
            return {k: str(v) for k, v in data.items()}
        fields = parse_qs(self.body.decode(errors="replace")) if self.body else {}
        return {k: v[0] for k, v in fields.items()}


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes


Forward = Callable[[], Reply]


class Fault(Protocol):
    def handle(self, call: Call, forward: Forward) -> Reply | None:
        """Answer the call (or rewrite ``forward()``'s answer); None to leave it alone."""
        ...


def ec2_error(code: str, message: str, status: int = 400) -> Reply:
    body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Response><Errors><Error><Code>{code}"
            f"</Code><Message>{message}</Message></Error></Errors><RequestID>fault-proxy"
            "</RequestID></Response>")
    return Reply(status, {"Content-Type": "text/xml"}, body.encode())


def sqs_error(code: str, message: str, status: int = 400) -> Reply:
    """An SQS error as its JSON protocol sends it (the query code in x-amzn-query-error)."""
    body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode()
    return Reply(status, {"Content-Type": "application/x-amz-json-1.0",
                          "x-amzn-query-error": f"AWS.SimpleQueueService.{code};Sender"}, body)


def s3_error(code: str, message: str, status: int) -> Reply:
    body = (f"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>"
            f"<Message>{message}</Message><RequestId>fault-proxy</RequestId></Error>")
    return Reply(status, {"Content-Type": "application/xml"}, body.encode())


@dataclass
class Ec2Error:
    """Fail an EC2 action with ``code`` (every call, or the first ``times``)."""

    action: str
    code: str
    message: str
    times: int | None = None
    seen: int = 0

    def handle(self, call: Call, forward: Forward) -> Reply | None:
        if call.service != "ec2" or call.action != self.action:
            return None
        if self.times is not None and self.seen >= self.times:
            return None
        self.seen += 1
        return ec2_error(self.code, self.message)


@dataclass
class RunInstancesAsAws:
    """RunInstances launches as many as it can up to MaxCount, as AWS does (moto: MinCount).

    moto has no capacity limit, so "as many as it can" is MaxCount; the request is rewritten
    before it reaches moto. ``aws_adapters`` puts this in front of every test's moto.
    """

    def handle(self, call: Call, forward: Forward) -> Reply | None:
        if call.service == "ec2" and call.action == "RunInstances":
            fields = parse_qs(call.body.decode(), keep_blank_values=True)
            if "MaxCount" in fields:
                fields["MinCount"] = fields["MaxCount"]
                call.body = urlencode(fields, doseq=True).encode()
        return None


@dataclass
class DescribeLag:
    """DescribeInstances does not show an instance for ``seconds`` after RunInstances made it.

    AWS documents this eventual consistency: "the instance might not be visible to Describe
    calls immediately after it is launched".
    """

    seconds: float
    clock: Callable[[], float] = time.monotonic
    launched: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def handle(self, call: Call, forward: Forward) -> Reply | None:
        if call.service != "ec2" or call.action not in ("RunInstances", "DescribeInstances"):
            return None
        reply = forward()
        if reply.status != 200:
            return reply
        root = ET.fromstring(reply.body)
        ns = root.tag.split("}")[0] + "}" if root.tag.startswith("{") else ""
        if call.action == "RunInstances":
            with self._lock:
                for item in root.iter(f"{ns}instanceId"):
                    self.launched.setdefault(item.text or "", self.clock())
            return reply
        hidden = self._hidden()
        for reservations in root.iter(f"{ns}reservationSet"):
            for reservation in list(reservations):
                ids = {e.text for e in reservation.iter(f"{ns}instanceId")}
                if ids & hidden:
                    reservations.remove(reservation)
        return Reply(reply.status, reply.headers, ET.tostring(root, xml_declaration=True,
                                                              encoding="UTF-8"))

    def _hidden(self) -> set[str]:
        now = self.clock()
        with self._lock:
            return {i for i, t in self.launched.items() if now - t < self.seconds}


@dataclass
class QueueDeletedRecently:
    """SQS refuses to create a queue for ``cooldown_s`` after a queue of that name was deleted."""

    cooldown_s: float = 60.0
    clock: Callable[[], float] = time.monotonic
    deleted: dict[str, float] = field(default_factory=dict)
    refused: int = 0

    def handle(self, call: Call, forward: Forward) -> Reply | None:
        if call.service != "sqs":
            return None
        params = call.params()
        if call.action == "DeleteQueue":
            reply = forward()
            if reply.status == 200:
                self.deleted[params.get("QueueUrl", "").rsplit("/", 1)[-1]] = self.clock()
            return reply
        if call.action == "CreateQueue":
            name = params.get("QueueName", "")
            if name in self.deleted and self.clock() - self.deleted[name] < self.cooldown_s:
                self.refused += 1
                return sqs_error("QueueDeletedRecently",
                                 "You must wait 60 seconds after deleting a queue before you "
                                 "can create another queue with the same name.")
        return None


@dataclass
class ServiceQuota:
    """Service Quotas answers GetServiceQuota with ``value`` (moto knows only VPC quotas)."""

    value: float

    def handle(self, call: Call, forward: Forward) -> Reply | None:
        if call.service != "servicequotas" or call.action != "GetServiceQuota":
            return None
        params = call.params()
        quota = {"ServiceCode": params.get("ServiceCode"), "QuotaCode": params.get("QuotaCode"),
                 "QuotaName": "Running On-Demand Standard (A, C, D, H, I, M, R, T, Z) instances",
                 "Value": self.value, "Unit": "None", "Adjustable": True}
        return Reply(200, {"Content-Type": "application/x-amz-json-1.1"},
                     json.dumps({"Quota": quota}).encode())


@dataclass
class MissingKeyForbidden:
    """S3 without s3:ListBucket: a missing key is 403 AccessDenied, not 404 NoSuchKey."""

    rewritten: int = 0

    def handle(self, call: Call, forward: Forward) -> Reply | None:
        if call.service != "s3" or call.action not in ("GETObject", "HEADObject"):
            return None
        reply = forward()
        if reply.status != 404 or (call.method == "GET" and b"NoSuchKey" not in reply.body):
            return reply
        self.rewritten += 1
        if call.method == "HEAD":
            return Reply(403, {"Content-Type": "application/xml"}, b"")
        return s3_error("AccessDenied", "Access Denied", 403)


@dataclass
class SqsBatchEntriesFail:
    """The first ``operation`` call fails for entries ``ids`` (HTTP 200 with a ``Failed`` list,
    as SQS documents); the others reach moto. ``calls`` records each call's entry ids."""

    operation: str  # SendMessageBatch, DeleteMessageBatch
    ids: set[str]
    sender_fault: bool = False
    calls: list[list[str]] = field(default_factory=list)

    def handle(self, call: Call, forward: Forward) -> Reply | None:
        if call.service != "sqs" or call.action != self.operation:
            return None
        body = json.loads(call.body)
        self.calls.append([e["Id"] for e in body["Entries"]])
        if len(self.calls) > 1:
            return None
        dropped = [e["Id"] for e in body["Entries"] if e["Id"] in self.ids]
        body["Entries"] = [e for e in body["Entries"] if e["Id"] not in self.ids]
        call.body = json.dumps(body).encode()
        reply = forward()
        answer = json.loads(reply.body)
        answer["Failed"] = [{"Id": i, "SenderFault": self.sender_fault, "Code": "InternalError",
                             "Message": "We encountered an internal error. Please try again."}
                            for i in dropped]
        return Reply(reply.status, reply.headers, json.dumps(answer).encode())


class FaultProxy:
    """Forwards 127.0.0.1:<port> to ``target`` (moto), applying the faults in order."""

    def __init__(self, target: str) -> None:
        parts = urlsplit(target)
        assert parts.hostname and parts.port, target
        self._target = (parts.hostname, parts.port)
        self.faults: list[Fault] = []
        self.calls: list[Call] = []  # every call received, for assertions
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy",
                                        daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def add(self, fault: Fault) -> Fault:
        self.faults.append(fault)
        return fault

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    def count(self, service: str, action: str) -> int:
        return len(self.find(service, action))

    def find(self, service: str, action: str) -> list[Call]:
        return [c for c in list(self.calls) if (c.service, c.action) == (service, action)]

    def _forward(self, call: Call) -> Reply:
        conn = http.client.HTTPConnection(*self._target, timeout=60)
        try:
            headers = {k: v for k, v in call.headers.items() if k not in _HOP_HEADERS}
            headers["Host"] = f"{self._target[0]}:{self._target[1]}"
            conn.request(call.method, call.path, body=call.body or None, headers=headers)
            response = conn.getresponse()
            body = response.read()
            headers = {k: v for k, v in response.getheaders() if k.lower() not in _HOP_HEADERS}
            if call.method == "HEAD":  # no body, but the length of the object it describes
                headers["Content-Length"] = response.getheader("Content-Length") or "0"
            return Reply(response.status, headers, body)
        finally:
            conn.close()

    def _apply(self, call: Call) -> Reply:
        self.calls.append(call)
        cached: list[Reply] = []

        def forward() -> Reply:
            if not cached:
                cached.append(self._forward(call))
            return cached[0]

        for fault in list(self.faults):
            reply = fault.handle(call, forward)
            if reply is not None:
                return reply
        return forward()

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                headers = {k.lower(): v for k, v in self.headers.items()}
                call = Call(_service(headers), "", self.command, self.path, headers, body)
                call.action = _action(call)
                reply = proxy._apply(call)
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                if "Content-Length" not in reply.headers:
                    self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(reply.body)

            do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _serve

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass

        return Handler


def _service(headers: dict[str, str]) -> str:
    found = _CREDENTIAL_SCOPE.search(headers.get("authorization", ""))
    return found.group(1) if found else ""


def _action(call: Call) -> str:
    target = call.headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    if call.service == "s3":
        key = urlsplit(call.path).path.strip("/").partition("/")[2]
        return f"{call.method}{'Object' if key else 'Bucket'}"
    return call.params().get("Action", "")
