"""``imgrec simulate``: replay traffic traces through the scaling policies on a simulated cloud."""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ..autoscale.simulator import Contender, SimResult
    from ..autoscale.traces import Trace

_POLICIES = ("seed", "target-tracking", "keda", "ratio", "ours")
_COLUMNS = ("policy", "completion s", "mean s", "p95 s", "p99 s", "peak workers",
            "launches", "worker-s", "to zero s")


class Start(enum.StrEnum):
    """What our policy knows at the start of a run."""

    BOTH = "both"
    WARM = "warm"  # rate and boot time remembered from a previous run
    COLD = "cold"  # nothing known


class DispatchChoice(enum.StrEnum):
    FIRST = "first"
    RANDOM = "random"
    FAIR = "fair"


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def result_row(r: SimResult) -> list[str]:
    completion = _fmt(r.completion_s) if r.completion_s is not None \
        else f"{r.served}/{r.requests} served"
    return [r.policy, completion, _fmt(r.mean_latency_s), _fmt(r.p95_latency_s),
            _fmt(r.p99_latency_s), str(r.peak_workers), str(r.launches),
            f"{r.worker_seconds:.0f}", _fmt(r.zero_after_s)]


def markdown_table(results: list[SimResult]) -> str:
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(result_row(r)) + " |" for r in results]
    return "\n".join(lines)


def contenders(names: list[str], start: Start) -> list[Contender]:
    """The policies to run; ours warm, cold or both."""
    from ..autoscale.baselines import KEDA, RATIO, SEED, TARGET_TRACKING
    from ..autoscale.policy import OURS
    from ..autoscale.simulator import Contender

    known = {p.name: p for p in (SEED, TARGET_TRACKING, KEDA, RATIO, OURS)}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise typer.BadParameter(f"unknown policy {unknown[0]!r}; choose from "
                                 f"{', '.join(_POLICIES)}", param_hint="--policy")
    chosen: list[Contender] = []
    for n in names:
        if n != "ours" or start != Start.COLD:
            chosen.append(Contender(known[n]))
        if n == "ours" and start != Start.WARM:
            chosen.append(Contender(known[n], warm=False))
    return chosen


def parse_traces(specs: list[str]) -> list[Trace]:
    from ..autoscale.traces import TraceError, parse_trace

    try:
        return [parse_trace(spec) for spec in specs]
    except TraceError as exc:
        raise typer.BadParameter(str(exc), param_hint="--trace") from exc


def simulate(
    trace: Annotated[
        list[str],
        typer.Option("--trace", "-t", help="burst:N, ramp[:PEAK_RPS[:DURATION_S]], "
                     "diurnal[:PEAK_RPS[:PERIOD_S]], flat[:RPS[:DURATION_S]], "
                     "poisson:<shape>[@SEED], bursty, steady or a CSV of arrival times; "
                     "repeatable."),
    ],
    max_workers: Annotated[int, typer.Option("--max", min=1, help="Most workers.")] = 15,
    min_workers: Annotated[int, typer.Option("--min", min=0, help="Fewest workers.")] = 0,
    boot_s: Annotated[
        float, typer.Option("--boot-s", min=0, help="Seconds from launch to ready (EC2: 30-60).")
    ] = 40.0,
    rate: Annotated[
        float, typer.Option("--rate", min=0.001, help="Images per second one worker serves.")
    ] = 5.0,
    tick_s: Annotated[
        float, typer.Option("--tick-s", min=0.05, help="Seconds between our policy's ticks.")
    ] = 1.0,
    target_backlog: Annotated[
        float, typer.Option("--target-backlog", min=0.001,
                            help="Requests per worker (ratio, ours while cold, target-tracking).")
    ] = 10.0,
    idle_s: Annotated[
        float, typer.Option("--idle-s", min=0, help="Ours: idle seconds before draining.")
    ] = 1.0,
    target_latency_s: Annotated[
        float | None, typer.Option("--target-latency-s", min=0.001,
                                   help="Ours: seconds to clear a backlog by; default 1.5 x boot.")
    ] = None,
    start: Annotated[
        Start, typer.Option("--start", help="Ours: warm (rate and boot time known from a previous "
                            "run), cold (nothing known), or both (two rows).")
    ] = Start.BOTH,
    dispatch: Annotated[
        DispatchChoice, typer.Option("--dispatch", help="Which idle worker takes a request: first "
                                     "(earliest launched), random (as SQS long polls) or fair "
                                     "(longest idle).")
    ] = DispatchChoice.FIRST,
    heartbeat_s: Annotated[
        float, typer.Option("--heartbeat-s", min=0,
                            help="Seconds between workers' heartbeats (what the policy sees).")
    ] = 2.0,
    boot_jitter_s: Annotated[
        float, typer.Option("--boot-jitter-s", min=0, help="Boot times vary by up to this.")
    ] = 0.0,
    seed: Annotated[int, typer.Option("--seed", help="Random seed (dispatch, jitter).")] = 1,
    policy: Annotated[
        list[str] | None,
        typer.Option("--policy", "-p", help=f"Policies to run ({', '.join(_POLICIES)}); "
                     "default all; repeatable."),
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of backlog and workers over time.")
    ] = None,
    markdown: Annotated[bool, typer.Option("--markdown", help="Print Markdown tables.")] = False,
) -> None:
    """Compare scaling policies on traffic traces with simulated workers (no processes start)."""
    from rich.console import Console
    from rich.progress import Progress

    from ..autoscale.policy import PolicySettings
    from ..autoscale.simulator import SimConfig, simulate_all

    runs = contenders(policy or list(_POLICIES), start)
    if min_workers > max_workers:
        raise typer.BadParameter(f"--min ({min_workers}) is above --max ({max_workers})")
    traces = parse_traces(trace)
    config = SimConfig(
        PolicySettings(max_workers=max_workers, min_workers=min_workers,
                       target_backlog_per_worker=target_backlog, idle_before_drain_s=idle_s,
                       target_latency_s=target_latency_s),
        boot_s=boot_s, rate_per_worker=rate, tick_s=tick_s, dispatch=dispatch.value,
        heartbeat_s=heartbeat_s, boot_jitter_s=boot_jitter_s, seed=seed,
    )
    err = Console(stderr=True)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("simulating", total=len(traces) * len(runs))

        def step(trace_name: str, policy_name: str) -> None:
            progress.update(task, advance=1, description=f"{trace_name}: {policy_name}")

        results = simulate_all(traces, runs, config, progress=step)
    title = (f"max {max_workers} workers, boot {boot_s:g} s, {rate:g} images/s per worker, "
             f"{dispatch.value} dispatch")
    print_tables(traces, results, title, markdown)
    if plot is not None:
        from ..autoscale.plot import plot_results

        try:
            plot_results(results, plot)
        except ImportError as exc:
            raise typer.BadParameter("--plot needs matplotlib: pip install 'imgrec[plot]'",
                                     param_hint="--plot") from exc
        err.print(f"plot written to {plot}")


def print_tables(traces: list[Trace], results: list[SimResult], title: str,
                 markdown: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    out = Console(emoji=False, highlight=False, width=max(110, Console().width))
    for t in traces:
        rows = [r for r in results if r.trace == t.name]
        heading = f"{t.name}: {len(t.arrivals)} requests, {title}"
        if markdown:
            typer.echo(f"**{heading}**\n\n{markdown_table(rows)}\n")
            continue
        table = Table(title=heading)
        for col in _COLUMNS:
            table.add_column(col, justify="left" if col == "policy" else "right")
        for r in rows:
            table.add_row(*result_row(r))
        out.print(table)


def register(app: typer.Typer) -> None:
    app.command()(simulate)
