"""``imgrec serve`` (web tier + workers) and ``imgrec worker`` (one app-tier worker)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ImgrecError


def serve(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (IMGREC_HOST; default 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="TCP port (IMGREC_PORT; default 3000).")
    ] = None,
    state_dir: Annotated[
        Path | None,
        typer.Option(help="Embedded backend's directory (IMGREC_STATE_DIR; default ./.imgrec)."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Pin this many workers; no autoscaling (IMGREC_WORKERS).")
    ] = None,
    min_workers: Annotated[
        int | None,
        typer.Option(help="Autoscaler: fewest workers (IMGREC_MIN_WORKERS; default 0)."),
    ] = None,
    max_workers: Annotated[
        int | None,
        typer.Option(help="Autoscaler: most workers (IMGREC_MAX_WORKERS; default: cores)."),
    ] = None,
    target_backlog_per_worker: Annotated[
        float | None,
        typer.Option(help="Autoscaler: requests per worker (IMGREC_TARGET_BACKLOG_PER_WORKER; "
                          "default 10)."),
    ] = None,
    idle_before_drain_s: Annotated[
        float | None,
        typer.Option(help="Autoscaler: idle seconds before a worker is drained "
                          "(IMGREC_IDLE_BEFORE_DRAIN_S; default 1)."),
    ] = None,
    scale_out_delay_s: Annotated[
        float | None,
        typer.Option(help="Autoscaler: seconds a shortage lasts before launching "
                          "(IMGREC_SCALE_OUT_DELAY_S; default 0)."),
    ] = None,
    scale_in_delay_s: Annotated[
        float | None,
        typer.Option(help="Autoscaler: seconds a surplus lasts before draining "
                          "(IMGREC_SCALE_IN_DELAY_S; default 0)."),
    ] = None,
    autoscale_tick_s: Annotated[
        float | None,
        typer.Option(help="Autoscaler: seconds between ticks (IMGREC_AUTOSCALE_TICK_S; "
                          "default 0.5)."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="mobilenet_v2, efficientnet_lite0 or a .onnx path (IMGREC_MODEL)."),
    ] = None,
    batch_size: Annotated[
        int | None,
        typer.Option(help="Most requests per ONNX batch (IMGREC_BATCH_SIZE; default 8)."),
    ] = None,
    sync_timeout_s: Annotated[
        float | None,
        typer.Option(
            help="Seconds a synchronous request waits before 504 (IMGREC_SYNC_TIMEOUT_S)."
        ),
    ] = None,
    max_upload_bytes: Annotated[
        int | None, typer.Option(help="Upload size limit in bytes (IMGREC_MAX_UPLOAD_BYTES).")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="embedded or aws (IMGREC_BACKEND).")
    ] = None,
    stack: Annotated[
        str | None, typer.Option(help="AWS backend: stack name (IMGREC_STACK).")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="AWS backend: region (IMGREC_REGION).")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the web tier and the app tier's workers on this machine until Ctrl-C or SIGTERM."""
    from ..cli import setup_logging
    from ..config import load_settings
    from ..server import run_server

    setup_logging(verbose)
    try:
        settings = load_settings(
            host=host,
            port=port,
            state_dir=state_dir,
            workers=workers,
            min_workers=min_workers,
            max_workers=max_workers,
            target_backlog_per_worker=target_backlog_per_worker,
            idle_before_drain_s=idle_before_drain_s,
            scale_out_delay_s=scale_out_delay_s,
            scale_in_delay_s=scale_in_delay_s,
            autoscale_tick_s=autoscale_tick_s,
            model=model,
            batch_size=batch_size,
            sync_timeout_s=sync_timeout_s,
            max_upload_bytes=max_upload_bytes,
            backend=backend,
            stack=stack,
            region=region,
        )
        run_server(settings)
    except ImgrecError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc


def worker(
    worker_id: Annotated[
        str | None, typer.Option(help="Name in heartbeats and logs (default: host-pid).")
    ] = None,
    threads: Annotated[
        int | None, typer.Option(help="ONNX Runtime threads (default: cores / max workers).")
    ] = None,
    until_empty: Annotated[
        bool, typer.Option(help="Exit once the request queue is empty.")
    ] = False,
    state_dir: Annotated[
        Path | None, typer.Option(help="Embedded backend's directory (IMGREC_STATE_DIR).")
    ] = None,
    backend: Annotated[
        str | None, typer.Option(help="embedded or aws (IMGREC_BACKEND).")
    ] = None,
    stack: Annotated[
        str | None, typer.Option(help="AWS backend: stack name (IMGREC_STACK).")
    ] = None,
    region: Annotated[
        str | None, typer.Option(help="AWS backend: region (IMGREC_REGION).")
    ] = None,
) -> None:
    """Run one app-tier worker: receive requests, classify in batches, answer. SIGTERM drains."""
    import os

    from ..cli import setup_logging
    from ..worker_main import run_worker

    setup_logging()
    for name, value in (
        ("STATE_DIR", state_dir),
        ("BACKEND", backend),
        ("STACK", stack),
        ("REGION", region),
    ):
        if value is not None:
            os.environ[f"IMGREC_{name}"] = str(value)
    try:
        code = run_worker(worker_id, threads, None, until_empty)
    except ImgrecError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(worker)
