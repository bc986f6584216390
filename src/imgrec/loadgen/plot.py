"""``--plot OUT.png``: latency over time, and workers and backlog over time when known."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from .stats import OK, RequestRecord, StatusSample


def plot_run(
    records: Sequence[RequestRecord], samples: Sequence[StatusSample], out: Path, title: str
) -> None:
    """Write a PNG: latency of each request by start time (errors marked), status below."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = 2 if samples else 1
    fig, axes = plt.subplots(rows, 1, figsize=(10, 3.5 * rows), sharex=True, squeeze=False)
    ax = axes[0][0]
    ok = [r for r in records if r.outcome == OK]
    failed = [r for r in records if r.outcome != OK]
    ax.scatter([r.started_s + r.latency_s for r in ok], [r.latency_s * 1000 for r in ok],
               s=6, label="answered")
    if failed:
        ax.scatter([r.started_s + r.latency_s for r in failed],
                   [r.latency_s * 1000 for r in failed], s=10, marker="x", color="red",
                   label="error")
    ax.set_ylabel("latency (ms)")
    ax.set_title(title)
    ax.legend(loc="upper left")
    if samples:
        low = axes[1][0]
        times = [s.at_s for s in samples]
        low.step(times, [s.workers for s in samples], where="post", label="workers")
        low.set_ylabel("workers")
        twin = low.twinx()
        twin.plot(times, [s.visible + s.in_flight for s in samples], color="tab:orange",
                  label="backlog (queued + in flight)")
        twin.set_ylabel("backlog")
        low.legend(loc="upper left")
        twin.legend(loc="upper right")
    axes[-1][0].set_xlabel("seconds since start")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=100)
    plt.close(fig)
