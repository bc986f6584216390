"""The rendered systemd units and cloud-init user data."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from imgrec.commands.aws import EXAMPLE_WHEELHOUSE_KEY, EXAMPLE_WHEELHOUSE_SHA256
from imgrec.deploy import (
    FETCH_SCRIPT,
    DeployConfig,
    fetch_script,
    render,
    render_all,
    render_cloud_init,
    render_unit,
)


def _config(bucket: str, **settings: Any) -> DeployConfig:
    return DeployConfig(stack="demo", region="eu-west-1", bucket=bucket,
                        wheelhouse_key="deploy/wheelhouse-0123456789abcdef.tar",
                        wheelhouse_sha256="ab" * 32, wheel_name="imgrec-0.1.0-py3-none-any.whl",
                        **settings)


CFG = _config("demo-outputs-1-eu-west-1", visibility_timeout_s=60)
REPO = Path(__file__).resolve().parents[3]


def test_render_fills_and_indents_and_refuses_missing_values() -> None:
    assert render("a: {{ x }}\n  {{ y }}\n", {"x": "1", "y": "l1\nl2"}) == "a: 1\n  l1\n  l2\n"
    with pytest.raises(KeyError, match="'y'"):
        render("{{ y }}", {})


@pytest.mark.parametrize("role", ["worker", "web"])
def test_units_restart_on_failure_and_stop_gracefully(role: str) -> None:
    unit = render_unit(CFG, role)
    assert "Restart=on-failure" in unit
    assert "KillSignal=SIGTERM" in unit
    assert "EnvironmentFile=/etc/imgrec/imgrec.env" in unit
    assert "{{" not in unit


def test_worker_stops_within_the_visibility_timeout() -> None:
    unit = render_unit(CFG, "worker")
    assert "TimeoutStopSec=55" in unit  # under the 60 s visibility timeout
    assert "imgrec worker --worker-id ${IMGREC_WORKER_ID}" in unit


def test_cloud_init_installs_offline_from_the_wheelhouse_and_enables_the_unit() -> None:
    text = render_cloud_init(CFG, "worker")
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    assert "packages" not in doc and "package_update" not in doc  # no mirror needed at boot
    files = {f["path"]: f["content"] for f in doc["write_files"]}
    assert "IMGREC_STACK=demo" in files["/etc/imgrec/imgrec.env"]
    assert files["/etc/systemd/system/imgrec-worker.service"] == render_unit(CFG, "worker")
    assert files[FETCH_SCRIPT] == fetch_script()
    script = files["/usr/local/sbin/imgrec-install"]
    assert ('"eu-west-1" "demo-outputs-1-eu-west-1" "deploy/wheelhouse-0123456789abcdef.tar" '
            f'\\\n    "{"ab" * 32}"') in script
    assert "--no-index --find-links" in script
    assert "imgrec-0.1.0-py3-none-any.whl[aws]" in script
    assert "cloud-init query v1.instance_id" in script
    assert "systemctl enable --now imgrec-worker.service" in script
    assert doc["runcmd"] == [["/usr/local/sbin/imgrec-install"]]
    assert "AWS_SECRET" not in text and "AWS_ACCESS_KEY" not in text


@pytest.mark.parametrize("role", ["worker", "web"])
def test_user_data_fits_in_ec2s_16_kb(role: str) -> None:
    assert len(render_cloud_init(CFG, role).encode()) < 16 * 1024


def test_the_examples_in_deploy_are_up_to_date() -> None:
    rendered = render_all(DeployConfig(stack="example", region="eu-west-1",
                                       bucket="example-outputs-123456789012-eu-west-1",
                                       wheelhouse_key=EXAMPLE_WHEELHOUSE_KEY,
                                       wheelhouse_sha256=EXAMPLE_WHEELHOUSE_SHA256,
                                       wheel_name="imgrec-0.1.0-py3-none-any.whl"))
    for name, text in rendered.items():
        assert (REPO / "deploy" / name).read_text() == text, "run `imgrec aws render --out deploy`"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("role", ["worker", "web"])
def test_units_pass_systemd_analyze_verify(role: str, tmp_path: Path) -> None:
    # Point ExecStart at an executable that exists here, as it will on the instance.
    cfg = _config("b", prefix=str(Path(sys.executable).parent.parent))
    unit = tmp_path / ("imgrec-worker.service" if role == "worker" else "imgrec-web.service")
    unit.write_text(render_unit(cfg, role))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60, check=False)
    problems = [line for line in (done.stderr + done.stdout).splitlines()
                if str(unit) in line or unit.name in line]
    assert done.returncode == 0 and not problems, done.stderr
