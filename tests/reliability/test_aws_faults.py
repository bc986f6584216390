"""Faults on the AWS backend (moto's S3 and SQS, the web tier and local worker processes).

- the endpoint becomes unreachable (a cuttable TCP proxy in front of moto, so the stack's
  state survives): requests get 503 with a clear message quickly, the web tier and the worker
  stay up, and once the endpoint is back the service recovers by itself and answers the
  requests it had accepted before the outage;
- the endpoint hangs (accepts connections, never answers): 503 at the web tier's deadline
  (``backend_timeout_s``, 2.5 s), not after every read timeout and retry, then recovery;
- kill -9 a worker mid-batch: SQS redelivers its requests after the visibility timeout; every
  request is answered exactly once, with the bare model's label.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import DevPhoto
from tests.helpers import aws_adapters
from tests.helpers.aws_adapters import Endpoint
from tests.helpers.server import run_server
from tests.reliability import aws_support, support
from tests.reliability.aws_proxy import CuttableProxy

from imgrec.aws.naming import StackNames

pytestmark = pytest.mark.aws
STACK = "rel"
PHOTO = "n01530575_brambling.JPEG"
VISIBILITY_S = 3
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
SERVE = ("--backend", "aws", "--stack", STACK, "--workers", "0")


moto = aws_adapters.moto_fixture


@pytest.fixture
def stack(moto: Endpoint, tmp_path: Path) -> StackNames:
    return aws_support.provision(STACK, tmp_path, visibility_s=VISIBILITY_S)


def _assert_503(resp: httpx.Response, words: str = "Could not connect") -> None:
    assert resp.status_code == 503, resp.text
    body = resp.json()
    assert body["error"] == "backend_unavailable", body
    assert "unreachable" in body["detail"] and words in body["detail"], body
    assert int(resp.headers["retry-after"]) > 0


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    resp = call()
    return resp, time.monotonic() - started


def test_an_unreachable_endpoint_gives_503_then_the_service_recovers(
    moto: Endpoint, stack: StackNames, tmp_path: Path, dev_images: Path,
) -> None:
    photo = dev_images / PHOTO
    with CuttableProxy(moto.url) as proxy:
        env = {**aws_adapters.moto_env(Endpoint(proxy.url), tmp_path),
               "IMGREC_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S), "IMGREC_SYNC_TIMEOUT_S": "90"}
        with (
            run_server(tmp_path / "state", *SERVE, env=env) as srv,
            aws_support.local_workers(STACK, 1, tmp_path, env) as workers,
            ThreadPoolExecutor(max_workers=1) as pool,
        ):
            worker = workers["local-0"]
            aws_support.wait_for_workers(moto, stack, workers)
            warm = aws_support.post_photo(srv.url, photo)
            assert warm.status_code == 200 and warm.json()["label"] == "brambling", warm.text

            # Accepted before the outage and still unanswered when it starts: the worker is
            # frozen (a long poll it had open may even have received them, and that answer is
            # lost with the connection).
            os.kill(worker.pid, signal.SIGSTOP)
            try:
                job = aws_support.post_photo(srv.url, photo, "/api/v1/jobs")
                assert job.status_code == 202, job.text
                waiting = pool.submit(aws_support.post_photo, srv.url, photo)
                _wait_until_queued(moto, stack, 2)
                # moto has both messages once they count; its answer to the web tier's send
                # may still be on its way, and a cut then fails the send (a 503, not a wait).
                time.sleep(0.5)
                proxy.cut()
            finally:
                os.kill(worker.pid, signal.SIGCONT)

            classify, classify_s = _timed(lambda: aws_support.post_photo(srv.url, photo))
            _assert_503(classify)
            lookup, lookup_s = _timed(lambda: httpx.get(f"{srv.url}{job.json()['poll']}",
                                                        timeout=90))
            _assert_503(lookup)
            healthz, healthz_s = _timed(lambda: httpx.get(f"{srv.url}/healthz", timeout=90))
            _assert_503(healthz)
            time.sleep(2)  # the worker and the reply dispatcher keep failing meanwhile
            assert worker.poll() is None, "the worker died in the outage"
            assert srv.process.poll() is None, "the web tier died in the outage"
            assert not waiting.done(), (
                f"the waiting request was not kept waiting: {waiting.result().status_code} "
                f"{waiting.result().text}")

            proxy.restore()
            restored = time.monotonic()
            recovered = _first_success(srv.url, photo)
            recovery_s = time.monotonic() - restored
            answered = waiting.result(timeout=90)
            waited_s = time.monotonic() - restored
            assert answered.status_code == 200, answered.text
            assert answered.json()["label"] == "brambling"
            assert recovered.json()["label"] == "brambling"
            done = _poll_job(srv.url, job.json()["poll"])
            assert done["result"]["label"] == "brambling", done
            support.wait_for_empty_queue(srv.url, timeout_s=30)
            worker_log = (tmp_path / "local-0.log").read_text(errors="replace")

    assert "cannot receive requests" in worker_log
    _report("aws-outage.json", {"classify_503_s": classify_s, "lookup_503_s": lookup_s,
                                "healthz_503_s": healthz_s, "recovery_s": recovery_s,
                                "waiting_answered_s": waited_s})
    # botocore's defaults would take minutes (60 s connects, retried); issue 14 asks for 3 s.
    assert max(classify_s, lookup_s, healthz_s) < 3


def test_a_silent_endpoint_gives_503_within_the_timeouts_then_the_service_recovers(
    moto: Endpoint, stack: StackNames, tmp_path: Path, dev_images: Path,
) -> None:
    """The endpoint accepts connections but never answers (hung, not down): the web tier's
    deadline, not the read timeouts and retries below it, bounds the wait for the 503."""
    photo = dev_images / PHOTO
    with CuttableProxy(moto.url) as proxy:
        env = aws_adapters.moto_env(Endpoint(proxy.url), tmp_path)
        with (
            run_server(tmp_path / "state", *SERVE, env=env) as srv,
            aws_support.local_workers(STACK, 1, tmp_path, env) as workers,
            ThreadPoolExecutor(max_workers=2) as pool,
        ):
            aws_support.wait_for_workers(moto, stack, workers)
            assert aws_support.post_photo(srv.url, photo).status_code == 200
            proxy.stall()
            classify = pool.submit(_timed, lambda: aws_support.post_photo(srv.url, photo))
            healthz = pool.submit(_timed, lambda: httpx.get(f"{srv.url}/healthz", timeout=120))
            (classified, classify_s), (health, healthz_s) = classify.result(), healthz.result()
            _assert_503(classified, "no answer within 2.5 s")
            _assert_503(health, "no answer within 2.5 s")
            assert workers["local-0"].poll() is None, "the worker died in the outage"
            proxy.restore()
            restored = time.monotonic()
            recovered = _first_success(srv.url, photo)
            recovery_s = time.monotonic() - restored
            assert recovered.json()["label"] == "brambling"
            support.wait_for_empty_queue(srv.url, timeout_s=30)

    _report("aws-stall.json", {"classify_503_s": classify_s, "healthz_503_s": healthz_s,
                               "recovery_s": recovery_s})
    # botocore's defaults (60 s reads, retried) kept such a request for minutes.
    assert max(classify_s, healthz_s) < 3


def _report(name: str, timings: dict[str, float]) -> None:
    report = {key: round(value, 2) for key, value in timings.items()}
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / name).write_text(json.dumps(report, indent=2))
    print(name, json.dumps(report))


def _wait_until_queued(moto: Endpoint, stack: StackNames, count: int,
                       timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while sum(aws_support.request_queue_depth(moto, stack)) < count:
        assert time.monotonic() < deadline, "requests never reached the queue"
        time.sleep(0.05)


def _first_success(url: str, photo: Path, timeout_s: float = 60.0) -> httpx.Response:
    """Retry as a client would (503s meanwhile) until a request is answered."""
    deadline = time.monotonic() + timeout_s
    while True:
        resp = aws_support.post_photo(url, photo)
        if resp.status_code == 200:
            return resp
        assert resp.status_code == 503 and resp.json()["error"] == "backend_unavailable", resp.text
        assert time.monotonic() < deadline, f"not recovered after {timeout_s} s: {resp.text}"
        time.sleep(0.2)


def _poll_job(url: str, poll: str, timeout_s: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout_s
    while True:
        resp = httpx.get(f"{url}{poll}", timeout=30)
        assert resp.status_code == 200, resp.text
        body: dict[str, Any] = resp.json()
        if body["status"] != "queued":
            assert body["status"] == "done", body
            return body
        assert time.monotonic() < deadline, f"job still queued after {timeout_s} s"
        time.sleep(0.2)


REQUESTS = 24


def test_a_worker_killed_mid_batch_on_sqs_costs_no_request(
    moto: Endpoint, stack: StackNames, tmp_path: Path, dev_photos: list[DevPhoto],
    bare_top1: dict[str, int],
) -> None:
    uploads = [(p.path.name, p.path.read_bytes())
               for p in (dev_photos * (REQUESTS // len(dev_photos) + 1))[:REQUESTS]]
    env = {"IMGREC_VISIBILITY_TIMEOUT_S": str(VISIBILITY_S), "IMGREC_SYNC_TIMEOUT_S": "90",
           "IMGREC_BATCH_SIZE": "4"}
    with (
        run_server(tmp_path / "state", *SERVE, env=env) as srv,
        aws_support.local_workers(STACK, 2, tmp_path, env) as workers,
    ):
        aws_support.wait_for_workers(moto, stack, workers)
        results: list[httpx.Response | Exception] = []
        load = threading.Thread(target=lambda: results.extend(
            support.classify_all(srv.url, uploads, concurrency=REQUESTS)))
        load.start()
        victim, held = _kill_a_busy_worker(moto, stack, workers)
        most_receives = 0
        deadline = time.monotonic() + 120
        while load.is_alive() and time.monotonic() < deadline:
            most_receives = max(most_receives, aws_support.most_receives(stack))
            time.sleep(0.02)
        load.join(timeout=5)
        assert not load.is_alive(), "load did not finish"
        support.wait_for_empty_queue(srv.url, timeout_s=30)
        survivors = [w for w, p in workers.items() if w != victim and p.poll() is None]
        dead_letters = moto.client("sqs").get_queue_attributes(
            QueueUrl=moto.client("sqs").get_queue_url(
                QueueName=stack.dead_letter_queue)["QueueUrl"],
            AttributeNames=["ApproximateNumberOfMessages"])["Attributes"]
        victim_code = workers[victim].returncode

    assert held >= 1, "no request was in flight when the worker was killed"
    assert victim_code == -signal.SIGKILL
    assert len(survivors) == 1
    # A redelivered message has a receive count of 2 only until a survivor deletes it: the
    # sampling above can miss it, the survivor's log does not.
    redelivered = most_receives >= 2 or any(
        "is back (received" in (tmp_path / f"{w}.log").read_text(errors="replace")
        for w in survivors)
    assert redelivered, "no request was redelivered"
    assert len(uploads) == REQUESTS
    support.assert_each_answered_once(results, uploads, bare_top1)
    assert dead_letters["ApproximateNumberOfMessages"] == "0"


def _kill_a_busy_worker(moto: Endpoint, stack: StackNames,
                        workers: dict[str, subprocess.Popen[bytes]]) -> tuple[str, int]:
    """SIGKILL a worker whose heartbeat says busy while requests are in flight.

    Returns its id and the number of requests in flight at that moment.
    """
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        _, in_flight = aws_support.request_queue_depth(moto, stack)
        if in_flight >= 2:
            beats = aws_support.heartbeats(moto, stack)
            busy = sorted(w for w in workers if beats.get(w, {}).get("state") == "busy")
            if busy:
                os.kill(workers[busy[0]].pid, signal.SIGKILL)
                workers[busy[0]].wait(timeout=10)
                return busy[0], in_flight
        time.sleep(0.01)
    raise AssertionError("no worker was ever busy with requests in flight")
