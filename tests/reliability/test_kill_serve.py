"""Accepted means durable (issue 14, item 6): ``imgrec serve`` is SIGKILLed at random moments
during a stream of asynchronous submissions, round after round on the same state directory;
every job id a client got back (202) is answered after the last restart, with the bare model's
class.

The seed is printed; ``IMGREC_TEST_SEED`` replays a run.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import threading
import time
from pathlib import Path

import httpx
from tests.conftest import DevPhoto
from tests.helpers.server import run_server

ROUNDS = 8
CONCURRENCY = 4


async def _stream(url: str, photos: list[DevPhoto], stop: threading.Event,
                  accepted: dict[str, str], refused: list[str]) -> None:
    """Submit jobs until ``stop`` is set or the server goes; note each id that came back."""
    async with httpx.AsyncClient(base_url=url, timeout=30) as client:

        async def one(worker: int) -> None:
            i = worker
            while not stop.is_set():
                photo = photos[i % len(photos)]
                i += CONCURRENCY
                try:
                    resp = await client.post("/api/v1/jobs", files={
                        "file": (photo.path.name, photo.path.read_bytes())})
                except httpx.TransportError:
                    return  # killed: whatever was in flight has no id, so it is not owed
                if resp.status_code == 202:
                    accepted[resp.json()["id"]] = photo.path.name
                else:
                    refused.append(f"{resp.status_code} {resp.text[:200]}")

        await asyncio.gather(*(one(w) for w in range(CONCURRENCY)))


def test_every_job_accepted_before_a_sigkill_is_answered_after_restart(
    tmp_path: Path, dev_photos: list[DevPhoto], bare_top1: dict[str, int]
) -> None:
    seed = int(os.environ.get("IMGREC_TEST_SEED", time.time_ns() % 2**32))
    print(f"seed {seed}")
    rng = random.Random(seed)
    state = tmp_path / "state"
    accepted: dict[str, str] = {}
    refused: list[str] = []
    per_round: list[int] = []
    for round_no in range(ROUNDS):
        workers = "1" if round_no % 2 else "0"  # kill with and without work in progress
        with run_server(state, "--workers", workers) as srv:
            stop = threading.Event()
            before = len(accepted)
            stream = threading.Thread(target=asyncio.run, args=(
                _stream(srv.url, dev_photos, stop, accepted, refused),))
            stream.start()
            time.sleep(rng.uniform(0.1, 1.2))
            srv.process.send_signal(signal.SIGKILL)
            srv.process.wait(timeout=30)
            stop.set()
            stream.join(timeout=60)
            per_round.append(len(accepted) - before)

    with run_server(state, "--workers", "1") as final, \
            httpx.Client(base_url=final.url, timeout=30) as client:
        pending = dict(accepted)
        answers: dict[str, dict[str, object]] = {}
        deadline = time.monotonic() + 180
        while pending:
            for job_id in list(pending):
                job = client.get(f"/api/v1/jobs/{job_id}")
                assert job.status_code == 200, f"job {job_id}: {job.status_code} {job.text}"
                if job.json()["status"] != "queued":
                    answers[job_id] = job.json()
                    del pending[job_id]
            assert time.monotonic() < deadline, f"{len(pending)} accepted jobs never answered"
            time.sleep(0.2)

    print(f"accepted per round {per_round}; {len(accepted)} jobs, all answered")
    assert refused == []
    assert sum(per_round) == len(accepted) and min(per_round[1:]) >= 0
    assert len(accepted) > ROUNDS, "too few jobs to show anything"
    for job_id, answer in answers.items():
        assert answer["status"] == "done", answer
        result = answer["result"]
        assert isinstance(result, dict) and result["class_index"] == bare_top1[accepted[job_id]]
