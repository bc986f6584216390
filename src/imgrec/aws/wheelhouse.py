"""The wheelhouse instances install from: imgrec's wheel and pinned wheels of its dependencies.

An instance installs nothing from PyPI at boot. ``aws up`` builds one tar of wheels for the
instance's Python and CPU (``images.Platform``):

- the imgrec wheel (built from this checkout, or ``--wheel``);
- every runtime dependency of ``imgrec[aws]``, pinned to the version installed here (the one the
  tests ran with) wherever it is installed here;
- pip's own wheel: the instance runs pip from it, so neither ensurepip nor python3-venv is needed.

The tar is cached in ``~/.cache/imgrec/wheelhouse`` (``IMGREC_CACHE_DIR``), is byte-for-byte
reproducible, and goes to the stack's outputs bucket under a key holding its hash, so a new
wheelhouse means new user data (a new launch template version) and an unchanged one is not sent
again. ``--wheelhouse DIR`` uses a directory of wheels built elsewhere instead.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .errors import NOT_FOUND_OBJECT, translated
from .images import Platform
from .naming import WHEEL_PREFIX

Progress = Callable[[str, str, str], None]
_IMGREC = "imgrec"
KEEP_CACHED = 4  # wheelhouses kept in the cache (about 115 MB each), most recently used first


@dataclass(frozen=True)
class Wheelhouse:
    """A tar of wheels, ready to upload."""

    path: Path
    sha256: str
    wheel_name: str  # the imgrec wheel in it
    wheels: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"{WHEEL_PREFIX}wheelhouse-{self.sha256[:16]}.tar"


def cache_dir() -> Path:
    base = os.environ.get("IMGREC_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "imgrec")
    return Path(base) / "wheelhouse"


def build_wheel(out_dir: Path) -> Path:
    """Build imgrec's wheel from the source checkout this package runs from."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "pyproject.toml").is_file():
        raise ConfigError("imgrec is not running from a source checkout: pass --wheel FILE")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out_dir),
           str(root)]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ConfigError(f"building the wheel failed:\n{done.stderr[-2000:]}")
    wheels = sorted(out_dir.glob(f"{_IMGREC}-*.whl"))
    if not wheels:
        raise ConfigError(f"no wheel built in {out_dir}")
    return wheels[-1]


def installed_pins() -> list[str]:
    """``name==version`` of every distribution installed here but imgrec (pip constraints)."""
    pins = {}
    for dist in metadata.distributions():
        name = (dist.metadata["Name"] or "").lower().replace("_", "-")
        if name and name != _IMGREC:
            pins[name] = f"{name}=={dist.version}"
    return sorted(pins.values())


def pip_download_command(wheel: Path, target: Platform, dest: Path,
                         constraints: Path) -> list[str]:
    platforms = [arg for tag in target.wheel_platforms() for arg in ("--platform", tag)]
    return [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
            "--only-binary=:all:", *platforms,
            "--python-version", f"{target.python[0]}.{target.python[1]}",
            "--implementation", "cp", "--abi", target.python_tag,
            "--dest", str(dest), "--constraint", str(constraints),
            f"{wheel}[aws]", f"pip=={metadata.version('pip')}"]


def build(wheel: Path, target: Platform, cache: Path | None = None) -> Wheelhouse:
    """The wheelhouse of ``wheel`` for ``target``, from the cache when it was built before."""
    if not wheel.is_file() or wheel.suffix != ".whl":
        raise ConfigError(f"--wheel must be a .whl file: {wheel}")
    cache = cache or cache_dir()
    pins = installed_pins()
    recipe = hashlib.sha256()
    recipe.update(wheel.read_bytes())
    recipe.update(json.dumps([target.wheel_platforms(), target.python_tag, pins]).encode())
    stem = cache / f"wheelhouse-{recipe.hexdigest()[:16]}"
    if stem.with_suffix(".json").is_file() and stem.with_suffix(".tar").is_file():
        return _load(stem)
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="imgrec-wheelhouse-", dir=cache) as tmp:
        wheels = Path(tmp) / "wheels"
        wheels.mkdir()
        constraints = Path(tmp) / "constraints.txt"
        constraints.write_text("\n".join(pins) + "\n")
        done = subprocess.run(pip_download_command(wheel, target, wheels, constraints),
                              capture_output=True, text=True, check=False)
        if done.returncode != 0:
            errors = [line for line in done.stderr.splitlines() if "ERROR" in line]
            raise ConfigError(
                f"cannot collect the wheels for {target.python_tag} on {target.machine} "
                f"(pip download): {' '.join(errors[-3:]) or done.stderr[-1500:]}\n"
                "build a wheelhouse where PyPI is reachable and pass --wheelhouse DIR")
        return _pack(wheels, stem)


def from_directory(directory: Path, cache: Path | None = None) -> Wheelhouse:
    """A wheelhouse from a directory of wheels built elsewhere (one imgrec wheel, pip)."""
    if not directory.is_dir():
        raise ConfigError(f"--wheelhouse must be a directory of wheels: {directory}")
    cache = cache or cache_dir()
    cache.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    for path in sorted(directory.glob("*.whl")):
        digest.update(path.name.encode() + hashlib.sha256(path.read_bytes()).digest())
    return _pack(directory, cache / f"wheelhouse-dir-{digest.hexdigest()[:16]}")


def _pack(directory: Path, stem: Path) -> Wheelhouse:
    names = sorted(p.name for p in directory.glob("*.whl"))
    ours = [n for n in names if n.startswith(f"{_IMGREC}-")]
    if len(ours) != 1 or not any(n.startswith("pip-") for n in names):
        raise ConfigError(f"a wheelhouse needs exactly one imgrec wheel and pip's wheel; "
                          f"{directory} has {', '.join(names) or 'no wheels'}")
    partial = stem.with_suffix(".tar.partial")
    with tarfile.open(partial, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in names:
            tar.add(directory / name, arcname=name, filter=_reproducible)
    digest = hashlib.sha256()
    with open(partial, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    os.replace(partial, stem.with_suffix(".tar"))
    stem.with_suffix(".json").write_text(json.dumps(
        {"sha256": digest.hexdigest(), "wheel_name": ours[0], "wheels": names}, indent=1))
    _prune(stem.parent)
    return _load(stem)


def _prune(cache: Path) -> None:
    """Delete all but the ``KEEP_CACHED`` most recently used wheelhouses of the cache."""
    tars = sorted(cache.glob("wheelhouse-*.tar"), key=lambda p: p.stat().st_mtime, reverse=True)
    for old in tars[KEEP_CACHED:]:
        old.unlink(missing_ok=True)
        old.with_suffix(".json").unlink(missing_ok=True)


def _reproducible(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.mtime = 0
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mode = 0o644
    return info


def _load(stem: Path) -> Wheelhouse:
    os.utime(stem.with_suffix(".tar"))  # used: kept by _prune
    meta = json.loads(stem.with_suffix(".json").read_text())
    return Wheelhouse(stem.with_suffix(".tar"), str(meta["sha256"]), str(meta["wheel_name"]),
                      tuple(meta["wheels"]))


def upload(s3: Any, bucket: str, wheelhouse: Wheelhouse) -> str:
    """Put the wheelhouse in the bucket unless it is there (its key holds its hash)."""
    what = f"cannot upload the wheelhouse to {bucket}"
    with translated(what, tolerate=NOT_FOUND_OBJECT) as absent:
        head = s3.head_object(Bucket=bucket, Key=wheelhouse.key)
    if not absent.tolerated and int(head["ContentLength"]) == wheelhouse.path.stat().st_size:
        return "unchanged"
    with translated(what):
        s3.upload_file(str(wheelhouse.path), bucket, wheelhouse.key)
    return "uploaded"


def prepare(s3: Any, bucket: str, target: Platform, *, wheel: Path | None,
            directory: Path | None, progress: Progress) -> tuple[Wheelhouse, str]:
    """Build (or reuse) the stack's wheelhouse and upload it; returns it and what was done."""
    if directory is not None:
        found = from_directory(directory)
    else:
        with tempfile.TemporaryDirectory(prefix="imgrec-wheel-") as tmp:
            if wheel is None:
                progress("wheel", "building from this checkout", "...")
            path = wheel or build_wheel(Path(tmp))
            progress("wheelhouse", f"collecting wheels for {target.python_tag} "
                     f"{target.machine}", "...")
            found = build(path, target)
    progress("wheelhouse", f"{len(found.wheels)} wheels, "
             f"{found.path.stat().st_size / 1e6:.0f} MB", "ready")
    return found, upload(s3, bucket, found)
