"""Turn a response body into an ``Answer``: the course's ``<stem>:<label>`` or imgrec's JSON."""

from __future__ import annotations

import json

from .expected import Answer


class AnswerError(ValueError):
    """A 200 response whose body is not an answer (counted as a ``bad_body`` error)."""


def parse_plain(text: str, stem: str) -> Answer:
    """``<stem>:<label>``; the stem may itself contain ':' so the known one is cut off first."""
    text = text.strip()
    if text.startswith(f"{stem}:"):
        label = text[len(stem) + 1 :]
    else:
        head, sep, label = text.partition(":")
        if not sep:
            raise AnswerError(f"expected '<name>:<label>', got {text[:80]!r}")
    if not label.strip():
        raise AnswerError(f"empty label in {text[:80]!r}")
    return Answer(label=label.strip())


def parse_json(body: bytes) -> Answer:
    """imgrec's ``/api/v1/classify`` body: ``{"label": ..., "class_index": ...}``."""
    try:
        data = json.loads(body)
        label = data["label"]
        index = data.get("class_index")
        return Answer(label=str(label), class_index=None if index is None else int(index))
    except (ValueError, TypeError, KeyError) as exc:
        raise AnswerError(f"not an imgrec classification: {body[:80]!r}") from exc
