"""The rendered systemd units and cloud-init user data."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from imgrec.deploy import DeployConfig, render, render_all, render_cloud_init, render_unit

CFG = DeployConfig(stack="demo", region="eu-west-1", bucket="demo-outputs-1-eu-west-1",
                   wheel_key="deploy/imgrec-0.1.0-py3-none-any.whl", visibility_timeout_s=60)
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


def test_cloud_init_installs_the_wheel_and_enables_the_unit() -> None:
    text = render_cloud_init(CFG, "worker")
    assert text.startswith("#cloud-config\n")
    doc = yaml.safe_load(text)
    files = {f["path"]: f["content"] for f in doc["write_files"]}
    assert "IMGREC_STACK=demo" in files["/etc/imgrec/imgrec.env"]
    assert files["/etc/systemd/system/imgrec-worker.service"] == render_unit(CFG, "worker")
    script = files["/usr/local/sbin/imgrec-install"]
    assert '"demo-outputs-1-eu-west-1", "deploy/imgrec-0.1.0-py3-none-any.whl"' in script
    assert "cloud-init query v1.instance_id" in script
    assert "systemctl enable --now imgrec-worker.service" in script
    assert doc["runcmd"] == [["/usr/local/sbin/imgrec-install"]]
    assert "AWS_SECRET" not in text and "AWS_ACCESS_KEY" not in text


def test_the_examples_in_deploy_are_up_to_date() -> None:
    rendered = render_all(DeployConfig(stack="example", region="eu-west-1",
                                       bucket="example-outputs-123456789012-eu-west-1",
                                       wheel_key="deploy/imgrec-0.1.0-py3-none-any.whl"))
    for name, text in rendered.items():
        assert (REPO / "deploy" / name).read_text() == text, "run `imgrec aws render --out deploy`"


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="no systemd-analyze")
@pytest.mark.parametrize("role", ["worker", "web"])
def test_units_pass_systemd_analyze_verify(role: str, tmp_path: Path) -> None:
    # Point ExecStart at an executable that exists here, as it will on the instance.
    cfg = DeployConfig(stack="demo", region="eu-west-1", bucket="b", wheel_key="deploy/x.whl",
                       prefix=str(Path(sys.executable).parent.parent))
    unit = tmp_path / ("imgrec-worker.service" if role == "worker" else "imgrec-web.service")
    unit.write_text(render_unit(cfg, role))
    done = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True,
                          text=True, timeout=60, check=False)
    problems = [line for line in (done.stderr + done.stdout).splitlines()
                if str(unit) in line or unit.name in line]
    assert done.returncode == 0 and not problems, done.stderr
