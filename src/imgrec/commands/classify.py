"""``imgrec classify``: label image files with the local model, no service needed."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ..chunks import chunks

if TYPE_CHECKING:
    from imgrec.model.classifier import Classification, Classifier

BATCH_SIZE = 16


def classify_command(
    paths: list[Path],
    model: str = "mobilenet_v2",
    as_json: bool = False,
    threads: int | None = None,
) -> int:
    """Print the top-5 classes of each file; return 0, or 1 if any file failed, 2 if the model did.

    Human output is the file name then one ``label  probability`` line per class; ``as_json``
    prints one JSON object per file instead. Errors go to stderr and do not stop the run.
    """
    from imgrec.errors import ModelError
    from imgrec.model.classifier import Classification, load_classifier

    try:
        classifier = load_classifier(model, threads=threads)
    except ModelError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    status = 0
    for chunk in chunks(paths, BATCH_SIZE):
        for path, result in _classify_files(classifier, chunk):
            if isinstance(result, Classification):
                print(_format_json(path, result) if as_json else _format_human(path, result))
            else:
                print(f"error: {path}: {result}", file=sys.stderr)
                status = 1
        sys.stdout.flush()
    return status


def _classify_files(
    classifier: Classifier, paths: Sequence[Path]
) -> list[tuple[Path, Classification | str]]:
    """Read and classify one batch of files; failures become error messages."""
    from imgrec.errors import ImageError

    readable: list[tuple[Path, bytes]] = []
    results: dict[Path, Classification | str] = {}
    for path in paths:
        try:
            readable.append((path, path.read_bytes()))
        except OSError as exc:
            results[path] = f"cannot read file: {exc.strerror or exc}"
    outcomes = classifier.classify_images([data for _, data in readable])
    for (path, _), outcome in zip(readable, outcomes, strict=True):
        results[path] = outcome.message if isinstance(outcome, ImageError) else outcome
    return [(path, results[path]) for path in paths]


def _format_human(path: Path, result: Classification) -> str:
    width = max(len(p.label) for p in result.top5)
    lines = [str(path)]
    lines += [f"  {p.label:<{width}}  {p.probability * 100:6.2f}%" for p in result.top5]
    return "\n".join(lines)


def _format_json(path: Path, result: Classification) -> str:
    return json.dumps({"file": str(path), **result.to_dict()}, ensure_ascii=False)


def classify(
    photos: Annotated[list[Path], typer.Argument(help="Image files to classify.")],
    model: Annotated[
        str, typer.Option(help="mobilenet_v2, mobilenet_v2_int8, efficientnet_lite0, or an "
                          ".onnx path.")
    ] = "mobilenet_v2",
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per file (file, label, top5...).")
    ] = False,
    threads: Annotated[
        int | None, typer.Option(help="ONNX Runtime threads (default: all cores).")
    ] = None,
) -> None:
    """Print the top-5 ImageNet labels of each photo, with probabilities (no service needed)."""
    raise typer.Exit(classify_command(photos, model=model, as_json=as_json, threads=threads))


def register(app: typer.Typer) -> None:
    app.command()(classify)
