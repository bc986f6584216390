"""The bench's runs with the low-cost client (``client.py``): tail, connections, CPU split.

For each concurrency: ``requests`` POSTs of the prepared dev-photo bodies; then, once the
service has answered everything it was sent (queue empty), the CPU the web-tier process
(``imgrec serve`` itself: HTTP, uploads, store, queue, replies, autoscaler) and the whole
process tree used, per request sent. Ratios against the bare model's CPU per image and
throughput, measured in the same run.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
from client import Bodies, LoadResult, run_load
from proctree import tree_cpu_s


def own_cpu_s(pid: int) -> float:
    """utime + stime of ``pid`` alone (its threads, not its children)."""
    raw = Path(f"/proc/{pid}/stat").read_text()
    fields = raw[raw.rindex(")") + 2:].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_drained(url: str, timeout_s: float = 60) -> None:
    """Until the request queue is empty (requests the client dropped at its end included)."""
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        try:
            health = httpx.get(url + "/healthz", timeout=5).json()
            if health["queue_visible"] + health["queue_in_flight"] == 0:
                time.sleep(0.3)  # the last replies reach the web tier
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.1)


def measure(url: str, pid: int, bodies: Bodies, *, concurrencies: Sequence[int], requests: int,
            bare_ips: float, bare_cpu_ms: float, tool: str = "wrk",
            say: Callable[[str], None] = print) -> dict[str, Any]:
    runs: dict[str, Any] = {}
    for concurrency in concurrencies:
        wait_drained(url)
        web0, tree0 = own_cpu_s(pid), tree_cpu_s(pid)
        result: LoadResult = run_load(url + "/", bodies, concurrency=concurrency,
                                      requests=requests, tool=tool)
        wait_drained(url)
        web_ms = (own_cpu_s(pid) - web0) / max(1, result.sent) * 1000
        service_ms = (tree_cpu_s(pid) - tree0) / max(1, result.sent) * 1000
        row = result.to_dict() | {
            "web_cpu_ms_per_request": web_ms, "service_cpu_ms_per_request": service_ms,
            "ratios": {"p99_over_p50": result.p99_over_p50,
                       "connections_over_concurrency": result.connections / concurrency,
                       "throughput": result.rps / bare_ips,
                       "web_cpu": web_ms / bare_cpu_ms, "service_cpu": service_ms / bare_cpu_ms},
        }
        say(f"{tool} c{concurrency}: {result.rps:.1f} req/s, p50 "
            f"{result.latency_p50_s * 1000:.0f} ms, p99 {result.latency_p99_s * 1000:.0f} ms, "
            f"{result.connections} connections, client {result.client_cpu_ms_per_request:.3f} "
            f"ms/req, web {web_ms:.2f} ms/req, service {service_ms:.2f} ms/req")
        runs[str(concurrency)] = row
    return {"tool": tool, "requests": requests, "runs": runs}
