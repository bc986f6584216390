"""Trace files (the format and the two recorded traces) and the random (Poisson) shapes."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from imgrec.autoscale.traces import RECORDED_DIR, TraceError, parse_trace, read_csv, to_csv


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "trace.csv"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_file_format_comments_header_extra_columns_any_order(tmp_path: Path) -> None:
    spec = write(tmp_path, "# made by hand\narrival_s,note\n2.5,late\n0,first\n\n1,x\n# end\n")
    assert parse_trace(spec).arrivals == (0.0, 1.0, 2.5)


def test_file_without_header(tmp_path: Path) -> None:
    assert parse_trace(write(tmp_path, "0.5\n0.25\n")).arrivals == (0.25, 0.5)


@pytest.mark.parametrize(("text", "message"), [
    ("arrival_s\n", "no arrival times"),
    ("# only a comment\n", "no arrival times"),
    ("1\n-2\n", "must not be negative"),
    ("arrival_s\n1\nsoon\n", "row 3"),
])
def test_bad_files_say_what_is_wrong(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        parse_trace(write(tmp_path, text))


def test_to_csv_round_trips_through_the_reader(tmp_path: Path) -> None:
    text = to_csv([3.0, 0.1234, 1.5], comments=["recorded by a test"])
    assert text.startswith("# recorded by a test\narrival_s\n0.123\n")
    assert parse_trace(write(tmp_path, text)).arrivals == (0.123, 1.5, 3.0)


def test_recorded_traces_are_named_by_their_file() -> None:
    names = sorted(p.stem for p in RECORDED_DIR.glob("*.csv"))
    assert names == ["bursty", "steady"]
    for name in names:
        trace = parse_trace(name)
        assert trace.name == name
        assert trace.arrivals == tuple(read_csv(RECORDED_DIR / f"{name}.csv"))
        assert RECORDED_DIR.joinpath(f"{name}.csv").read_text().startswith("# imgrec trace")


def test_the_bursty_trace_has_bursts_over_a_trickle() -> None:
    arrivals = parse_trace("bursty").arrivals
    per_second = Counter(int(t) for t in arrivals)
    assert 1700 <= arrivals[-1] <= 1800
    assert sum(1 for n in per_second.values() if n >= 20) >= 8  # the bursts
    quiet = [per_second.get(s, 0) for s in range(0, 500)]
    assert sum(quiet) / len(quiet) < 1.0  # the trickle before the first burst


def test_the_steady_trace_is_flat() -> None:
    arrivals = parse_trace("steady").arrivals
    per_minute = Counter(int(t // 60) for t in arrivals)
    rates = [per_minute[m] / 60 for m in range(30)]
    assert all(2.4 <= r <= 3.6 for r in rates), rates


def test_flat_and_poisson_shapes() -> None:
    assert len(parse_trace("flat:10:60").arrivals) == 600
    a = parse_trace("poisson:flat:10:600@3").arrivals
    assert a == parse_trace("poisson:flat:10:600@3").arrivals  # seeded: reproducible
    assert a != parse_trace("poisson:flat:10:600@4").arrivals
    assert 5400 <= len(a) <= 6600 and list(a) == sorted(a) and a[-1] <= 600
    day = parse_trace("poisson:diurnal:20:600").arrivals
    assert 5400 <= len(day) <= 6600
    assert sum(1 for t in day if t < 60) < sum(1 for t in day if 270 <= t < 330) / 5


@pytest.mark.parametrize(("spec", "message"), [
    ("poisson:burst:10", "poisson:ramp"), ("poisson:flat@x", "seed"), ("flat:0", "positive"),
])
def test_bad_poisson_specs(spec: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        parse_trace(spec)
