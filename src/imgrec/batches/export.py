"""A batch's results as CSV or JSON Lines, one row per item in submission order (pure)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any, Literal

from .progress import BatchView

Format = Literal["jsonl", "csv"]
CSV_COLUMNS = ("file", "id", "status", "label", "class_index", "probability", "error",
               "detail")
MEDIA_TYPES: dict[Format, str] = {"jsonl": "application/x-ndjson", "csv": "text/csv"}


def rows(view: BatchView) -> Iterator[dict[str, Any]]:
    for item, state, result in view.rows():
        yield {
            "file": item.name, "id": item.request_id, "status": state,
            "label": result.label if result else None,
            "class_index": result.class_index if result else None,
            "probability": result.probability if result else None,
            "error": result.error_code if result and not result.ok else None,
            "detail": result.error if result and not result.ok else None,
        }


def export(view: BatchView, fmt: Format) -> Iterator[str]:
    """The results table, as chunks of text."""
    if fmt == "jsonl":
        for row in rows(view):
            yield json.dumps(row, ensure_ascii=False) + "\n"
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in rows(view):
        writer.writerow({k: "" if v is None else v for k, v in row.items()})
        if buf.tell() > 64 * 1024:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def choose_format(query: str | None, accept: str) -> Format | None:
    """The export format a request asks for (``?format=`` first, then Accept), or None (JSON)."""
    if query in ("jsonl", "csv"):
        return query  # type: ignore[return-value]
    if "text/csv" in accept:
        return "csv"
    if "application/x-ndjson" in accept or "application/jsonl" in accept:
        return "jsonl"
    return None
