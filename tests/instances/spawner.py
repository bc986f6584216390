"""Start container processes that shut down when the process that started them ends.

If a test run is killed (a CI timeout, Ctrl-C twice), its containers must not run on as
orphans. ``PR_SET_PDEATHSIG`` does not survive into systemd-nspawn, so a small watchdog
process holds the read end of a pipe this process writes each container's pid to; when the
pipe closes (this process ended, however) it sends SIGTERM, which nspawn turns into an orderly
shutdown of the container, to every listed nspawn still running, then ends the stragglers.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from typing import IO, Any

_WATCHDOG = """\
import os, signal, sys, time
def alive(pid):
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            state = fh.read().rsplit(b")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return state != b"Z" and b"systemd-nspawn" in fh.read()
    except (OSError, IndexError):
        return False
pids = [int(line) for line in sys.stdin]  # until the pipe closes
# nspawn's first SIGTERM asks for a clean shutdown (lost if the container's systemd is not up
# yet), a second one ends the container at once.
for grace_s in (30, 10):
    for pid in filter(alive, pids):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    while any(map(alive, pids)) and time.monotonic() < deadline:
        time.sleep(0.2)
for pid in filter(alive, pids):
    os.kill(pid, signal.SIGKILL)
"""
_lock = threading.Lock()
_watchdog: subprocess.Popen[bytes] | None = None


def _lifeline() -> IO[bytes]:
    global _watchdog
    if _watchdog is None or _watchdog.poll() is not None:
        _watchdog = subprocess.Popen([sys.executable, "-c", _WATCHDOG], stdin=subprocess.PIPE,
                                     stdout=subprocess.DEVNULL, start_new_session=True)
    assert _watchdog.stdin is not None
    return _watchdog.stdin


def popen(cmd: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(cmd, **kwargs)``, stopped with SIGTERM if this process ends first."""
    with _lock:
        pipe = _lifeline()
        process: subprocess.Popen[bytes] = subprocess.Popen(cmd, **kwargs)
        pipe.write(f"{process.pid}\n".encode())
        pipe.flush()
    return process
