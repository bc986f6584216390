"""Parsing response bodies into answers."""

from __future__ import annotations

import pytest

from imgrec.loadgen.answers import AnswerError, parse_json, parse_plain
from imgrec.loadgen.expected import Answer


@pytest.mark.parametrize(
    ("text", "stem", "label"),
    [
        ("test_0:tench", "test_0", "tench"),
        ("a:b:c:crane\n", "a:b:c", "crane"),  # the stem may contain ':'
        ("other:tabby, tabby cat", "test_0", "tabby, tabby cat"),
    ],
)
def test_plain_answer(text: str, stem: str, label: str) -> None:
    assert parse_plain(text, stem) == Answer(label)


@pytest.mark.parametrize("text", ["no colon here", "test_0:", ""])
def test_plain_answer_rejects_non_answers(text: str) -> None:
    with pytest.raises(AnswerError):
        parse_plain(text, "test_0")


def test_json_answer_has_the_class_index() -> None:
    assert parse_json(b'{"label": "tench", "class_index": 0}') == Answer("tench", 0)


@pytest.mark.parametrize("body", [b"not json", b"[]", b'{"class_index": 1}', b'{"label": "x", '
                                  b'"class_index": "one"}'])
def test_json_answer_rejects_other_bodies(body: bytes) -> None:
    with pytest.raises(AnswerError):
        parse_json(body)
