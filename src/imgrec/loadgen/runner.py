"""The asynchronous load loop: closed loop (``concurrency`` clients) or open loop (``rate``).

Every request is sent once. A timeout, a refused connection or an HTTP error status is counted
by kind and the run goes on; nothing is retried, so the numbers are what a client would see.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import httpx

from .answers import AnswerError, parse_json, parse_plain
from .expected import Answer, CompareBy, Expected
from .images import ImageFile
from .stats import OK, RequestRecord, StatusSample
from .status import CLASSIFY_PATH, STATUS_PATH, parse_status, service_base

log = logging.getLogger(__name__)

Api = Literal["plain", "json"]


@dataclass(frozen=True)
class LoadPlan:
    """What to send. Stops after ``requests`` requests or ``duration_s`` seconds, first wins.

    ``rate_rps`` switches to open loop: requests start on a fixed schedule whether or not earlier
    ones have been answered; otherwise ``concurrency`` clients each send the next request as
    soon as their previous one is answered.
    """

    url: str
    images: list[ImageFile]
    requests: int | None = None
    duration_s: float | None = None
    concurrency: int = 1
    rate_rps: float | None = None
    field: str = "myfile"
    api: Api = "plain"
    expected: Expected | None = None
    timeout_s: float = 60.0
    status_interval_s: float | None = 0.5

    def __post_init__(self) -> None:
        if self.requests is None and self.duration_s is None:
            raise ValueError("give a number of requests or a duration")
        if not self.images:
            raise ValueError("no images to send")

    @property
    def effective_api(self) -> Api:
        """The JSON API when asked, or when answers are checked by class index."""
        if self.expected is not None and self.expected.compare_by is CompareBy.CLASS_INDEX:
            return "json"
        return self.api

    @property
    def post_url(self) -> str:
        if self.effective_api == "json":
            return service_base(self.url) + CLASSIFY_PATH
        return self.url


@dataclass
class LoadResult:
    records: list[RequestRecord]
    samples: list[StatusSample]
    elapsed_s: float
    status_available: bool | None = None
    started_at: float = field(default=0.0)


OnDone = Callable[[RequestRecord], None]


class _Run:
    def __init__(self, plan: LoadPlan, client: httpx.AsyncClient, on_done: OnDone | None) -> None:
        self.plan = plan
        self.client = client
        self.on_done = on_done
        self.records: list[RequestRecord] = []
        self.samples: list[StatusSample] = []
        self.status_available: bool | None = None
        self.start = time.perf_counter()
        self.post_url = plan.post_url
        self.api = plan.effective_api

    def out_of_time(self) -> bool:
        d = self.plan.duration_s
        return d is not None and time.perf_counter() - self.start >= d

    async def one(self, index: int) -> None:
        image = self.plan.images[index % len(self.plan.images)]
        files = {self.plan.field: (image.name, image.data, image.content_type)}
        started = time.perf_counter()
        answer: Answer | None = None
        try:
            response = await self.client.post(self.post_url, files=files)
            if response.status_code != 200:
                outcome = f"http_{response.status_code}"
            else:
                answer = self._answer(response, image.name)
                outcome = OK
        except httpx.TimeoutException:
            outcome = "timeout"
        except httpx.TransportError as exc:
            log.debug("request %d: %s", index, exc)
            outcome = "connection"
        except AnswerError as exc:
            log.debug("request %d: %s", index, exc)
            outcome = "bad_body"
        latency = time.perf_counter() - started
        correct = None
        if answer is not None and self.plan.expected is not None:
            correct = self.plan.expected.check(image.name, answer)
        record = RequestRecord(
            index=index, file=image.name, started_s=started - self.start, latency_s=latency,
            outcome=outcome, label=answer.label if answer else None,
            class_index=answer.class_index if answer else None, correct=correct,
        )
        self.records.append(record)
        if self.on_done is not None:
            self.on_done(record)

    def _answer(self, response: httpx.Response, name: str) -> Answer:
        if self.api == "json":
            return parse_json(response.content)
        stem = name.rsplit(".", 1)[0] if "." in name else name
        return parse_plain(response.text, stem)

    async def closed_loop(self) -> None:
        counter = itertools.count()
        limit = self.plan.requests

        async def client_loop() -> None:
            while True:
                index = next(counter)
                if (limit is not None and index >= limit) or self.out_of_time():
                    return
                await self.one(index)

        await asyncio.gather(*(client_loop() for _ in range(self.plan.concurrency)))

    async def open_loop(self, rate_rps: float) -> None:
        tasks: set[asyncio.Task[None]] = set()
        limit = self.plan.requests
        for index in itertools.count():
            if limit is not None and index >= limit:
                break
            due = self.start + index / rate_rps
            if self.plan.duration_s is not None and due - self.start >= self.plan.duration_s:
                break
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            task = asyncio.create_task(self.one(index))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)

    async def poll_status(self, interval_s: float) -> None:
        url = service_base(self.plan.url) + STATUS_PATH
        while True:
            try:
                response = await self.client.get(url, timeout=5.0)
            except httpx.HTTPError as exc:
                log.debug("status poll failed: %s", exc)
            else:
                if response.status_code == 404:
                    self.status_available = False
                    return
                if response.status_code == 200:
                    sample = parse_status(response.json(), time.perf_counter() - self.start)
                    if sample is not None:
                        self.status_available = True
                        self.samples.append(sample)
            await asyncio.sleep(interval_s)


async def run_load(plan: LoadPlan, on_done: OnDone | None = None) -> LoadResult:
    """Send the plan's requests; return every request's record and the status samples."""
    connections = None if plan.rate_rps else plan.concurrency + 2
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    async with httpx.AsyncClient(timeout=plan.timeout_s, limits=limits) as client:
        run = _Run(plan, client, on_done)
        started_at = time.time()
        poller = None
        if plan.status_interval_s:
            poller = asyncio.create_task(run.poll_status(plan.status_interval_s))
        try:
            if plan.rate_rps:
                await run.open_loop(plan.rate_rps)
            else:
                await run.closed_loop()
        finally:
            elapsed = time.perf_counter() - run.start
            if poller is not None:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)
    run.records.sort(key=lambda r: r.index)
    return LoadResult(run.records, run.samples, elapsed, run.status_available, started_at)
