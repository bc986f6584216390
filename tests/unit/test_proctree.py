"""bench/proctree.py's memory of a process tree: a child's pages count, shared ones once in PSS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

from proctree import tree_memory  # noqa: E402

_HOLD = "import sys; b = bytearray(64 << 20); b[::4096] = b'x' * len(b[::4096]); " \
        "print('ok', flush=True); sys.stdin.read()"


def test_a_child_holding_64_mib_adds_them_to_rss_and_pss() -> None:
    before_rss, before_pss = tree_memory(os.getpid())
    child = subprocess.Popen([sys.executable, "-c", _HOLD], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE)
    try:
        assert child.stdout is not None and child.stdout.readline() == b"ok\n"
        rss, pss = tree_memory(os.getpid())
    finally:
        assert child.stdin is not None
        child.stdin.close()
        child.wait(timeout=10)
    assert rss - before_rss >= 64 << 20
    assert pss - before_pss >= 60 << 20
    assert pss <= rss


def test_a_gone_process_holds_nothing() -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    assert tree_memory(child.pid) == (0, 0)
