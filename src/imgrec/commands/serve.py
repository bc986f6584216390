"""``imgrec serve`` (web tier + workers), ``imgrec worker`` (one app-tier worker) and
``imgrec settings`` (every setting, with its flag, variable and default)."""

from __future__ import annotations

import time
from typing import Annotated

import typer

from ..config import Settings
from ..errors import ImgrecError
from .settings_flags import settings_table, with_settings

_STARTED = time.perf_counter()  # about when the interpreter became ready (for worker timings)


@with_settings
def serve(
    settings: Settings,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run the web tier and the app tier's workers on this machine until Ctrl-C or SIGTERM."""
    from ..cli import setup_logging
    from ..server import run_server

    setup_logging(verbose)
    try:
        run_server(settings)
    except ImgrecError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc


@with_settings
def worker(
    settings: Settings,
    worker_id: Annotated[
        str | None, typer.Option(help="Name in heartbeats and logs (default: host-pid).")
    ] = None,
    until_empty: Annotated[
        bool, typer.Option(help="Exit once the request queue is empty.")
    ] = False,
    parent_pid: Annotated[
        int | None, typer.Option(hidden=True, help="Stop when this process is gone.")
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Debug logging.")] = False,
) -> None:
    """Run one app-tier worker: receive requests, classify in batches, answer. SIGTERM drains."""
    from ..cli import setup_logging
    from ..worker.main import run_worker

    setup_logging(verbose)
    try:
        code = run_worker(settings, worker_id=worker_id, parent_pid=parent_pid,
                          until_empty=until_empty, started=_STARTED)
    except ImgrecError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from exc
    raise typer.Exit(code)


@with_settings
def settings(
    settings: Settings,
    markdown: Annotated[
        bool, typer.Option(help="Print the table of every setting (as in the README).")
    ] = False,
) -> None:
    """Show the settings in effect (flags, IMGREC_* variables and defaults combined)."""
    if markdown:
        typer.echo(settings_table(), nl=False)
        return
    for name, value in settings.model_dump().items():
        shown = "(set)" if name == "api_key" and value is not None else value
        typer.echo(f"{name} = {shown}")


def register(app: typer.Typer) -> None:
    app.command()(serve)
    app.command()(worker)
    app.command()(settings)
