"""A long soak anyone can run: ``make soak`` (30 minutes), ``make soak SOAK_MINUTES=3``.

``python -m tests.reliability.soak --minutes 30`` starts ``imgrec serve --workers 2`` on a fresh
state directory and drives it with a steady mix of clients: synchronous JSON requests, the
course API, asynchronous jobs (polled until done) and bad inputs (text, truncated JPEG, empty
file). Meanwhile a worker is SIGKILLed every minute and, half way, the web tier itself is
SIGKILLed and started again on the same port and state. Retention is short (a sixth of the
run, at least 30 s), so the disk use must level off.

It ends with a table: requests, answered, lost (accepted and never answered: must be 0),
duplicates (an id answered twice, or two answers for one: 0), wrong answers (not the bare
model's: 0), unexpected statuses (0), p50/p99 latency, RSS and open files of the web tier and
the workers at the start and the end, and the disk use over time. The numbers also go to
``test-artifacts/soak-<minutes>min.json``. The exit code is 0 only if every check holds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from tests.helpers.server import free_port, wait_until_healthy
from tests.reliability import support

from imgrec.percentile import percentile

ROOT = Path(__file__).resolve().parents[2]
DEV_IMAGES = Path(os.environ.get("IMGREC_DEV_IMAGES", ROOT.parent / "shared" / "images" / "dev"))
CLIENTS = 6
KILL_EVERY_S = 60.0
BAD = {"text": (b"this is not an image", 415, "not_an_image"),
       "empty": (b"", 400, "empty_file")}


@dataclass
class Tally:
    """What the clients saw."""

    sent: Counter[str] = field(default_factory=Counter)
    answered: Counter[str] = field(default_factory=Counter)
    statuses: Counter[str] = field(default_factory=Counter)
    unexpected: list[str] = field(default_factory=list)
    wrong: list[str] = field(default_factory=list)
    ids: Counter[str] = field(default_factory=Counter)
    jobs: dict[str, str] = field(default_factory=dict)  # unanswered accepted id -> photo
    # Ids of synchronous requests that got 504: their deadline (the wait) has passed, so a
    # worker that had not taken them yet answers deadline_exceeded (issue 16).
    timed_out: set[str] = field(default_factory=set)
    accepted_jobs: int = 0
    jobs_answered: int = 0
    latencies_s: list[float] = field(default_factory=list)
    connection_errors: int = 0
    connection_errors_outside_restart: int = 0


@dataclass
class Service:
    state: Path
    port: int
    log_path: Path
    env: dict[str, str]
    process: subprocess.Popen[bytes] | None = None
    restarting: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "imgrec", "serve", "--host", "127.0.0.1", "--port",
                 str(self.port), "--state-dir", str(self.state), "--workers", "2"],
                stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **self.env})
        wait_until_healthy(self.url, self.process, self.log_path, timeout_s=120)
        support.wait_for_workers(self.state, 2, timeout_s=120)

    def kill_web_and_restart(self) -> float:
        assert self.process is not None
        self.restarting.set()
        started = time.monotonic()
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)
        time.sleep(1.5)  # its workers notice their parent is gone and stop
        self.start()
        self.restarting.clear()
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def bare_model(photos: list[Path]) -> dict[str, tuple[int, str]]:
    from imgrec.model.classifier import Classification, load_classifier

    classifier = load_classifier("mobilenet_v2", threads=1)
    out: dict[str, tuple[int, str]] = {}
    for photo, got in zip(photos, classifier.classify_images([p.read_bytes() for p in photos]),
                          strict=True):
        assert isinstance(got, Classification)
        out[photo.name] = (got.class_index, got.label)
    return out


def process_facts(service: Service) -> dict[str, Any]:
    """RSS (MiB) and open files of the web tier and the workers (summed), from /proc."""
    assert service.process is not None
    web = service.process.pid
    workers = list(support.worker_pids(service.state).values())
    return {
        "web_rss_mib": round(support.rss_kib(web) / 1024, 1),
        "web_open_files": _open_files(web),
        "workers": len(workers),
        "workers_rss_mib": round(sum(support.rss_kib(p) for p in workers) / 1024, 1),
        "workers_open_files": sum(_open_files(p) for p in workers),
    }


def _open_files(pid: int) -> int:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def disk_mib(path: Path) -> float:
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return round(total / 2**20, 2)


class Load:
    """``CLIENTS`` clients sending the mix until ``stop``; what they saw goes to ``tally``."""

    def __init__(self, service: Service, photos: list[Path], bare: dict[str, tuple[int, str]],
                 seed: int) -> None:
        self.service = service
        self.photos = [(p.name, p.read_bytes()) for p in photos]
        self.bare = bare
        self.rng = random.Random(seed)
        self.tally = Tally()
        self.stop = threading.Event()
        truncated = self.photos[0][1][: len(self.photos[0][1]) // 3]
        self.bad = {**BAD, "truncated": (truncated, 422, "corrupt_image")}

    async def run(self) -> None:
        # Idle connections go after 1 s, before uvicorn's 5 s keep-alive timeout (reusing one
        # the server is closing is a client-side race of any HTTP/1.1 client).
        limits = httpx.Limits(keepalive_expiry=1.0)
        async with httpx.AsyncClient(timeout=90, limits=limits) as client:
            await asyncio.gather(self._poller(client),
                                 *(self._client(client) for _ in range(CLIENTS)))

    async def _poller(self, client: httpx.AsyncClient) -> None:
        """Polls the accepted jobs while the load runs (before their retention ends)."""
        while not self.stop.is_set():
            for job_id in list(self.tally.jobs)[:50]:
                try:
                    resp = await client.get(f"{self.service.url}/api/v1/jobs/{job_id}")
                except httpx.TransportError:
                    break  # the web tier is restarting: try again in a moment
                self.check_job(job_id, resp)
            await asyncio.sleep(0.5)

    def check_job(self, job_id: str, resp: httpx.Response) -> bool:
        """Record a job's answer; False while it is still queued (or the tier is starting)."""
        if resp.status_code == 503:
            return False
        job = resp.json()
        if resp.status_code == 200 and job.get("status") == "queued":
            return False
        name = self.tally.jobs.pop(job_id)
        if job.get("status") == "deadline_exceeded" and job_id in self.tally.timed_out:
            self.tally.jobs_answered += 1
            return True
        if resp.status_code != 200 or job.get("status") != "done":
            self.tally.unexpected.append(f"job {job_id}: {resp.status_code} {job}")
            return True
        self.tally.jobs_answered += 1
        self.tally.ids[job_id] += 1
        if job["result"]["class_index"] != self.bare[name][0]:
            self.tally.wrong.append(f"job {name}: {job['result']['class_index']}")
        return True

    async def _client(self, client: httpx.AsyncClient) -> None:
        while not self.stop.is_set():
            kind = self.rng.choices(["sync", "course", "async", "bad"], [4, 3, 2, 1])[0]
            try:
                await self._one(client, kind)
            except httpx.TransportError as exc:
                self.tally.connection_errors += 1
                if not self.service.restarting.is_set():
                    self.tally.connection_errors_outside_restart += 1
                    self.tally.unexpected.append(f"{kind}: {type(exc).__name__}: {exc}")
                await asyncio.sleep(0.2)

    async def _one(self, client: httpx.AsyncClient, kind: str) -> None:
        url = self.service.url
        self.tally.sent[kind] += 1
        if kind == "bad":
            which = self.rng.choice(sorted(self.bad))
            data, status, code = self.bad[which]
            resp = await client.post(f"{url}/api/v1/classify", files={"file": ("x.jpg", data)})
            self._status(kind, resp)
            if resp.status_code == status and resp.json().get("error") == code:
                self.tally.answered[kind] += 1
            elif resp.status_code != 503:
                self.tally.unexpected.append(f"bad {which}: {resp.status_code} {resp.text[:200]}")
            return
        name, data = self.photos[self.rng.randrange(len(self.photos))]
        route, field_name = {"sync": ("/api/v1/classify", "file"), "course": ("/", "myfile"),
                             "async": ("/api/v1/jobs", "file")}[kind]
        sent = time.monotonic()
        resp = await client.post(f"{url}{route}", files={field_name: (name, data)})
        self._status(kind, resp)
        if resp.status_code == 200 and kind in ("sync", "course"):
            self.tally.latencies_s.append(time.monotonic() - sent)
            self.tally.answered[kind] += 1
            if kind == "course":
                if resp.text != f"{Path(name).stem}:{self.bare[name][1]}":
                    self.tally.wrong.append(f"course {name}: {resp.text}")
                return
            body = resp.json()
            self.tally.ids[body["id"]] += 1
            if body["class_index"] != self.bare[name][0]:
                self.tally.wrong.append(f"sync {name}: {body['class_index']}")
        elif resp.status_code in (202, 504):  # accepted: an id to poll (504: not yet answered)
            body = resp.json()
            self.tally.jobs[body.get("id") or body["job_id"]] = name
            if resp.status_code == 504:
                self.tally.timed_out.add(body["job_id"])
            self.tally.accepted_jobs += 1
        elif resp.status_code not in (503,):
            self.tally.unexpected.append(f"{kind}: {resp.status_code} {resp.text[:200]}")

    def _status(self, kind: str, resp: httpx.Response) -> None:
        self.tally.statuses[f"{kind} {resp.status_code}"] += 1


def poll_jobs(url: str, load: Load, timeout_s: float) -> list[str]:
    """Poll the jobs still unanswered until they are; return the ids never answered."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(base_url=url, timeout=30) as client:
        while load.tally.jobs and time.monotonic() < deadline:
            for job_id in list(load.tally.jobs):
                with contextlib.suppress(httpx.TransportError):
                    load.check_job(job_id, client.get(f"/api/v1/jobs/{job_id}"))
            time.sleep(0.2)
    return sorted(load.tally.jobs)


def run(minutes: float, state_root: Path, seed: int) -> dict[str, Any]:
    duration_s = minutes * 60
    retention_s = max(30.0, duration_s / 6)
    photos = sorted(DEV_IMAGES.glob("*.JPEG"))
    bare = bare_model(photos)
    state = state_root / "state"
    env = {"IMGREC_RETENTION_DAYS": str(retention_s / 86400), "IMGREC_JANITOR_INTERVAL_S": "5",
           "IMGREC_WEB_HEARTBEAT_S": "1", "IMGREC_REPLY_QUEUE_GRACE_S": "10",
           "IMGREC_SYNC_TIMEOUT_S": "60"}
    service = Service(state, free_port(), state_root / "serve.log", env)
    service.start()
    load = Load(service, photos, bare, seed)
    loop_thread = threading.Thread(target=asyncio.run, args=(load.run(),), daemon=True)
    started = time.monotonic()
    loop_thread.start()
    time.sleep(min(20.0, duration_s / 10))  # warm up before the first reading
    start_facts = process_facts(service)
    disk: list[tuple[float, float]] = []
    kills = 0
    restart_s: float | None = None
    next_kill = started + KILL_EVERY_S
    next_disk = started
    while (now := time.monotonic()) < started + duration_s:
        if now >= next_disk:
            disk.append((round(now - started), disk_mib(state)))
            next_disk += max(10.0, duration_s / 30)
        if now >= next_kill:
            pids = support.worker_pids(state)
            if pids:
                os.kill(pids[sorted(pids)[0]], signal.SIGKILL)
                kills += 1
            next_kill += KILL_EVERY_S
        if restart_s is None and now >= started + duration_s / 2 + 5:
            restart_s = service.kill_web_and_restart()
        time.sleep(0.5)
    load.stop.set()
    loop_thread.join(timeout=120)
    lost = poll_jobs(service.url, load, timeout_s=120)
    support.wait_for_empty_queue(service.url, timeout_s=60)
    end_facts = process_facts(service)
    disk.append((round(time.monotonic() - started), disk_mib(state)))
    service.stop()
    log = service.log_path.read_text(errors="replace")

    tally = load.tally
    latencies_ms = [s * 1000 for s in tally.latencies_s]
    report: dict[str, Any] = {
        "minutes": minutes, "seed": seed, "retention_s": retention_s,
        "requests": sum(tally.sent.values()), "sent": dict(tally.sent),
        "answered": sum(tally.answered.values()) + tally.jobs_answered,
        "accepted_jobs": tally.accepted_jobs, "lost": len(lost), "lost_ids": lost[:10],
        "duplicates": sum(n - 1 for n in tally.ids.values() if n > 1),
        "wrong": len(tally.wrong), "unexpected": len(tally.unexpected),
        "unexpected_first": tally.unexpected[:10], "wrong_first": tally.wrong[:10],
        "statuses": dict(sorted(tally.statuses.items())),
        "refused_503": sum(n for k, n in tally.statuses.items() if k.endswith(" 503")),
        "connection_errors_during_restart": tally.connection_errors
        - tally.connection_errors_outside_restart,
        "p50_ms": _round(percentile(latencies_ms, 50)),
        "p99_ms": _round(percentile(latencies_ms, 99)),
        "workers_killed": kills, "web_restart_s": _round(restart_s),
        "tracebacks_in_log": log.count("Traceback"),
        "start": start_facts, "end": end_facts, "disk_mib": disk,
    }
    return report


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


def table(report: dict[str, Any]) -> str:
    s, e = report["start"], report["end"]
    rows = [
        ("requests", report["requests"]), ("answered", report["answered"]),
        ("not accepted: 503 / connection errors at the web restart",
         f"{report['refused_503']} / {report['connection_errors_during_restart']}"),
        ("lost", report["lost"]), ("duplicates", report["duplicates"]),
        ("wrong answers", report["wrong"]), ("unexpected statuses", report["unexpected"]),
        ("p50 / p99 latency (ms)", f"{report['p50_ms']} / {report['p99_ms']}"),
        ("workers killed / web restarts (s down)",
         f"{report['workers_killed']} / 1 ({report['web_restart_s']} s)"),
        ("web RSS MiB start / end", f"{s['web_rss_mib']} / {e['web_rss_mib']}"),
        ("web open files start / end", f"{s['web_open_files']} / {e['web_open_files']}"),
        ("workers RSS MiB start / end", f"{s['workers_rss_mib']} / {e['workers_rss_mib']}"),
        ("workers open files start / end",
         f"{s['workers_open_files']} / {e['workers_open_files']}"),
        ("disk MiB (t s: MiB)", ", ".join(f"{t}: {m}" for t, m in report["disk_mib"])),
    ]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"| {k:<{width}} | {v} |" for k, v in rows)


def failures(report: dict[str, Any]) -> list[str]:
    problems = [f"{k} = {report[k]}" for k in ("lost", "duplicates", "wrong", "unexpected")
                if report[k]]
    if report["tracebacks_in_log"]:
        problems.append(f"{report['tracebacks_in_log']} tracebacks in the service's log")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="how long (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="replay a run's client mix")
    parser.add_argument("--keep", action="store_true", help="keep the state directory")
    args = parser.parse_args()
    seed = args.seed if args.seed is not None else time.time_ns() % 2**32
    root = Path(tempfile.mkdtemp(prefix="imgrec-soak-"))
    print(f"soak: {args.minutes:g} min, seed {seed}, state in {root}", flush=True)
    try:
        report = run(args.minutes, root, seed)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / f"soak-{args.minutes:g}min.json").write_text(json.dumps(report, indent=2))
    print(table(report))
    problems = failures(report)
    for problem in problems:
        print(f"FAILED: {problem}")
    if report["unexpected_first"]:
        print("unexpected:", *report["unexpected_first"], sep="\n  ")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
