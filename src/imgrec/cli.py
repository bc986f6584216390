"""The ``imgrec`` command. Each module in ``imgrec.commands`` adds its commands via ``register``.

Command modules import heavy dependencies (ONNX Runtime, FastAPI, boto3) inside the command
functions, so ``imgrec --help`` stays fast.
"""

from __future__ import annotations

import importlib
import logging
import os
import pkgutil

import typer

from . import commands

app = typer.Typer(
    name="imgrec",
    help="Elastic image recognition: a web tier, a queue and autoscaled ONNX workers.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register_commands() -> None:
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(app)


def setup_logging(verbose: bool = False) -> None:
    level = "DEBUG" if verbose else os.environ.get("IMGREC_LOG_LEVEL", "INFO")
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


_register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
