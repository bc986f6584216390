"""Command-line flags for every ``Settings`` field, made from the fields themselves.

A setting is defined once, in ``imgrec.config.Settings``; ``with_settings`` gives a command one
``--flag`` per field (help from the field's description, with its variable and default) and
hands the command the validated ``Settings``. Flags beat ``IMGREC_*`` variables, which beat the
defaults. ``settings_table`` renders the same fields for the README.

Example::

    @with_settings
    def serve(settings: Settings, verbose: bool = False) -> None: ...
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from ..config import Settings, load_settings
from ..errors import ImgrecError

_SCALARS = (bool, int, float, str, Path)


def flag_type(annotation: Any) -> type:
    """The click-friendly type of a field: ``X | None`` -> X, Literal and secrets -> str."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        return flag_type(args[0])
    if typing.get_origin(annotation) is typing.Literal:
        return str
    return annotation if annotation in _SCALARS else str


def default_text(field: FieldInfo) -> str:
    """How the default reads in help and in the README."""
    extra = field.json_schema_extra
    if isinstance(extra, dict) and "default_text" in extra:
        return str(extra["default_text"])
    if field.default is PydanticUndefined or field.default is None:
        return "unset"
    return str(field.default)


def choices(field: FieldInfo) -> tuple[str, ...]:
    args = typing.get_args(field.annotation)
    return tuple(str(a) for a in args) if typing.get_origin(field.annotation) is typing.Literal \
        else ()


def flag_help(name: str, field: FieldInfo) -> str:
    one_of = f" One of: {', '.join(choices(field))}." if choices(field) else ""
    return f"{field.description}{one_of} [IMGREC_{name.upper()}; default: {default_text(field)}]"


def flag_names(name: str, field: FieldInfo) -> list[str]:
    """``--the-name``, then any older spellings the field keeps working (``flag_aliases``)."""
    extra = field.json_schema_extra
    aliases = extra.get("flag_aliases", []) if isinstance(extra, dict) else []
    return [f"--{name.replace('_', '-')}", *(str(a) for a in aliases)]  # type: ignore[union-attr]


def _setting_parameters() -> list[inspect.Parameter]:
    params = []
    for name, field in Settings.model_fields.items():
        option = typer.Option(*flag_names(name, field), help=flag_help(name, field),
                              show_default=False, rich_help_panel="Settings")
        annotation = Annotated[flag_type(field.annotation) | None, option]  # type: ignore[valid-type]
        params.append(inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None,
                                        annotation=annotation))
    return params


def with_settings(command: Callable[..., None]) -> Callable[..., None]:
    """Give ``command(settings, **own)`` a flag per setting; a bad setting exits with code 2."""
    own = [p for name, p in inspect.signature(command, eval_str=True).parameters.items()
           if name != "settings"]
    setting_params = _setting_parameters()
    names = [p.name for p in setting_params]

    @functools.wraps(command)
    def run(**kwargs: Any) -> None:
        given = {name: kwargs.pop(name) for name in names}
        try:
            settings = load_settings(**given)
        except ImgrecError as exc:
            typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from exc
        command(settings, **kwargs)

    params = [*own, *setting_params]
    run.__signature__ = inspect.Signature(params)  # type: ignore[attr-defined]
    run.__annotations__ = {p.name: p.annotation for p in params}
    del run.__wrapped__  # typer must read the signature above, not the wrapped function's
    return run


def settings_table() -> str:
    """Every setting as a Markdown table: flag and variable, default, meaning."""
    rows = ["| flag / variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        one_of = f" One of: {', '.join(choices(field))}." if choices(field) else ""
        flags = " ".join(f"`{f}`" for f in flag_names(name, field))
        rows.append(f"| {flags} / `IMGREC_{name.upper()}` | "
                    f"{default_text(field)} | {field.description}{one_of} |")
    return "\n".join(rows) + "\n"
