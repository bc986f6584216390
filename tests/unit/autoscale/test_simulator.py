"""The simulator, the traces and the baseline policies (all pure; runs in well under a second)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgrec.autoscale.baselines import KEDA, SEED, TARGET_TRACKING
from imgrec.autoscale.policy import OURS, NamedPolicy, PolicySettings
from imgrec.autoscale.simulator import SimConfig, simulate, simulate_all
from imgrec.autoscale.traces import Trace, TraceError, parse_trace
from imgrec.cli import app
from imgrec.percentile import percentile

CLOUD = SimConfig(PolicySettings(max_workers=15), boot_s=40, rate_per_worker=5)


def test_burst_trace() -> None:
    assert parse_trace("burst:3") == Trace("burst:3", (0.0, 0.0, 0.0))


@pytest.mark.parametrize(("spec", "count", "end"), [
    ("ramp:10:100", 500, 100.0), ("diurnal:10:200", 1000, 200.0),
])
def test_shaped_traces_have_the_integral_of_their_rate(spec: str, count: int, end: float) -> None:
    arrivals = parse_trace(spec).arrivals
    assert len(arrivals) == count
    assert list(arrivals) == sorted(arrivals)
    assert arrivals[0] >= 0 and arrivals[-1] <= end


def test_csv_trace(tmp_path: Path) -> None:
    path = tmp_path / "arrivals.csv"
    path.write_text("time\n2.5\n0\n1\n")
    assert parse_trace(str(path)).arrivals == (0.0, 1.0, 2.5)


@pytest.mark.parametrize(("spec", "message"), [
    ("burst:0", "positive whole number"), ("burst", "burst:N"), ("ramp:x", "not a number"),
    ("ramp:1:2:3", "too many"), ("diurnal:-1", "positive"), ("nope", "unknown trace"),
    ("/no/such.csv", "cannot read"),
])
def test_bad_trace_specs_say_what_to_write(spec: str, message: str) -> None:
    with pytest.raises(TraceError, match=message):
        parse_trace(spec)


def test_bad_csv_rows_are_reported(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("1\nsoon\n")
    with pytest.raises(TraceError, match="row 2"):
        parse_trace(str(path))


def test_percentile_nearest_rank() -> None:
    assert percentile([], 50) is None
    assert percentile([3.0, 1.0, 2.0, 4.0], 50) == 2.0
    assert percentile([float(i) for i in range(1, 101)], 95) == 95.0


@pytest.mark.parametrize("policy", [SEED, TARGET_TRACKING, KEDA, OURS], ids=lambda p: p.name)
def test_every_policy_serves_the_grading_burst_within_the_cap(policy: NamedPolicy) -> None:
    result = simulate(parse_trace("burst:100"), policy, CLOUD)
    assert result.served == 100 and result.completion_s is not None
    assert result.completion_s >= CLOUD.boot_s
    assert 1 <= result.peak_workers <= 15
    assert result.zero_after_s is not None  # every policy gets back to 0 in the horizon


def test_ours_is_cheaper_than_the_baselines_and_back_to_zero_fast() -> None:
    traces = [parse_trace("burst:100"), parse_trace("diurnal:10:600")]
    results = simulate_all(traces, [SEED, TARGET_TRACKING, KEDA, OURS], CLOUD)
    for trace in traces:
        rows = {r.policy: r for r in results if r.trace == trace.name}
        ours = rows["ours"]
        assert ours.served == len(trace.arrivals)
        assert ours.worker_seconds < min(r.worker_seconds for r in rows.values()
                                         if r.policy != "ours")
        # A worker launched for the last trickle of requests still has to boot before it can
        # be drained as idle, hence the boot time in the bound.
        bound = 2.5 if trace.name.startswith("burst") else CLOUD.boot_s + 2.5
        assert ours.zero_after_s is not None and ours.zero_after_s <= bound


def test_seed_launches_one_worker_per_message_up_to_the_cap() -> None:
    result = simulate(parse_trace("burst:4"), SEED, CLOUD)
    assert result.peak_workers == 4


def test_min_workers_stay_up_and_the_run_ends() -> None:
    config = SimConfig(PolicySettings(max_workers=3, min_workers=1), boot_s=5)
    result = simulate(parse_trace("burst:20"), OURS, config)
    assert result.served == 20 and result.zero_after_s is None


def test_simulate_command_prints_a_table_for_every_policy(tmp_path: Path) -> None:
    out = CliRunner().invoke(app, ["simulate", "--trace", "burst:100", "--max", "15",
                                   "--boot-s", "40", "--markdown"])
    assert out.exit_code == 0, out.output
    for name in ("seed", "target-tracking", "keda", "ours", "worker-s", "to zero s"):
        assert name in out.output


def test_simulate_command_rejects_bad_input() -> None:
    out = CliRunner().invoke(app, ["simulate", "--trace", "burst:x"])
    assert out.exit_code == 2 and "burst:N" in out.output
    out = CliRunner().invoke(app, ["simulate", "--trace", "burst:1", "--policy", "magic"])
    assert out.exit_code == 2 and "unknown policy" in out.output


def test_simulate_command_plots(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png = tmp_path / "sim.png"
    out = CliRunner().invoke(app, ["simulate", "-t", "burst:20", "--plot", str(png)])
    assert out.exit_code == 0, out.output
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
