"""The layout's import rules: a web tier without the model, backends apart, no adapter lookups."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "imgrec"


def _modules_after_import(*modules: str) -> set[str]:
    """``sys.modules`` of a fresh interpreter after importing ``modules``."""
    code = (f"import sys, importlib\nfor m in {list(modules)!r}: importlib.import_module(m)\n"
            "import json; print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                         text=True).stdout
    return set(json.loads(out))


def test_the_web_tier_does_not_load_the_model() -> None:
    loaded = _modules_after_import("imgrec.web.app", "imgrec.server", "imgrec.commands.serve")
    assert not loaded & {"onnxruntime", "numpy", "imgrec.model.classifier",
                         "imgrec.model.preprocess", "imgrec.worker.loop"}


def test_the_embedded_backend_does_not_load_aws() -> None:
    loaded = _modules_after_import("imgrec.backend", "imgrec.embedded.backend",
                                   "imgrec.embedded.process_fleet")
    assert not {m for m in loaded if m.startswith(("boto3", "botocore", "imgrec.aws"))}


def test_the_aws_backend_does_not_load_the_embedded_one() -> None:
    aws_modules = [f"imgrec.aws.{p.stem}" for p in (SRC / "aws").glob("*.py")
                   if p.stem != "__init__"]
    loaded = _modules_after_import(*aws_modules)
    assert not {m for m in loaded if m.startswith("imgrec.embedded")}


def _imports(path: Path) -> set[str]:
    """Every module a source file imports (relative imports resolved), at any depth."""
    package = ".".join(("imgrec", *path.relative_to(SRC).parent.parts))
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            module = ".".join(p for p in (base, node.module or "") if p)
            found.add(module)
            found.update(f"{module}.{a.name}" for a in node.names)
    return found


@pytest.mark.parametrize("backend", ["embedded", "aws"])
def test_backend_packages_do_not_import_the_backend_table(backend: str) -> None:
    for path in (SRC / backend).glob("*.py"):
        assert "imgrec.backend" not in _imports(path), path


def test_adapters_are_not_looked_up_by_attribute_name() -> None:
    """Tiers use what the ports declare: no ``getattr``/``hasattr`` probing of adapters."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "cli.py":  # finds each command module's ``register``, not an adapter
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name)
                    and node.func.id in ("getattr", "hasattr")):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders
