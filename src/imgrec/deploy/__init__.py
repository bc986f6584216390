"""Deployment files (systemd units, cloud-init user data), rendered from the templates here.

Templates use ``{{ name }}`` placeholders; a placeholder alone on its line takes a multi-line
value indented like the placeholder. Unknown or missing names are errors, never blanks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib import resources

_PLACEHOLDER = re.compile(r"\{\{\s*(\w+)\s*\}\}")
_ALONE = re.compile(r"^(\s*)\{\{\s*(\w+)\s*\}\}\s*$")

WORKER_UNIT = "imgrec-worker.service"
WEB_UNIT = "imgrec-web.service"
ENV_FILE = "/etc/imgrec/imgrec.env"
INSTALL_SCRIPT = "/usr/local/sbin/imgrec-install"
FETCH_SCRIPT = "/usr/local/lib/imgrec-install/s3_fetch.py"
# The install script's console lines that `imgrec aws status` and the tests look for.
BOOT_FAILED = "imgrec-install: FAILED:"
BOOT_STARTED = "imgrec-install: started"


def render(template: str, values: dict[str, str]) -> str:
    """Fill a template's placeholders; raise ``KeyError`` naming a missing value."""

    def lookup(name: str) -> str:
        if name not in values:
            raise KeyError(f"template value {name!r} missing")
        return values[name]

    lines: list[str] = []
    for line in template.splitlines():
        alone = _ALONE.match(line)
        if alone:
            indent, name = alone.groups()
            lines.extend(f"{indent}{part}" if part else "" for part in lookup(name).splitlines())
        else:
            lines.append(_PLACEHOLDER.sub(lambda m: lookup(m.group(1)), line))
    return "\n".join(lines) + "\n"


def template(name: str) -> str:
    return resources.files(__name__).joinpath(f"{name}.in").read_text()


@dataclass(frozen=True)
class DeployConfig:
    """What the deployment files of one stack depend on.

    ``web_settings`` are (setting name, value) pairs for the web tier's environment: its
    autoscaler's bounds and policy (``aws up --max-workers 20 --set target_backlog_per_worker=5``).
    ``wheelhouse_key`` is the tar of wheels in ``bucket`` (``aws.wheelhouse``), checked against
    ``wheelhouse_sha256`` on the instance; ``wheel_name`` the imgrec wheel in it. ``prefix`` is
    the virtualenv imgrec is installed into; ``python`` the AMI's interpreter (Debian 12: 3.11).
    """

    stack: str
    region: str
    bucket: str
    wheelhouse_key: str
    wheelhouse_sha256: str
    wheel_name: str
    visibility_timeout_s: float = 30.0
    sync_timeout_s: float = 300.0  # imgrec.config.AWS_DEFAULTS: a request may wait for a boot
    web_settings: tuple[tuple[str, str], ...] = ()  # more IMGREC_* settings of the web tier
    port: int = 80
    prefix: str = "/opt/imgrec"
    model: str = "mobilenet_v2"
    python: str = "/usr/bin/python3"

    def stop_timeout_s(self, role: str) -> int:
        # A worker must exit before the requests in hand become visible again elsewhere;
        # the web tier needs the synchronous wait plus a little to finish its answers.
        if role == "worker":
            return max(5, int(self.visibility_timeout_s) - 5)
        return int(self.sync_timeout_s) + 10


def unit_name(role: str) -> str:
    return WORKER_UNIT if role == "worker" else WEB_UNIT


def render_unit(cfg: DeployConfig, role: str) -> str:
    """The systemd unit of the worker or the web tier."""
    return render(template(unit_name(role)), {
        "stack": cfg.stack, "prefix": cfg.prefix, "port": str(cfg.port),
        "env_file": ENV_FILE, "stop_timeout_s": str(cfg.stop_timeout_s(role)),
    })


def render_env(cfg: DeployConfig, role: str) -> str:
    """The ``IMGREC_*`` environment of the service (no credentials: the instance profile)."""
    lines = [
        "IMGREC_BACKEND=aws",
        f"IMGREC_STACK={cfg.stack}",
        f"IMGREC_REGION={cfg.region}",
        f"AWS_DEFAULT_REGION={cfg.region}",
        f"IMGREC_MODEL={cfg.model}",
        f"IMGREC_VISIBILITY_TIMEOUT_S={cfg.visibility_timeout_s:g}",
        f"IMGREC_SYNC_TIMEOUT_S={cfg.sync_timeout_s:g}",
    ]
    if role == "worker":
        lines.append("IMGREC_WORKERS=1")  # one worker per instance, using all its cores
    else:
        lines.extend(f"IMGREC_{name.upper()}={value}" for name, value in cfg.web_settings)
    return "\n".join(lines)


def render_install_script(cfg: DeployConfig, role: str) -> str:
    return render(template("imgrec-install.sh"), {
        "prefix": cfg.prefix, "python": cfg.python, "region": cfg.region, "bucket": cfg.bucket,
        "wheelhouse_key": cfg.wheelhouse_key, "wheelhouse_sha256": cfg.wheelhouse_sha256,
        "wheel_name": cfg.wheel_name, "env_file": ENV_FILE, "unit": unit_name(role),
        "fetch_path": FETCH_SCRIPT, "failed": BOOT_FAILED, "started": BOOT_STARTED,
    })


def fetch_script() -> str:
    """The stdlib-only S3 download the install script runs before anything is installed."""
    return resources.files(__name__).joinpath("s3_fetch.py").read_text()


def render_cloud_init(cfg: DeployConfig, role: str) -> str:
    """The instance's user data: install from the stack's wheelhouse, start the unit."""
    return render(template("cloud-init.yaml"), {
        "stack": cfg.stack, "role": role,
        "env_file": ENV_FILE, "env": render_env(cfg, role),
        "fetch_path": FETCH_SCRIPT, "fetch": fetch_script(),
        "unit_path": f"/etc/systemd/system/{unit_name(role)}", "unit": render_unit(cfg, role),
        "install_path": INSTALL_SCRIPT, "install": render_install_script(cfg, role),
    })


def render_all(cfg: DeployConfig) -> dict[str, str]:
    """Every deployment file of a stack, by file name (``imgrec aws render`` writes these)."""
    return {
        WORKER_UNIT: render_unit(cfg, "worker"),
        WEB_UNIT: render_unit(cfg, "web"),
        "cloud-init-worker.yaml": render_cloud_init(cfg, "worker"),
        "cloud-init-web.yaml": render_cloud_init(cfg, "web"),
    }
