"""A batch as stored: its record and the parts that list its items (JSON, immutable once put).

A batch grows by parts: ``POST /api/v1/batches`` writes the record (and a first part if files
came with it), ``POST /api/v1/batches/{id}/items`` adds one part per call. A part is written
once, after its items are queued, under a name the client may choose (``part``), so a client
that resends a part after an interruption gets the stored one back instead of new items.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from ..messages import MessageError

_PART_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def is_part_name(value: str) -> bool:
    return bool(_PART_NAME.match(value))


@dataclass(frozen=True)
class BatchItem:
    """One image of a batch: its request id and the name it was given (file or archive path)."""

    request_id: str
    name: str


@dataclass(frozen=True)
class BatchRecord:
    batch_id: str
    created_at: float

    def to_json(self) -> bytes:
        return json.dumps({"v": 1, "id": self.batch_id, "created_at": self.created_at}).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> BatchRecord:
        data = _load(raw)
        try:
            return cls(str(data["id"]), float(data["created_at"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise MessageError(f"malformed batch record: {exc}") from exc


@dataclass(frozen=True)
class BatchPart:
    name: str
    items: tuple[BatchItem, ...]

    def to_json(self) -> bytes:
        return json.dumps({"v": 1, "part": self.name,
                           "items": [[i.request_id, i.name] for i in self.items]},
                          separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> BatchPart:
        data = _load(raw)
        try:
            items = tuple(BatchItem(str(rid), str(name)) for rid, name in data["items"])
            return cls(str(data["part"]), items)
        except (KeyError, TypeError, ValueError) as exc:
            raise MessageError(f"malformed batch part: {exc}") from exc


def _load(raw: bytes) -> dict[str, Any]:
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise MessageError(f"batch object is not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MessageError("batch object is not a JSON object")
    return data
