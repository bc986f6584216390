"""``imgrec serve`` start-up errors a user can cause: clear message, exit code 2, no traceback."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path


def _serve(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imgrec", "serve", *args],
                          capture_output=True, text=True, timeout=60)


def test_a_port_in_use_is_reported_before_anything_starts(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = _serve("--port", str(port), "--state-dir", str(tmp_path / "state"))
    assert proc.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}" in proc.stderr and "--port" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (tmp_path / "state").exists()


def test_contradicting_settings_are_reported(tmp_path: Path) -> None:
    proc = _serve("--min-workers", "3", "--max-workers", "1", "--state-dir", str(tmp_path))
    assert proc.returncode == 2
    assert "min_workers (3) is above max_workers (1)" in proc.stderr
    assert "Traceback" not in proc.stderr
