"""Expected answers from a CSV: the course's ``Image,Results`` or a ``class_index`` table.

The course's file compares label text (``Results``); a table with a ``class_index`` column (like
the dev photos' ``labels.csv``: file, wnid, class_index, name) compares ImageNet class indices,
which do not depend on how a label list spells the names.

Example::

    expected = parse_expected(open("labels.csv").read())
    expected.check("n01440764_tench.JPEG", Answer(label="tench", class_index=0))  # True
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path, PurePath

from ..errors import ImgrecError


class ExpectedError(ImgrecError):
    """An expected-answers CSV that cannot be used; the message says what is wrong."""


class CompareBy(StrEnum):
    LABEL = "label"
    CLASS_INDEX = "class_index"


@dataclass(frozen=True, slots=True)
class Answer:
    """What the service answered for one image: the label and, from the JSON API, the index."""

    label: str | None
    class_index: int | None = None


@dataclass(frozen=True)
class Expected:
    """Expected answers keyed by file stem (``test_0`` for ``test_0.jpg``)."""

    compare_by: CompareBy
    by_stem: dict[str, str | int]

    def lookup(self, filename: str) -> str | int | None:
        stem = PurePath(filename).stem
        return self.by_stem.get(filename, self.by_stem.get(stem))

    def check(self, filename: str, answer: Answer) -> bool | None:
        """True or False when the answer can be judged; None when it cannot (unchecked)."""
        want = self.lookup(filename)
        if want is None:
            return None
        if self.compare_by is CompareBy.CLASS_INDEX:
            return None if answer.class_index is None else answer.class_index == want
        return None if answer.label is None else answer.label.strip() == want


_LABEL_COLUMNS = ("Image", "Results")
_INDEX_FILE_COLUMNS = ("file", "image", "Image", "filename")


def parse_expected(text: str, source: str = "the expected CSV") -> Expected:
    """Parse either format; raise ``ExpectedError`` naming the problem and the accepted formats."""
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = [c.strip() for c in (reader.fieldnames or [])]
    reader.fieldnames = columns
    if "class_index" in columns:
        key = next((c for c in _INDEX_FILE_COLUMNS if c in columns), None)
        if key is None:
            raise ExpectedError(
                f"{source} has a class_index column but no file column "
                f"(one of {', '.join(_INDEX_FILE_COLUMNS)})"
            )
        return Expected(CompareBy.CLASS_INDEX, _rows(reader, key, "class_index", source, int))
    if all(c in columns for c in _LABEL_COLUMNS):
        return Expected(CompareBy.LABEL, _rows(reader, "Image", "Results", source, str))
    raise ExpectedError(
        f"{source} has columns {columns or 'none'}; expected either 'Image,Results' (the "
        "course's format, compares label text) or a 'class_index' column with a 'file' column "
        "(compares ImageNet class indices)"
    )


def _rows(
    reader: csv.DictReader[str], key: str, value: str, source: str, cast: type[int] | type[str]
) -> dict[str, str | int]:
    out: dict[str, str | int] = {}
    for line, row in enumerate(reader, start=2):
        name, raw = (row.get(key) or "").strip(), (row.get(value) or "").strip()
        if not name:
            continue
        try:
            out[PurePath(name).stem] = cast(raw)
        except ValueError:
            raise ExpectedError(
                f"{source}, line {line}: {value} {raw!r} is not a whole number"
            ) from None
    if not out:
        raise ExpectedError(f"{source} has a header but no rows")
    return out


def load_expected(path: Path) -> Expected:
    """Read and parse an expected-answers CSV file."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExpectedError(f"cannot read the expected CSV {path}: {exc}") from exc
    return parse_expected(text, str(path))
