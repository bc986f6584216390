"""The bench's one table: every number of a run with the machine it ran on, and the goals.

``render_table(doc)`` takes the document ``bench/run.py`` writes to ``bench/results/latest.json``
(``{"when", "machine", "command", "results": {...}}``) and prints only what the run measured:
optional sections (photo sizes, peers, goals) appear when their results are there. A stage can
add its own goal lines to ``results["goals"]`` (``Goal.to_dict()``) without touching this file.
"""

from __future__ import annotations

import math
import os
import platform
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

MS = 1000


@dataclass(frozen=True)
class Goal:
    """One of issue 15's targets: ``value`` must be at most (or at least) ``limit``."""

    item: int
    name: str
    value: float | None
    limit: float
    at_most: bool

    @property
    def met(self) -> bool | None:
        if self.value is None or math.isnan(self.value):
            return None
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def render(self) -> str:
        shown = "n/a" if self.value is None else f"{self.value:.2f}"
        verdict = {True: "met", False: "MISSED", None: "not measured"}[self.met]
        return f"{shown} (goal {'<=' if self.at_most else '>='} {self.limit:g}): {verdict}"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"met": self.met}


def machine(extra: dict[str, str] | None = None) -> dict[str, Any]:
    """CPU model and flags that matter to ONNX Runtime, cores, memory, versions, load."""
    cpu, flags = "unknown", set[str]()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu == "unknown":
                cpu = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    except OSError:
        pass
    mem_gb = float("nan")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    except OSError:
        pass
    import onnxruntime
    import PIL

    isa = [f for f in ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8") if f in flags]
    return {"cpu": cpu, "cores": len(os.sched_getaffinity(0)), "isa": isa,
            "memory_gb": round(mem_gb, 1), "python": platform.python_version(),
            "onnxruntime": onnxruntime.__version__, "pillow": PIL.__version__,
            "os": f"{platform.system()} {platform.release()}",
            "load_at_start": [round(x, 2) for x in os.getloadavg()], **(extra or {})}


def _s(value: Any, unit: str = "s") -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "timed out"
    return f"{value:.2f} {unit}"


def _latency(e: dict[str, Any]) -> str:
    return (f"p50 {e['latency_p50_s'] * MS:.0f} ms, p90 {e['latency_p90_s'] * MS:.0f} ms, "
            f"p99 {e['latency_p99_s'] * MS:.0f} ms, max {e['latency_max_s'] * MS:.0f} ms")


def _memory(e: dict[str, Any]) -> list[tuple[str, str]]:
    if "peak_rss_mb" not in e:
        return []
    return [("  memory at load", f"peak RSS {e['peak_rss_mb']:.0f} MB (sum over processes), "
                                 f"PSS {e['peak_pss_mb']:.0f} MB")]


def _errors(e: dict[str, Any]) -> int:
    return sum(e["errors"].values())


def core_lines(r: dict[str, Any]) -> list[tuple[str, str]]:
    """Bare model, imgrec end to end, grading run, cold start and scale-in."""
    b, e, g = r["bare"]["best"], r["e2e"], r["grading"]
    lines = [
        ("bare model ceiling",
         f"{b['images_per_s']:.1f} img/s ({b['processes']} proc x {b['threads']} thread, "
         f"batch {b['batch_size']}), {b['cpu_ms_per_image']:.2f} ms CPU/img, "
         f"{r['bare']['correct']}/{r['bare']['photos']} correct"),
        ("service end to end (httpx)",
         f"{e['throughput_rps']:.1f} req/s, {e['requests']} req at concurrency "
         f"{e['concurrency']}, {_errors(e)} errors, {e['correct']}/{e['answered']} correct "
         "(answers checked; the client shares the cores)"),
        ("  latency", _latency(e)),
        ("  service CPU", f"{e['cpu_ms_per_request']:.2f} ms per request (all processes)"),
        *_memory(e),
    ]
    if "client_cpu_ms_per_request" in e:
        lines.append(("  client CPU", f"{e['client_cpu_ms_per_request']:.2f} ms per request"))
    if "connections" in e:
        lines.append(("  connections", f"{e['connections']} opened"))
    lines += [
        ("throughput ratio", f"{r['ratios']['throughput']:.2f} (e2e / bare)"),
        ("CPU ratio", f"{r['ratios']['cpu']:.2f} (service CPU per request / bare per image)"),
        ("grading run",
         f"{g['requests']} at once: total {g['elapsed_s']:.2f} s, mean latency "
         f"{g['latency_mean_s']:.2f} s, {_errors(g)} errors"),
        ("cold start", _s(r["cold_start_s"])),
        ("scale-in", _s(r["scale_in_s"])),
    ]
    ratios = r["ratios"]
    if "grading_vs_allowed" in ratios:
        lines.append(("grading vs allowed", f"{ratios['grading_vs_allowed']:.2f} (wall / (cold "
                                            "start + 1.2 x requests / bare img/s); goal <= 1)"))
    burst = r.get("burst_from_idle")
    if isinstance(burst, dict):
        lines.append(("burst from idle",
                      f"{burst['answered']}/{burst['requests']} answered in "
                      f"{burst['elapsed_s']:.2f} s; 0 workers "
                      f"{_s(burst['zero_workers_after_s'])} after"))
    if "zero_after_burst_vs_2s" in ratios:
        lines.append(("to zero vs 2 s", f"{ratios['zero_after_burst_vs_2s']:.2f} (goal <= 1)"))
    return lines


def photo_lines(photos: dict[str, Any]) -> list[tuple[str, str]]:
    """One line per photo size: pixels, file size, CPU per image by stage, top-1 both paths."""
    lines = []
    for c in photos["sizes"]:
        lines.append((
            f"  {c['name']}",
            f"{c['width']}x{c['height']}, {c['mean_kb']:.0f} KB: {c['cpu_ms']:.2f} ms CPU/img "
            f"(decode {c['decode_ms']:.2f} + preprocess {c['preprocess_ms']:.2f} + model "
            f"{c['infer_ms']:.2f}); exact path {c['exact_cpu_ms']:.2f} ms; top-1 "
            f"{c['correct']}/{c['photos']} (exact {c['correct_exact']}, same answer "
            f"{c['agree']}/{c['photos']})"))
    return [("photo sizes", "1 process, 1 ONNX thread, batch 1; fast path = the service's")] + lines


def _wrk(w: dict[str, Any]) -> str:
    return (f"{w['rps']:.1f} req/s, {w['ok']}/{w['sent']} ok, p50 {w['latency_p50_s'] * MS:.0f} ms,"
            f" p99 {w['latency_p99_s'] * MS:.0f} ms, service CPU {w['cpu_ms_per_request']:.2f} "
            f"ms/req, client CPU {w['client_cpu_ms_per_request']:.2f} ms/req, "
            f"{w['connections']} connections")


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if b else "n/a"


def peer_lines(name: str, p: dict[str, Any], r: dict[str, Any]) -> list[tuple[str, str]]:
    e, g = p["e2e"], p["grading"]
    mine, my_grading = r["e2e"], r["grading"]
    lines = [
        (f"peer: {name}", p.get("description", "")),
        ("  end to end",
         f"{e['throughput_rps']:.1f} req/s, {e['requests']} req at concurrency "
         f"{e['concurrency']}, {_errors(e)} errors, {e['correct']}/{e['answered']} correct"),
        ("  latency", _latency(e)),
        ("  service CPU", f"{e['cpu_ms_per_request']:.2f} ms per request (all processes)"),
        *_memory(e),
        ("  grading run",
         f"{g['requests']} at once: total {g['elapsed_s']:.2f} s, mean latency "
         f"{g['latency_mean_s']:.2f} s, {_errors(g)} errors"),
    ]
    if "ready_s" in p:
        lines.append(("  start to ready", _s(p["ready_s"])))
    lines.append((f"  imgrec / {name}",
                  f"throughput {_ratio(mine['throughput_rps'], e['throughput_rps'])}, "
                  f"p50 {_ratio(mine['latency_p50_s'], e['latency_p50_s'])}, "
                  f"p99 {_ratio(mine['latency_p99_s'], e['latency_p99_s'])}, "
                  f"CPU per request {_ratio(mine['cpu_ms_per_request'], e['cpu_ms_per_request'])}"
                  f", {g['requests']} at once wall "
                  f"{_ratio(my_grading['elapsed_s'], g['elapsed_s'])}"))
    mine_wrk, theirs_wrk = r.get("e2e_low_cost"), p.get("low_cost")
    if mine_wrk and theirs_wrk:
        lines += [
            ("  same load with wrk", f"{theirs_wrk['sent']} requests at concurrency "
                                     f"{theirs_wrk['concurrency']}, client {theirs_wrk['tool']}"),
            ("    imgrec", _wrk(mine_wrk)),
            (f"    {name}", _wrk(theirs_wrk)),
            (f"    imgrec / {name}",
             f"throughput {_ratio(mine_wrk['rps'], theirs_wrk['rps'])}, "
             f"p99 {_ratio(mine_wrk['latency_p99_s'], theirs_wrk['latency_p99_s'])}, CPU per "
             f"request {_ratio(mine_wrk['cpu_ms_per_request'], theirs_wrk['cpu_ms_per_request'])}"),
        ]
    return lines


def render_table(doc: dict[str, Any]) -> str:
    r = doc["results"]
    lines = core_lines(r)
    if r.get("low_cost_client"):
        lines += low_cost_lines(r["low_cost_client"])
    if "photos" in r:
        lines += photo_lines(r["photos"])
    for name, peer in r.get("peers", {}).items():
        lines += peer_lines(name, peer, r)
    goals = [Goal(**{k: v for k, v in g.items() if k != "met"}) for g in r.get("goals", [])]
    if goals:
        lines.append(("goals (issue 15)", ""))
        lines += [(f"  {g.item}. {g.name}", g.render()) for g in sorted(goals, key=_goal_key)]
    width = max(len(name) for name, _ in lines)
    m = doc["machine"]
    head = (f"imgrec bench, {doc['when']}, {m['cpu']} x {m['cores']} cores"
            f"{' (' + ', '.join(m['isa']) + ')' if m.get('isa') else ''}, "
            f"{m.get('memory_gb', '?')} GB, Python {m['python']}, "
            f"ONNX Runtime {m['onnxruntime']}")
    if "load_at_start" in m:
        head += f", load {' '.join(str(x) for x in m['load_at_start'])}"
    body = [f"{n:<{width}}  {v}".rstrip() for n, v in lines]
    return "\n".join([head, "-" * len(head), *body])


def _goal_key(goal: Goal) -> tuple[int, str]:
    return goal.item, goal.name


def low_cost_lines(low: dict[str, Any]) -> list[tuple[str, str]]:
    """The low-cost client's runs (``lowcost.measure``), one block per concurrency."""
    lines = []
    for concurrency, r in low["runs"].items():
        q = r["ratios"]
        errors = sum(r["errors"].values())
        lines += [
            (f"{low['tool']} c{concurrency}",
             f"{r['rps']:.1f} req/s ({q['throughput']:.2f} x bare; goal at c64 >= 0.8), "
             f"{r['ok']}/{r['answered']} ok, {errors} errors"),
            ("  latency", f"p50 {r['latency_p50_s'] * 1000:.0f} ms, p99 "
                          f"{r['latency_p99_s'] * 1000:.0f} ms: p99/p50 {q['p99_over_p50']:.2f} "
                          "(goal <= 1.5)"),
            ("  connections", f"{r['connections']} opened for {concurrency} (goal <= "
                              f"{concurrency})"),
            ("  client CPU", f"{r['client_cpu_ms_per_request']:.3f} ms per request (goal < 0.5)"),
            ("  web-tier CPU", f"{r['web_cpu_ms_per_request']:.2f} ms per request = "
                               f"{q['web_cpu']:.3f} x bare per image (goal <= 0.1)"),
            ("  service CPU", f"{r['service_cpu_ms_per_request']:.2f} ms per request = "
                              f"{q['service_cpu']:.2f} x bare per image (goal <= 1.15)"),
        ]
    return lines


def low_cost_goals(low: dict[str, Any] | None) -> list[Goal]:
    """Items 1-4 from the low-cost client's runs (``lowcost.measure``), per concurrency."""
    goals: list[Goal] = []
    if not low:
        return goals
    for concurrency, run in low["runs"].items():
        q = run["ratios"]
        goals += [
            Goal(1, f"p99 / p50 at c{concurrency} ({low['tool']})", q["p99_over_p50"], 1.5, True),
            Goal(1, f"connections / concurrency at c{concurrency}",
                 q["connections_over_concurrency"], 1.0, True),
            Goal(2, f"client CPU ms per request at c{concurrency}",
                 run["client_cpu_ms_per_request"], 0.5, True),
            Goal(3, f"web-tier CPU / bare per image at c{concurrency}", q["web_cpu"], 0.1, True),
            Goal(3, f"service CPU / bare per image at c{concurrency}", q["service_cpu"], 1.15,
                 True),
        ]
        if concurrency == "64":
            goals.append(Goal(4, "throughput at c64 / bare ceiling", q["throughput"], 0.8, False))
    return goals


def standard_goals(r: dict[str, Any]) -> list[Goal]:
    """The goals this run's results can be checked against (issue 15's item numbers)."""
    e, ratios = r["e2e"], r["ratios"]
    # The httpx run's client competes for the cores: judged only when no low-cost client ran.
    goals = low_cost_goals(r.get("low_cost_client")) or [
        Goal(1, f"p99 / p50 at concurrency {e['concurrency']}",
             e["latency_p99_s"] / e["latency_p50_s"] if e["latency_p50_s"] else None, 1.5, True),
        Goal(3, "service CPU per request / bare CPU per image", ratios["cpu"], 1.15, True),
        Goal(4, "throughput / bare ceiling", ratios["throughput"], 0.8, False),
    ]
    if "vs_ray_throughput" in ratios:
        goals += [Goal(5, "throughput / Ray Serve's", ratios["vs_ray_throughput"], 1.7, False),
                  Goal(5, "p99 / Ray Serve's p99", ratios["vs_ray_p99"], 0.5, True)]
    if "jpeg_12mp_vs_dev" in ratios:
        goals.append(Goal(9, "CPU of a 12 MP JPEG / a 500x375 one", ratios["jpeg_12mp_vs_dev"],
                          2.0, True))
    return goals
