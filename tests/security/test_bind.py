"""``imgrec serve`` listens on 127.0.0.1 unless ``--host`` says otherwise."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from tests.helpers.server import free_port, wait_until_healthy

from imgrec.config import Settings


def _listening_addresses(port: int) -> set[str]:
    """IPv4/IPv6 addresses with a socket in LISTEN state on ``port`` (from /proc/net)."""
    found: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            local, state = line.split()[1], line.split()[3]
            address, _, port_hex = local.partition(":")
            if state == "0A" and int(port_hex, 16) == port:
                found.add(_decode(address))
    return found


def _decode(address: str) -> str:
    if len(address) == 8:  # IPv4, little-endian
        return ".".join(str(int(address[i:i + 2], 16)) for i in (6, 4, 2, 0))
    return "ipv6:" + address


def test_the_default_host_is_loopback() -> None:
    assert Settings().host == "127.0.0.1"


def test_serve_without_host_binds_loopback_only(tmp_path: Path) -> None:
    port = free_port()
    log_path = tmp_path / "serve.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "imgrec", "serve", "--port", str(port),
             "--state-dir", str(tmp_path / "state"), "--workers", "0"],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ),
        )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}", proc, log_path)
        assert _listening_addresses(port) == {"127.0.0.1"}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
