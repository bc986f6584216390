"""Expected-answer CSVs: the course's label format and the class-index format."""

from __future__ import annotations

import pytest

from imgrec.loadgen.expected import Answer, CompareBy, ExpectedError, parse_expected

COURSE = "Image,Results\ntest_0,tench\ntest_1,brambling\n"
INDEXED = "file,wnid,class_index,name\nn01440764_tench.JPEG,n01440764,0,tench\n"


def test_course_format_compares_label_text() -> None:
    expected = parse_expected(COURSE)
    assert expected.compare_by is CompareBy.LABEL
    assert expected.check("test_0.jpg", Answer("tench")) is True
    assert expected.check("test_0.jpg", Answer("Tench")) is False
    assert expected.check("test_1", Answer("brambling", class_index=99)) is True


def test_class_index_format_compares_indices_not_names() -> None:
    expected = parse_expected(INDEXED)
    assert expected.compare_by is CompareBy.CLASS_INDEX
    assert expected.check("n01440764_tench.JPEG", Answer("Tinca tinca", class_index=0)) is True
    assert expected.check("n01440764_tench.JPEG", Answer("tench", class_index=1)) is False


@pytest.mark.parametrize(
    ("csv_text", "filename", "answer"),
    [
        (COURSE, "unknown.jpg", Answer("tench")),  # not in the file
        (INDEXED, "n01440764_tench.JPEG", Answer("tench")),  # plain answer has no index
    ],
)
def test_unjudgeable_answers_are_unchecked(csv_text: str, filename: str, answer: Answer) -> None:
    assert parse_expected(csv_text).check(filename, answer) is None


def test_byte_order_mark_and_spaces_in_header_are_tolerated() -> None:
    expected = parse_expected("\ufeffImage , Results\ntest_0,tench\n")
    assert expected.check("test_0.png", Answer("tench")) is True


@pytest.mark.parametrize(
    ("csv_text", "message"),
    [
        ("a,b\n1,2\n", "expected either 'Image,Results'"),
        ("", "columns none"),
        ("class_index,name\n0,tench\n", "no file column"),
        ("file,class_index\nx.jpg,zero\n", "line 2: class_index 'zero' is not a whole number"),
        ("Image,Results\n", "no rows"),
    ],
)
def test_bad_csv_says_what_is_wrong(csv_text: str, message: str) -> None:
    with pytest.raises(ExpectedError, match=message):
        parse_expected(csv_text)
