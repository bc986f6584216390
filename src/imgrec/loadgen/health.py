"""Wait until a service answers ``GET /healthz`` (before a load run, a benchmark or a test)."""

from __future__ import annotations

import subprocess
import time

import httpx


class ServiceNotHealthy(RuntimeError):
    """The service exited, or did not answer ``/healthz`` with 200 in time."""


def wait_until_healthy(url: str, process: subprocess.Popen[bytes] | None = None, *,
                       timeout_s: float = 60.0, poll_s: float = 0.1) -> None:
    """Poll ``url/healthz`` until it answers 200; fail early if ``process`` has exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise ServiceNotHealthy(f"the service exited with code {process.returncode}")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(poll_s)
    raise ServiceNotHealthy(f"{url} not healthy within {timeout_s:g} s")
