"""The wire format of request and reply messages, and of the stored result document.

Messages are small JSON (the course's SQS limit is 1 KB; ``MAX_MESSAGE_BYTES``). Images never
travel in a message, only the key of the stored input. A reply carries the whole result when it
fits, otherwise only a reference and the reader fetches ``results/<id>.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .errors import PermanentError

MAX_MESSAGE_BYTES = 1024
WIRE_VERSION = 1
_MAX_ERROR_CHARS = 300


class MessageError(PermanentError):
    """A message body that is not a valid imgrec message."""


@dataclass(frozen=True, slots=True)
class ClassifyRequest:
    """Classify the image stored at ``key`` and answer on the queue ``reply_to`` (if any).

    ``deadline`` (Unix seconds, optional: ``dl`` on the wire, absent in older messages) is when
    the client stops caring: a worker that takes the request later answers
    ``deadline_exceeded`` without running the model.
    """

    request_id: str
    key: str
    reply_to: str | None
    sent_at: float
    deadline: float | None = None

    def encode(self) -> str:
        fields: dict[str, Any] = {"v": WIRE_VERSION, "id": self.request_id, "key": self.key,
                                  "reply_to": self.reply_to, "t": round(self.sent_at, 6)}
        if self.deadline is not None:
            fields["dl"] = round(self.deadline, 3)
        body = json.dumps(fields, separators=(",", ":"))
        if len(body.encode()) > MAX_MESSAGE_BYTES:
            raise MessageError(f"request message is {len(body)} bytes, over {MAX_MESSAGE_BYTES}")
        return body

    @classmethod
    def decode(cls, body: str) -> ClassifyRequest:
        data = _load(body)
        try:
            return cls(
                request_id=str(data["id"]),
                key=str(data["key"]),
                reply_to=None if data.get("reply_to") is None else str(data["reply_to"]),
                sent_at=float(data.get("t", 0.0)),
                deadline=None if data.get("dl") is None else float(data["dl"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MessageError(f"malformed request message: {exc}") from exc


@dataclass(frozen=True, slots=True)
class TopPrediction:
    label: str
    class_index: int
    probability: float


@dataclass(frozen=True, slots=True)
class ClassifyResult:
    """The outcome of one request: a label with its top-5, or an error that says what was wrong."""

    request_id: str
    ok: bool
    model: str = ""
    top5: tuple[TopPrediction, ...] = ()
    error_code: str | None = None
    error: str | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def label(self) -> str | None:
        return self.top5[0].label if self.top5 else None

    @property
    def class_index(self) -> int | None:
        return self.top5[0].class_index if self.top5 else None

    @property
    def probability(self) -> float | None:
        return self.top5[0].probability if self.top5 else None

    @classmethod
    def failure(cls, request_id: str, code: str, message: str, model: str = "") -> ClassifyResult:
        return cls(request_id=request_id, ok=False, model=model, error_code=code,
                   error=message[:_MAX_ERROR_CHARS])

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.request_id,
            "ok": self.ok,
            "model": self.model,
            "label": self.label,
            "class_index": self.class_index,
            "probability": self.probability,
            "top5": [
                {"label": p.label, "class_index": p.class_index, "probability": p.probability}
                for p in self.top5
            ],
            "error_code": self.error_code,
            "error": self.error,
            "timings_ms": self.timings_ms,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassifyResult:
        try:
            return cls(
                request_id=str(data["id"]),
                ok=bool(data["ok"]),
                model=str(data.get("model", "")),
                top5=tuple(
                    TopPrediction(str(p["label"]), int(p["class_index"]), float(p["probability"]))
                    for p in data.get("top5", [])
                ),
                error_code=data.get("error_code"),
                error=data.get("error"),
                timings_ms={str(k): float(v) for k, v in (data.get("timings_ms") or {}).items()},
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise MessageError(f"malformed result: {exc}") from exc

    def to_json(self) -> bytes:
        return json.dumps(self.to_dict(), separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> ClassifyResult:
        return cls.from_dict(_load(raw))


@dataclass(frozen=True, slots=True)
class Reply:
    """A reply message: the result itself, or only its id when the result is too big to carry."""

    request_id: str
    result: ClassifyResult | None

    def encode(self) -> str:
        if self.result is not None:
            body = json.dumps({"v": WIRE_VERSION, "result": self.result.to_dict()},
                              separators=(",", ":"))
            if len(body.encode()) <= MAX_MESSAGE_BYTES:
                return body
        return json.dumps({"v": WIRE_VERSION, "id": self.request_id, "ref": True},
                          separators=(",", ":"))

    @classmethod
    def decode(cls, body: str) -> Reply:
        data = _load(body)
        if "result" in data:
            result = ClassifyResult.from_dict(data["result"])
            return cls(request_id=result.request_id, result=result)
        if "id" in data:
            return cls(request_id=str(data["id"]), result=None)
        raise MessageError("reply message has neither a result nor an id")


def _load(raw: bytes | str) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MessageError(f"message is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MessageError("message is not a JSON object")
    return data
