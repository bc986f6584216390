"""``imgrec simulate``: replay traffic traces through the scaling policies on a simulated cloud."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from ..autoscale.simulator import SimResult

_POLICIES = ("seed", "target-tracking", "keda", "ours")
_COLUMNS = ("policy", "completion s", "mean s", "p95 s", "p99 s", "peak workers",
            "worker-s", "to zero s")


def _fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def result_row(r: SimResult) -> list[str]:
    completion = _fmt(r.completion_s) if r.completion_s is not None \
        else f"{r.served}/{r.requests} served"
    return [r.policy, completion, _fmt(r.mean_latency_s), _fmt(r.p95_latency_s),
            _fmt(r.p99_latency_s), str(r.peak_workers), f"{r.worker_seconds:.0f}",
            _fmt(r.zero_after_s)]


def markdown_table(results: list[SimResult]) -> str:
    lines = ["| " + " | ".join(_COLUMNS) + " |", "|" + "---|" * len(_COLUMNS)]
    lines += ["| " + " | ".join(result_row(r)) + " |" for r in results]
    return "\n".join(lines)


def simulate(
    trace: Annotated[
        list[str],
        typer.Option("--trace", "-t", help="burst:N, ramp[:PEAK_RPS[:DURATION_S]], "
                     "diurnal[:PEAK_RPS[:PERIOD_S]] or a CSV of arrival times; repeatable."),
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
                            help="Requests per worker (ours and target-tracking).")
    ] = 10.0,
    idle_s: Annotated[
        float, typer.Option("--idle-s", min=0, help="Ours: idle seconds before draining.")
    ] = 1.0,
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
    from rich.table import Table

    from ..autoscale.baselines import KEDA, SEED, TARGET_TRACKING
    from ..autoscale.policy import OURS, PolicySettings
    from ..autoscale.simulator import SimConfig, simulate_all
    from ..autoscale.traces import TraceError, parse_trace

    known = {p.name: p for p in (SEED, TARGET_TRACKING, KEDA, OURS)}
    names = policy or list(_POLICIES)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise typer.BadParameter(f"unknown policy {unknown[0]!r}; choose from "
                                 f"{', '.join(_POLICIES)}", param_hint="--policy")
    if min_workers > max_workers:
        raise typer.BadParameter(f"--min ({min_workers}) is above --max ({max_workers})")
    try:
        traces = [parse_trace(spec) for spec in trace]
    except TraceError as exc:
        raise typer.BadParameter(str(exc), param_hint="--trace") from exc
    config = SimConfig(
        PolicySettings(max_workers=max_workers, min_workers=min_workers,
                       target_backlog_per_worker=target_backlog, idle_before_drain_s=idle_s),
        boot_s=boot_s, rate_per_worker=rate, tick_s=tick_s,
    )
    err = Console(stderr=True)
    with Progress(console=err, transient=True) as progress:
        task = progress.add_task("simulating", total=len(traces) * len(names))

        def step(trace_name: str, policy_name: str) -> None:
            progress.update(task, advance=1, description=f"{trace_name}: {policy_name}")

        results = simulate_all(traces, [known[n] for n in names], config, progress=step)
    out = Console(emoji=False, highlight=False, width=max(110, Console().width))
    for t in traces:
        rows = [r for r in results if r.trace == t.name]
        title = (f"{t.name}: {len(t.arrivals)} requests, max {max_workers} workers, "
                 f"boot {boot_s:g} s, {rate:g} images/s per worker")
        if markdown:
            typer.echo(f"**{title}**\n\n{markdown_table(rows)}\n")
            continue
        table = Table(title=title)
        for col in _COLUMNS:
            table.add_column(col, justify="left" if col == "policy" else "right")
        for r in rows:
            table.add_row(*result_row(r))
        out.print(table)
    if plot is not None:
        from ..autoscale.plot import plot_results

        try:
            plot_results(results, plot)
        except ImportError as exc:
            raise typer.BadParameter("--plot needs matplotlib: pip install 'imgrec[plot]'",
                                     param_hint="--plot") from exc
        err.print(f"plot written to {plot}")


def register(app: typer.Typer) -> None:
    app.command()(simulate)
