"""``imgrec batch``: classify a folder, an archive or an S3 prefix through a running service."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

if TYPE_CHECKING:
    from ..batches.client import Outcome, Report

_BAR = 30
_PLAIN_EVERY_S = 5.0


def progress_line(uploaded: int, total: int, counts: dict[str, int], elapsed_s: float) -> str:
    """``[#####     ] 120/2000 classified (3 failed), 300/2000 sent, 41.0 images/s``."""
    finished = counts.get("done", 0) + counts.get("failed", 0)
    filled = int(_BAR * finished / total) if total else 0
    rate = finished / elapsed_s if elapsed_s > 0 else 0.0
    return (f"[{'#' * filled}{' ' * (_BAR - filled)}] {finished}/{total} classified "
            f"({counts.get('failed', 0)} failed), {uploaded}/{total} sent, {rate:.1f} images/s")


def reporter(stream: TextIO) -> Report:
    """Progress on ``stream``: one line redrawn on a terminal, a line every 5 s otherwise."""
    started = time.monotonic()
    last = [0.0]
    tty = stream.isatty()

    def report(uploaded: int, total: int, counts: dict[str, int]) -> None:
        now = time.monotonic()
        line = progress_line(uploaded, total, counts, now - started)
        if tty:
            stream.write("\r" + line)
        elif now - last[0] >= _PLAIN_EVERY_S or counts.get("queued", 1) == 0:
            stream.write(line + "\n")
            last[0] = now
        stream.flush()

    return report


def summary(outcome: Outcome, out: Path) -> list[str]:
    counts = outcome.counts
    lines = [f"batch {outcome.batch_id}: {counts.get('done', 0)} classified, "
             f"{counts.get('failed', 0)} failed; results in {out}"]
    if outcome.worker_seconds_per_image is not None:
        cost = f"worker-seconds per image: {outcome.worker_seconds_per_image:.4f}"
        if outcome.price_per_1000_images is not None:
            cost += (f" (about ${outcome.price_per_1000_images:.4f} per 1,000 images on "
                     f"{outcome.worker_kind}, On-Demand)")
        lines.append(cost)
    else:
        lines.append("worker-seconds per image: not known (this service runs no fleet of its "
                     "own, or its workers classified nothing meanwhile)")
    return lines


def batch(
    source: Annotated[str, typer.Argument(
        metavar="DIR|ARCHIVE|s3://bucket/prefix",
        help="A folder of images, a zip or tar archive of them, or an S3 prefix (AWS).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Results file: .csv, or .jsonl for "
                                      "JSON Lines.")],
    url: Annotated[str, typer.Option("--url", help="The running service.")] =
        "http://127.0.0.1:3000",
    chunk: Annotated[int, typer.Option("--chunk", min=1, max=1000,
                                       help="Images per upload request.")] = 50,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Classify many images through the service's bulk lane and write one row per image.

    Interactive requests are served first. Interrupted? Run the same command again: it resumes
    from the state file next to --out without sending anything twice.

    Example: imgrec batch ~/photos --out photos.csv --url http://127.0.0.1:3000
    """
    from ..batches.client import BatchClientError, ServiceClient, run_batch
    from ..batches.sources import SourceError

    client = ServiceClient(url, api_key=os.environ.get("IMGREC_API_KEY"))
    report = reporter(sys.stderr) if not quiet else (lambda *_: None)
    try:
        outcome = run_batch(client, source, out, report=report, chunk_size=chunk)
    except (BatchClientError, SourceError) as exc:
        typer.secho(f"\nerror: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    except KeyboardInterrupt:
        typer.secho("\ninterrupted: run the same command again to resume", err=True)
        raise typer.Exit(130) from None
    finally:
        client.close()
    if not quiet:
        sys.stderr.write("\n")
    for line in summary(outcome, out):
        typer.echo(line, err=True)
    raise typer.Exit(1 if outcome.counts.get("failed", 0) else 0)


def register(app: typer.Typer) -> None:
    app.command()(batch)
