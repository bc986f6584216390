"""``imgrec loadgen``: fire concurrent uploads at a deployment and report what came back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ImgrecError

_DEFAULT_FIELD = "myfile"


def loadgen(  # noqa: C901 - one branch per option check; the work is in imgrec.loadgen
    url_arg: Annotated[
        str | None,
        typer.Argument(metavar="URL", help="The service's upload URL, e.g. http://127.0.0.1:3000/"),
    ] = None,
    url_opt: Annotated[
        str | None, typer.Option("--url", help="Same as URL (the course generators' name).")
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option("--images", "--image_folder", help="Folder of images to upload (cycled)."),
    ] = None,
    requests: Annotated[
        int | None,
        typer.Option("--requests", "--num_request", "-n", min=1,
                     help="Requests to send (default: one per image unless --duration)."),
    ] = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", "-c", min=1, help="Closed loop: requests in flight.")
    ] = 1,
    duration: Annotated[
        float | None,
        typer.Option("--duration", min=0.1, help="Stop starting requests after S seconds."),
    ] = None,
    rate: Annotated[
        float | None,
        typer.Option("--rate", min=0.01,
                     help="Open loop: start R requests per second whatever the answers."),
    ] = None,
    field: Annotated[
        str, typer.Option("--field", help="Multipart field: myfile or inputFile (course names).")
    ] = _DEFAULT_FIELD,
    expected: Annotated[
        Path | None,
        typer.Option("--expected", "--prediction_file",
                     help="CSV of right answers: 'Image,Results' or one with class_index."),
    ] = None,
    api: Annotated[
        str, typer.Option("--api", help="plain (POST URL, '<name>:<label>') or json "
                          "(/api/v1/classify). A class_index CSV implies json.")
    ] = "plain",
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write config, summary and every request.")
    ] = None,
    plot: Annotated[
        Path | None, typer.Option("--plot", help="Write a PNG of latency, workers, backlog.")
    ] = None,
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=0.1, help="Seconds before a request counts as a timeout."),
    ] = 60.0,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")] = False,
) -> None:
    """Send concurrent image uploads to URL and report throughput, latency, errors, accuracy.

    Example: imgrec loadgen http://127.0.0.1:3000/ --images ../shared/images/dev
    --requests 500 --concurrency 50 --expected ../shared/images/dev/labels.csv
    """
    from ..loadgen.expected import load_expected
    from ..loadgen.images import load_images
    from ..loadgen.runner import LoadPlan

    url = url_opt or url_arg
    problems = []
    if url is None:
        problems.append("give the service URL (URL or --url), e.g. http://127.0.0.1:3000/")
    elif not url.startswith(("http://", "https://")):
        problems.append(f"URL {url!r} must start with http:// or https://")
    if url_opt and url_arg and url_opt != url_arg:
        problems.append("give the URL once (either URL or --url)")
    if images is None:
        problems.append("give a folder of images with --images (or --image_folder)")
    if field not in ("myfile", "inputFile", "file"):
        problems.append(f"--field must be myfile or inputFile, not {field!r}")
    if api not in ("plain", "json"):
        problems.append(f"--api must be plain or json, not {api!r}")
    if problems:
        _fail("; ".join(problems))
    assert url is not None and images is not None
    try:
        files = load_images(images)
        wanted = load_expected(expected) if expected else None
    except ImgrecError as exc:
        _fail(str(exc))
    if requests is None and duration is None:
        requests = len(files)
    plan = LoadPlan(
        url=url, images=files, requests=requests, duration_s=duration, concurrency=concurrency,
        rate_rps=rate, field=field, api=api, expected=wanted,  # type: ignore[arg-type]
        timeout_s=timeout, status_interval_s=0.5,
    )
    _run(plan, json_out, plot, quiet)


def _fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(2)


def _run(plan: Any, json_out: Path | None, plot: Path | None, quiet: bool) -> None:
    import asyncio

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from ..loadgen.report import render_report, report_document
    from ..loadgen.runner import run_load
    from ..loadgen.stats import OK, RequestRecord, summarize

    console = Console(stderr=True)
    mode = f"rate {plan.rate_rps:g}/s" if plan.rate_rps else f"concurrency {plan.concurrency}"
    typer.echo(f"loadgen: {plan.post_url} ({plan.effective_api} API), {mode}, "
               f"{plan.requests or 'unlimited'} requests"
               + (f", {plan.duration_s:g} s" if plan.duration_s else ""), err=True)
    progress = Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
        TextColumn("{task.fields[errors]} errors"), TimeElapsedColumn(),
        console=console, disable=quiet, transient=False,
    )
    errors = 0
    with progress:
        task = progress.add_task("requests", total=plan.requests, errors=0)

        def on_done(record: RequestRecord) -> None:
            nonlocal errors
            errors += record.outcome != OK
            progress.update(task, advance=1, errors=errors)

        try:
            result = asyncio.run(run_load(plan, on_done))
        except KeyboardInterrupt:
            typer.secho("interrupted", err=True)
            raise typer.Exit(130) from None
    summary = summarize(result.records, result.elapsed_s)
    typer.echo(render_report(summary, checked=plan.expected is not None))
    if json_out is not None:
        config = {
            "url": plan.url, "post_url": plan.post_url, "api": plan.effective_api,
            "requests": plan.requests, "duration_s": plan.duration_s,
            "concurrency": plan.concurrency, "rate_rps": plan.rate_rps, "field": plan.field,
            "images": len(plan.images), "timeout_s": plan.timeout_s,
            "started_at": result.started_at,
        }
        document = report_document(summary, result.records, result.samples, config)
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(document, indent=1))
        typer.echo(f"wrote {json_out}", err=True)
    if plot is not None:
        from ..loadgen.plot import plot_run

        plot_run(result.records, result.samples, plot, f"imgrec loadgen: {plan.post_url}, {mode}")
        note = "" if result.samples else " (no /api/v1/status: latency only)"
        typer.echo(f"wrote {plot}{note}", err=True)
    if summary.error_count:
        raise typer.Exit(1)


def register(app: typer.Typer) -> None:
    app.command()(loadgen)
