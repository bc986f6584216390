"""Summary statistics and the report of a run."""

from __future__ import annotations

import json
import math

import pytest

from imgrec.loadgen.report import render_report, report_document
from imgrec.loadgen.stats import RequestRecord, StatusSample, summarize
from imgrec.loadgen.status import parse_status, service_base
from imgrec.percentile import percentile


@pytest.mark.parametrize(
    ("values", "q", "want"),
    [([1.0], 99, 1.0), ([1.0, 2.0], 50, 1.5), ([0.0, 10.0, 20.0], 90, 18.0),
     ([1.0, 2.0, 3.0], 100, 3.0), ([1.0, 2.0, 3.0], 0, 1.0)],
)
def test_percentile_interpolates(values: list[float], q: float, want: float) -> None:
    assert percentile(values, q, interpolate=True) == pytest.approx(want)


def test_percentile_of_nothing_is_none_and_a_summary_of_nothing_is_nan() -> None:
    assert percentile([], 50, interpolate=True) is None
    assert math.isnan(summarize([], elapsed_s=1.0).latency_p50_s)


def _record(i: int, outcome: str = "ok", latency: float = 0.1,
            correct: bool | None = True) -> RequestRecord:
    return RequestRecord(i, f"{i}.jpg", i * 0.01, latency, outcome, "x", 1, correct)


def test_summary_counts_errors_by_kind_and_latency_of_answers_only() -> None:
    records = [_record(0, latency=0.1), _record(1, latency=0.3, correct=False),
               _record(2, latency=0.2, correct=None), _record(3, "timeout", 60.0, None),
               _record(4, "http_503", 0.01, None), _record(5, "timeout", 60.0, None)]
    s = summarize(records, elapsed_s=2.0)
    assert (s.requests, s.answered, s.error_count) == (6, 3, 3)
    assert s.errors == {"http_503": 1, "timeout": 2}
    assert (s.correct, s.wrong, s.unchecked) == (1, 1, 1)
    assert s.throughput_rps == pytest.approx(1.5)
    assert s.latency_max_s == pytest.approx(0.3)
    assert s.latency_p50_s == pytest.approx(0.2)
    text = render_report(s, checked=True)
    assert "6 sent, 3 answered, 3 errors" in text
    assert "http_503 1, timeout 2" in text
    assert "1 correct, 1 wrong, 1 unchecked" in text


def test_report_of_a_run_with_no_answers_is_valid_json() -> None:
    s = summarize([_record(0, "connection", 0.0, None)], elapsed_s=0.5)
    assert "latency      mean -" in render_report(s, checked=False)
    doc = report_document(s, [_record(0, "connection")], [StatusSample(0.5, 1, 2, 3)], {})
    assert json.loads(json.dumps(doc, allow_nan=False))["summary"]["latency_p99_s"] is None


@pytest.mark.parametrize(
    ("url", "base"),
    [("http://h:3000/", "http://h:3000"), ("http://h:3000", "http://h:3000"),
     ("http://h/api/v1/classify", "http://h"), ("http://h/prefix/", "http://h/prefix")],
)
def test_service_base(url: str, base: str) -> None:
    assert service_base(url) == base


def test_parse_status_reads_backlog_and_workers() -> None:
    data = {"queue": {"visible": 3, "in_flight": 2},
            "workers": {"total": 1, "by_state": {"busy": 1}}, "other": 0}
    assert parse_status(data, 1.0) == StatusSample(1.0, 3, 2, 1, {"busy": 1})
    assert parse_status({"queue": {}}, 1.0) is None
    assert parse_status([], 1.0) is None
