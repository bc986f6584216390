"""``imgrec dlq list|show|replay|purge``: the requests that died, why, and what to do with them.

Each command first answers what still waits on the dead-letter queue (as a running web tier
does), so the list is complete also when no web tier runs. Same backend flags as ``serve``.
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Annotated

import typer

from ..config import Settings
from .settings_flags import with_settings

if TYPE_CHECKING:
    from ..dead_letters import DeadLetter, DeadLetters

dlq_app = typer.Typer(
    name="dlq", no_args_is_help=True,
    help="Dead-lettered requests: list them, see why they died, replay them or drop them.",
)
AsJson = Annotated[bool, typer.Option("--json", help="JSON instead of text.")]


def _when(t: float | None) -> str:
    if t is None:
        return "-"
    return datetime.datetime.fromtimestamp(t, datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _open(settings: Settings) -> DeadLetters:
    from ..backend import open_backend
    from ..dead_letters import DeadLetters

    admin = DeadLetters(open_backend(settings))
    admin.collect()
    return admin


def _fail(message: str, code: int = 1) -> typer.Exit:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    return typer.Exit(code)


def _as_dict(admin: DeadLetters, letter: DeadLetter) -> dict[str, object]:
    from dataclasses import asdict

    return {**asdict(letter), "input_present": admin.input_present(letter)}


@with_settings
def list_(settings: Settings, as_json: AsJson = False) -> None:
    """One line per dead letter, the most recent first: id, deliveries, when it died, state."""
    from ..errors import ImgrecError

    try:
        admin = _open(settings)
        letters = admin.list()
        rows = [_as_dict(admin, d) for d in letters]
    except ImgrecError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not letters:
        typer.echo("No dead letters.")
        return
    typer.echo(f"{'id':<32}  {'tries':>5}  {'died':<23}  {'state':<8}  image")
    for letter, row in zip(letters, rows, strict=True):
        image = "present" if row["input_present"] else "gone"
        typer.echo(f"{letter.request_id:<32}  {letter.receive_count:>5}  "
                   f"{_when(letter.died_at):<23}  {letter.state:<8}  {image}")
    typer.echo(f"{len(letters)} dead letter(s). `imgrec dlq show ID` says why one died.")


@with_settings
def show(settings: Settings, request_id: Annotated[str, typer.Argument(
        metavar="ID", help="The request (job) id.")], as_json: AsJson = False) -> None:
    """Why and when one dead letter died, and whether its image is still there to replay."""
    from ..errors import ImgrecError

    try:
        admin = _open(settings)
        letter = admin.show(request_id)
        row = _as_dict(admin, letter)
    except ImgrecError as exc:
        raise _fail(str(exc)) from exc
    if as_json:
        typer.echo(json.dumps(row, indent=2))
        return
    typer.echo(f"id:          {letter.request_id}\n"
               f"why:         {letter.reason}\n"
               f"deliveries:  {letter.receive_count}\n"
               f"sent:        {_when(letter.sent_at)}\n"
               f"died:        {_when(letter.died_at)}\n"
               f"state:       {letter.state} (replayed {letter.replays} time(s), last "
               f"{_when(letter.replayed_at)})\n"
               f"image:       {letter.key} ({'present' if row['input_present'] else 'gone'})")


@with_settings
def replay(settings: Settings, request_id: Annotated[str | None, typer.Argument(
        metavar="[ID]", help="The request (job) id.")] = None,
        all_: Annotated[bool, typer.Option("--all", help="Replay every dead letter not "
                                           "replayed yet.")] = False) -> None:
    """Queue a dead letter again under its original id (its webhook goes out again)."""
    from ..errors import ImgrecError
    from ..web.webhooks import rearm_callback

    if (request_id is None) == (not all_):
        raise _fail("give one ID, or --all", code=2)
    try:
        admin = _open(settings)
        ids = [d.request_id for d in admin.list(include_replayed=False)] if all_ \
            else [request_id or ""]
        failed = 0
        for rid in ids:
            try:
                admin.replay(rid)
                rearm_callback(admin.backend.store, rid)
                typer.echo(f"replayed {rid}")
            except ImgrecError as exc:
                failed += 1
                typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
    except ImgrecError as exc:
        raise _fail(str(exc)) from exc
    if all_:
        typer.echo(f"{len(ids) - failed} replayed, {failed} not.")
    if failed:
        raise typer.Exit(1)


@with_settings
def purge(settings: Settings, request_id: Annotated[str | None, typer.Argument(
        metavar="[ID]", help="Drop only this one.")] = None,
        yes: Annotated[bool, typer.Option("--yes", help="Drop all without asking.")] = False,
        ) -> None:
    """Drop one dead letter's record, or all of them (their jobs keep their error result)."""
    from ..errors import ImgrecError

    try:
        admin = _open(settings)
        if request_id is None and not yes:
            count = len(admin.list())
            if not typer.confirm(f"Drop all {count} dead letter(s)?"):
                raise typer.Exit(1)
        dropped = admin.purge(request_id)
    except ImgrecError as exc:
        raise _fail(str(exc)) from exc
    typer.echo(f"dropped {dropped} dead letter(s)")


def register(app: typer.Typer) -> None:
    dlq_app.command("list")(list_)
    dlq_app.command()(show)
    dlq_app.command()(replay)
    dlq_app.command()(purge)
    app.add_typer(dlq_app)
