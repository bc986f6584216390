"""Draw the simulator's backlog and workers over time: one row per trace, one line per policy."""

from __future__ import annotations

from pathlib import Path

from .simulator import SimResult


def plot_results(results: list[SimResult], path: Path) -> None:
    """Write a PNG to ``path`` (needs matplotlib: ``pip install 'imgrec[plot]'``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    traces = list(dict.fromkeys(r.trace for r in results))
    fig, axes = plt.subplots(len(traces), 2, figsize=(12, 3.2 * len(traces)), squeeze=False)
    for row, trace in enumerate(traces):
        backlog_ax, workers_ax = axes[row]
        for r in (r for r in results if r.trace == trace):
            ts = [s.t for s in r.samples]
            backlog_ax.plot(ts, [s.backlog for s in r.samples], label=r.policy, linewidth=1)
            workers_ax.step(ts, [s.workers for s in r.samples], label=r.policy, where="post",
                            linewidth=1)
        backlog_ax.set_title(f"{trace}: backlog (queued + in service)")
        workers_ax.set_title(f"{trace}: workers (incl. starting)")
        for ax in (backlog_ax, workers_ax):
            ax.set_xlabel("seconds")
            ax.legend(fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
