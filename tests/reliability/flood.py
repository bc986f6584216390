"""A load client for one process: ``python -m tests.reliability.flood URL ROUTE CONCURRENCY``.

Reads ``[[name, path], ...]`` (the uploads) as JSON on stdin, posts them with at most
CONCURRENCY in flight, and prints one JSON object per request, in order: its status (or the
name of the transport error), latency, and what the checks need from the answer. At hundreds
of connections one client process spends more CPU than the service under test (httpx scans its
pool per request), so a load test runs several of these side by side.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx


def summary(resp: httpx.Response) -> dict[str, Any]:
    out: dict[str, Any] = {"status": resp.status_code,
                           "retry_after": resp.headers.get("retry-after")}
    try:
        body = resp.json()
    except ValueError:
        out["text"] = resp.text[:200]
        return out
    if isinstance(body, dict):
        for key in ("id", "class_index", "label", "error", "detail", "poll"):
            if key in body:
                out[key] = body[key]
    return out


async def flood(url: str, route: str, concurrency: int,
                uploads: list[tuple[str, bytes]]) -> list[dict[str, Any]]:
    # Idle connections go after 1 s, well before uvicorn's 5 s keep-alive timeout: reusing
    # one the server is closing at that moment is a race (a ReadError) of any HTTP/1.1 client.
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency,
                          keepalive_expiry=1.0)
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(base_url=url, timeout=120, limits=limits) as client:

        async def one(name: str, data: bytes) -> dict[str, Any]:
            async with gate:
                sent = time.monotonic()
                try:
                    resp = await client.post(route, files={"file": (name, data)})
                    out = summary(resp)
                except httpx.HTTPError as exc:
                    out = {"status": type(exc).__name__}
                out["name"] = name
                out["latency_s"] = round(time.monotonic() - sent, 4)
                return out

        return list(await asyncio.gather(*(one(n, d) for n, d in uploads)))


def main() -> None:
    url, route, concurrency = sys.argv[1], sys.argv[2], int(sys.argv[3])
    pairs = json.load(sys.stdin)
    cache: dict[str, bytes] = {}
    uploads = [(name, cache.setdefault(path, Path(path).read_bytes())) for name, path in pairs]
    for line in asyncio.run(flood(url, route, concurrency, uploads)):
        print(json.dumps(line))


if __name__ == "__main__":
    main()
