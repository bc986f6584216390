"""Shared by the reliability and security tests: odd images, queue checks, process facts."""

from __future__ import annotations

import io
import json
import sqlite3
import struct
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx
from PIL import Image

from imgrec import keys

# -- images made on the fly (never stored in the repo) -------------------------------------


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def blank_png(width: int, height: int, *, color_type: int = 6, rows: int | None = None) -> bytes:
    """A PNG of zeros written row by row, without ever holding the pixels in memory.

    ``color_type`` 6 is RGBA, 2 RGB, 0 grayscale (8 bits). With ``rows`` only that many rows of
    pixel data follow the header: a tiny file that claims huge dimensions (a decompression bomb).
    """
    channels = {0: 1, 2: 3, 6: 4}[color_type]
    header = struct.pack(">IIBBBBB", width, height, 8, color_type, 0, 0, 0)
    compressor = zlib.compressobj(9)
    row = b"\x00" * (1 + width * channels)
    parts = [compressor.compress(row) for _ in range(height if rows is None else rows)]
    idat = b"".join(parts) + compressor.flush()
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat)
            + _png_chunk(b"IEND", b""))


def converted(photo: bytes, mode: str, fmt: str, **save: object) -> bytes:
    """The photo re-encoded in another mode and format (e.g. RGBA PNG, CMYK JPEG)."""
    image = Image.open(io.BytesIO(photo)).convert("RGB")
    if mode == "I;16":
        gray = image.convert("L")
        image = Image.frombytes("I;16", gray.size, bytes(b for v in gray.tobytes() for b in (0, v)))
    elif mode == "RGBA":
        image = image.copy()
        image.putalpha(200)
    else:
        image = image.convert(mode)
    out = io.BytesIO()
    image.save(out, format=fmt, **save)
    return out.getvalue()


def animated_gif(photo: bytes) -> bytes:
    """A two-frame animated GIF whose first frame is the photo."""
    first = Image.open(io.BytesIO(photo)).convert("RGB")
    second = first.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    out = io.BytesIO()
    first.save(out, format="GIF", save_all=True, append_images=[second], duration=100, loop=0)
    return out.getvalue()


MINIMAL_PDF = (
    b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n"
    b"2 0 obj<</Type/Pages/Kids[]/Count 0>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n"
)

# -- the service seen from outside ---------------------------------------------------------


def health(url: str, **headers: str) -> dict[str, object]:
    resp = httpx.get(f"{url}/healthz", timeout=10, headers=headers)
    resp.raise_for_status()
    return resp.json()  # type: ignore[no-any-return]


def wait_for_empty_queue(url: str, timeout_s: float = 10.0) -> dict[str, object]:
    """Health once nothing is visible or in flight on the request queue (a reply can reach
    the client a moment before the worker deletes the request)."""
    deadline = time.monotonic() + timeout_s
    while True:
        state = health(url)
        if state["queue_visible"] == 0 and state["queue_in_flight"] == 0:
            return state
        if time.monotonic() > deadline:
            raise AssertionError(f"request queue not empty after {timeout_s} s: {state}")
        time.sleep(0.05)


def queue_counts(state_dir: Path) -> dict[str, int]:
    """Messages per queue in the embedded queue file, read directly (read-only)."""
    uri = f"file:{state_dir / 'queues.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=10) as conn:
        rows = conn.execute("SELECT queue, COUNT(*) FROM messages GROUP BY queue").fetchall()
    return {name: int(n) for name, n in rows}


def dead_letters(state_dir: Path) -> int:
    return queue_counts(state_dir).get(keys.DEAD_LETTER_QUEUE, 0)


def heartbeats(state_dir: Path) -> dict[str, dict[str, object]]:
    """Each worker's last heartbeat (worker id -> record), from the embedded store."""
    beats: dict[str, dict[str, object]] = {}
    for path in (state_dir / "objects" / keys.HEARTBEATS_PREFIX).glob("*.json"):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        beats[str(record["worker_id"])] = record
    return beats


def worker_pids(state_dir: Path) -> dict[str, int]:
    """Live worker processes by worker id (heartbeat pids whose process still exists)."""
    return {
        wid: int(rec["pid"])  # type: ignore[call-overload]
        for wid, rec in heartbeats(state_dir).items()
        if rec["state"] != "stopped" and Path(f"/proc/{rec['pid']}").exists()
    }


def wait_for_workers(state_dir: Path, count: int, timeout_s: float = 60.0) -> dict[str, int]:
    """Wait until ``count`` workers are alive and ready or busy; return their pids."""
    deadline = time.monotonic() + timeout_s
    while True:
        beats = heartbeats(state_dir)
        live = worker_pids(state_dir)
        ready = {w: p for w, p in live.items() if beats[w]["state"] in ("ready", "busy")}
        if len(ready) >= count:
            return ready
        if time.monotonic() > deadline:
            raise AssertionError(f"{count} worker(s) not ready after {timeout_s} s: {beats}")
        time.sleep(0.1)


def rss_kib(pid: int) -> int:
    """Resident set size of a process in KiB (from /proc), 0 if it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


# -- load --------------------------------------------------------------------------------


def classify_all(url: str, uploads: list[tuple[str, bytes]], *, concurrency: int,
                 route: str = "/api/v1/classify", timeout_s: float = 120.0,
                 headers: dict[str, str] | None = None) -> list[httpx.Response | Exception]:
    """POST every upload with at most ``concurrency`` in flight; a response or error each."""
    import asyncio

    async def run() -> list[httpx.Response | Exception]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits,
                                     headers=headers) as client:

            async def one(name: str, data: bytes) -> httpx.Response | Exception:
                async with gate:
                    try:
                        return await client.post(route, files={"file": (name, data)})
                    except httpx.HTTPError as exc:
                        return exc

            return list(await asyncio.gather(*(one(n, d) for n, d in uploads)))

    return asyncio.run(run())


@dataclass
class Timed:
    """One request's outcome and how long it took, from when its client sent it."""

    name: str
    outcome: httpx.Response | Exception
    sent_at: float
    latency_s: float

    @property
    def status(self) -> int | str:
        return self.outcome.status_code if isinstance(self.outcome, httpx.Response) \
            else type(self.outcome).__name__


def post_all_timed(url: str, uploads: list[tuple[str, bytes]], *, concurrency: int,
                   route: str = "/", field: str = "myfile",
                   timeout_s: float = 120.0) -> list[Timed]:
    """Like ``classify_all`` (the course API's field by default), timing each request."""
    import asyncio

    async def run() -> list[Timed]:
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(base_url=url, timeout=timeout_s, limits=limits) as client:

            async def one(name: str, data: bytes) -> Timed:
                async with gate:
                    sent = time.monotonic()
                    try:
                        got: httpx.Response | Exception = await client.post(
                            route, files={field: (name, data)})
                    except httpx.HTTPError as exc:
                        got = exc
                    return Timed(name, got, sent, time.monotonic() - sent)

            return list(await asyncio.gather(*(one(n, d) for n, d in uploads)))

    return asyncio.run(run())


def assert_each_answered_once(
    results: Sequence[object], uploads: list[tuple[str, bytes]], bare_top1: dict[str, int]
) -> None:
    """Every request got one 200 with its own id and the bare model's class for its photo."""
    statuses = [r.status_code if isinstance(r, httpx.Response) else repr(r) for r in results]
    assert statuses == [200] * len(uploads)
    answers = [r.json() for r in results if isinstance(r, httpx.Response)]
    assert len({a["id"] for a in answers}) == len(uploads)
    for (name, _), answer in zip(uploads, answers, strict=True):
        assert answer["class_index"] == bare_top1[name], name


def in_flight_request_ids(state_dir: Path) -> set[str]:
    """Ids of requests a worker holds right now (received, not deleted, still invisible)."""
    uri = f"file:{state_dir / 'queues.db'}?mode=ro"
    with sqlite3.connect(uri, uri=True, timeout=10) as conn:
        rows = conn.execute(
            "SELECT body FROM messages WHERE queue = ? AND visible_at > ? AND receive_count > 0",
            (keys.REQUEST_QUEUE, time.time()),
        ).fetchall()
    return {str(json.loads(body)["id"]) for (body,) in rows}
