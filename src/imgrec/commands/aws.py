"""``imgrec aws up / status / down / render``: one stack of S3, SQS, IAM and EC2 resources."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError, ImgrecError

aws_app = typer.Typer(help="Provision, inspect and delete a stack on AWS.", no_args_is_help=True)

StackOpt = Annotated[str, typer.Option("--stack", help="Stack name, e.g. demo (names every "
                                       "resource: demo-requests, demo-inputs-...).")]
EXAMPLE_WHEELHOUSE_SHA256 = "0" * 64
EXAMPLE_WHEELHOUSE_KEY = "deploy/wheelhouse-0000000000000000.tar"
RegionOpt = Annotated[str | None, typer.Option(help="AWS region (default: AWS_REGION / "
                                                   "profile).")]


def _print_step(kind: str, name: str, status: str) -> None:
    typer.echo(f"  {kind:<16} {name:<60} {status}")


def _fail(exc: ImgrecError) -> typer.Exit:
    typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    return typer.Exit(2)


@aws_app.command()
def up(
    stack: StackOpt,
    region: RegionOpt = None,
    instance_type: Annotated[str, typer.Option(help="EC2 instance type of workers/web.")] = (
        "c7i.large"),
    ami: Annotated[str | None, typer.Option(help="AMI id (default: latest Debian 12, whose "
                                               "python3 is 3.11).")] = None,
    with_web: Annotated[bool, typer.Option(help="Also run the web tier on an instance.")] = False,
    allow_cidr: Annotated[str | None, typer.Option(help="Who may reach the web tier, e.g. "
                                                      "203.0.113.7/32 (with --with-web).")] = None,
    port: Annotated[int, typer.Option(help="Web tier port on its instance.")] = 80,
    wheel: Annotated[Path | None, typer.Option(help="imgrec wheel to install (default: "
                                                  "build one from this checkout).")] = None,
    wheelhouse: Annotated[Path | None, typer.Option(
        help="Directory of wheels to install from instead (imgrec's, its dependencies' for "
             "the instances' Python and CPU, and pip's), e.g. built where PyPI is reachable."
    )] = None,
    visibility_timeout_s: Annotated[float, typer.Option(help="Request queue visibility "
                                                        "timeout, seconds.")] = 30.0,
    max_receives: Annotated[int, typer.Option(help="Deliveries before a request goes to the "
                                              "dead-letter queue.")] = 5,
    max_workers: Annotated[int, typer.Option(help="The web tier's autoscaler: most worker "
                                             "instances (the cap).")] = 20,
    min_workers: Annotated[int, typer.Option(help="The web tier's autoscaler: fewest worker "
                                             "instances, also when idle.")] = 0,
    idle_before_drain_s: Annotated[float | None, typer.Option(
        help="The web tier's autoscaler: idle seconds before a worker is terminated "
             "(default on AWS: 120).")] = None,
    boot_deadline_s: Annotated[float | None, typer.Option(
        help="The web tier's autoscaler: a worker not ready this long after launch is "
             "replaced (default: 3 x the measured boot time).")] = None,
    retention_days: Annotated[float, typer.Option(
        help="Days uploads and results are kept (S3 lifecycle rules, whole days; a job past "
             "them answers 410).")] = 3.0,
    vpc: Annotated[str | None, typer.Option(
        help="VPC for the security groups (default: the account's default VPC; with --subnet: "
             "that subnet's).")] = None,
    subnet: Annotated[str | None, typer.Option(
        help="Subnet the instances start in (with a route to the internet; default: a "
             "default subnet).")] = None,
    setting: Annotated[list[str] | None, typer.Option(
        "--set", help="Any other setting of the web tier, NAME=VALUE (repeatable), e.g. "
                      "--set target_backlog_per_worker=5; `imgrec settings --markdown` "
                      "lists them.")] = None,
) -> None:
    """Create the stack's resources, or bring them up to date (safe to run again)."""
    from ..aws.provision import UpOptions, open_stack

    given: dict[str, object] = {"max_workers": max_workers, "min_workers": min_workers,
                                "idle_before_drain_s": idle_before_drain_s,
                                "boot_deadline_s": boot_deadline_s}
    web_settings = [(k, str(v)) for k, v in given.items() if v is not None]
    for item in setting or []:
        name, sep, value = item.partition("=")
        if not sep:
            raise _fail(ConfigError(f"--set takes NAME=VALUE, got {item!r}"))
        web_settings.append((name.strip().replace("-", "_"), value.strip()))
    typer.echo(f"aws up: stack {stack}")
    try:
        s = open_stack(stack, region, _print_step)
        s.up(UpOptions(instance_type=instance_type, ami=ami, with_web=with_web,
                       allow_cidr=allow_cidr, port=port, wheel=wheel, wheelhouse=wheelhouse,
                       visibility_timeout_s=visibility_timeout_s, max_receives=max_receives,
                       web_settings=tuple(web_settings), vpc_id=vpc, subnet_id=subnet,
                       retention_days=retention_days))
    except ImgrecError as exc:
        raise _fail(exc) from exc
    typer.echo(f"stack {stack} is up in {s.names.region}. Run: imgrec serve --backend aws "
               f"--stack {stack} --region {s.names.region}")


@aws_app.command()
def status(stack: StackOpt, region: RegionOpt = None) -> None:
    """Show every resource of the stack and its workers."""
    from ..aws.provision import open_stack

    try:
        rows = open_stack(stack, region).status()
    except ImgrecError as exc:
        raise _fail(exc) from exc
    typer.echo(f"stack {stack}:")
    for row in rows:
        typer.echo(f"  {row.kind:<16} {row.name:<60} {row.status:<10} {row.detail}")
    missing = [r for r in rows if r.status == "missing"]
    if missing:
        typer.echo(f"{len(missing)} resource(s) missing: run `imgrec aws up --stack {stack}`")


@aws_app.command()
def down(
    stack: StackOpt,
    region: RegionOpt = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete everything `aws up` created for the stack (instances, data, queues, roles)."""
    from ..aws.provision import open_stack

    if not yes and not typer.confirm(f"delete stack {stack} and all its data?", default=False):
        raise typer.Exit(1)
    typer.echo(f"aws down: stack {stack}")
    try:
        open_stack(stack, region, _print_step).down()
    except ImgrecError as exc:
        raise _fail(exc) from exc
    typer.echo(f"stack {stack} is gone")


@aws_app.command()
def render(
    out: Annotated[Path, typer.Option(help="Directory to write the files to.")],
    stack: Annotated[str, typer.Option(help="Stack name.")] = "example",
    region: Annotated[str, typer.Option(help="AWS region.")] = "eu-west-1",
    bucket: Annotated[str, typer.Option(help="Bucket holding the wheelhouse.")] = (
        "example-outputs-123456789012-eu-west-1"),
    wheelhouse_key: Annotated[str, typer.Option(help="Key of the wheelhouse tar in the "
                                                "bucket.")] = EXAMPLE_WHEELHOUSE_KEY,
    wheelhouse_sha256: Annotated[str, typer.Option(help="SHA-256 of the wheelhouse tar.")] = (
        EXAMPLE_WHEELHOUSE_SHA256),
    wheel_name: Annotated[str, typer.Option(help="The imgrec wheel in the wheelhouse.")] = (
        "imgrec-0.1.0-py3-none-any.whl"),
) -> None:
    """Write the systemd units and cloud-init user data, e.g. to deploy by hand."""
    from ..deploy import DeployConfig, render_all

    out.mkdir(parents=True, exist_ok=True)
    cfg = DeployConfig(stack=stack, region=region, bucket=bucket, wheelhouse_key=wheelhouse_key,
                       wheelhouse_sha256=wheelhouse_sha256, wheel_name=wheel_name)
    for name, text in render_all(cfg).items():
        (out / name).write_text(text)
        typer.echo(f"wrote {out / name}")


def register(app: typer.Typer) -> None:
    app.add_typer(aws_app, name="aws")
