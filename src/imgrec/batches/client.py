"""``imgrec batch``'s client: submit a source to a running service, follow it, write the table.

The run keeps a state file next to the output (``<out>.state.json``): the batch id, the list
of names it is sending and which parts (``chunk_size`` names each, named ``c000000``...) the
service has stored. A run that was interrupted (Ctrl-C, a lost connection, a reboot) starts
again where it stopped: a part whose answer never came is resent under the same name, and the
service returns the stored one instead of queueing its images twice. Once the table is
written the state file is removed.

Worker-seconds per image come from the service's ``GET /api/v1/status`` (``cost``), read
when the batch starts and when it ends: the difference is what the fleet spent meanwhile, on
this batch and on anything else it served.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

from ..chunks import chunks
from ..errors import ImgrecError
from .sources import open_source

_STATE_VERSION = 1


class BatchClientError(ImgrecError):
    """The service refused or could not be reached; the message says what to do."""


@dataclass
class RunState:
    source: str
    batch_id: str
    names: list[str]
    chunk_size: int
    parts_done: list[int] = field(default_factory=list)
    cost_start: dict[str, Any] | None = None
    version: int = _STATE_VERSION

    def save(self, path: Path) -> None:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self)))
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> RunState | None:
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, json.JSONDecodeError) as exc:
            raise BatchClientError(f"state file {path} is unreadable ({exc}); remove it to "
                                   "start the batch again") from exc
        if data.get("version") != _STATE_VERSION:
            raise BatchClientError(f"state file {path} is from another imgrec version; "
                                   "remove it to start the batch again")
        return cls(**data)


@dataclass(frozen=True)
class Outcome:
    batch_id: str
    counts: dict[str, int]
    worker_seconds_per_image: float | None
    price_per_1000_images: float | None
    worker_kind: str | None
    resumed: bool


Report = Callable[[int, int, dict[str, int]], None]  # (uploaded, total, counts)


def state_path(out: Path) -> Path:
    return out.with_name(out.name + ".state.json")


def output_format(out: Path) -> str:
    return "jsonl" if out.suffix.lower() in (".jsonl", ".ndjson") else "csv"


class ServiceClient:
    """The few calls of the batch API, with errors turned into sentences."""

    def __init__(self, base_url: str, *, api_key: str | None = None,
                 timeout_s: float = 300.0) -> None:
        headers = {"X-API-Key": api_key} if api_key else {}
        self.base = base_url.rstrip("/")
        self.http = httpx.Client(base_url=self.base, headers=headers, timeout=timeout_s)

    def close(self) -> None:
        self.http.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            resp = self.http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise BatchClientError(f"cannot reach {self.base}{path}: {exc}; is `imgrec serve` "
                                   "running there? (the run resumes when started again)") from exc
        if resp.status_code >= 400:
            try:
                detail = resp.json().get("detail", resp.text)
            except ValueError:
                detail = resp.text
            raise BatchClientError(f"{method} {path}: HTTP {resp.status_code}: {detail}")
        return resp

    def create(self) -> str:
        return str(self._call("POST", "/api/v1/batches").json()["id"])

    def add_part(self, batch_id: str, part: str, files: list[tuple[str, bytes]]) -> None:
        self._call("POST", f"/api/v1/batches/{batch_id}/items", data={"part": part},
                   files=[("file", (name, data)) for name, data in files])

    def add_source(self, batch_id: str, source: str) -> None:
        self._call("POST", f"/api/v1/batches/{batch_id}/items",
                   data={"part": "s3", "source": source})

    def progress(self, batch_id: str) -> dict[str, Any]:
        return dict(self._call("GET", f"/api/v1/batches/{batch_id}").json())

    def cost(self) -> dict[str, Any] | None:
        try:
            resp = self.http.get("/api/v1/status")
        except httpx.HTTPError:
            return None
        if resp.status_code != 200:
            return None
        cost = resp.json().get("cost")
        return dict(cost) if isinstance(cost, dict) else None

    def download(self, batch_id: str, fmt: str, out: Path) -> None:
        tmp = out.with_name(out.name + ".part")
        try:
            with self.http.stream("GET", f"/api/v1/batches/{batch_id}",
                                  params={"format": fmt}) as resp:
                if resp.status_code != 200:
                    raise BatchClientError(f"results of {batch_id}: HTTP {resp.status_code}")
                with open(tmp, "wb") as fh:
                    for chunk in resp.iter_bytes():
                        fh.write(chunk)
        except httpx.HTTPError as exc:
            raise BatchClientError(f"downloading the results failed: {exc}") from exc
        os.replace(tmp, out)


def run_batch(client: ServiceClient, source: str, out: Path, *, report: Report,
              chunk_size: int = 50, poll_s: float = 0.5) -> Outcome:
    """Submit ``source`` (a folder, an archive or s3://bucket/prefix), wait, write ``out``."""
    state_file = state_path(out)
    state = RunState.load(state_file)
    resumed = state is not None
    if state is not None and state.source != source:
        raise BatchClientError(f"{state_file} belongs to a run of {state.source}, not {source}; "
                               "choose another --out or remove the state file")
    local = None if source.startswith("s3://") else open_source(Path(source))
    if state is None:
        names = [] if local is None else list(local.names)
        cost = client.cost()
        state = RunState(source, client.create(), names, chunk_size, cost_start=cost)
        state.save(state_file)
    else:
        try:
            client.progress(state.batch_id)
        except BatchClientError as exc:
            raise BatchClientError(f"cannot resume batch {state.batch_id} ({exc}); remove "
                                   f"{state_file} to start again") from exc
    counts: dict[str, int] = {}
    total = len(state.names)
    parts = chunks(state.names, state.chunk_size)
    if local is None and 0 not in state.parts_done:
        client.add_source(state.batch_id, source)
        state.parts_done.append(0)
        state.save(state_file)
    for n, part_names in enumerate(parts):
        if n in state.parts_done or local is None:
            continue
        client.add_part(state.batch_id, f"c{n:06d}", local.read(part_names))
        state.parts_done.append(n)
        state.save(state_file)
        uploaded = min(total, sum(len(parts[i]) for i in state.parts_done))
        counts = client.progress(state.batch_id)["counts"]
        report(uploaded, total, counts)
    while True:
        doc = client.progress(state.batch_id)
        counts, total = doc["counts"], int(doc["total"])
        report(total, total, counts)
        if doc["status"] == "done":
            break
        time.sleep(poll_s)
    client.download(state.batch_id, output_format(out), out)
    per_image, price, kind = _cost_delta(state.cost_start, client.cost())
    state_file.unlink(missing_ok=True)
    return Outcome(state.batch_id, counts, per_image, price, kind, resumed)


def _cost_delta(start: dict[str, Any] | None, end: dict[str, Any] | None
                ) -> tuple[float | None, float | None, str | None]:
    if not end or end.get("worker_seconds") is None:
        return None, None, None
    ws = float(end["worker_seconds"]) - float((start or {}).get("worker_seconds") or 0.0)
    images = int(end["images"]) - int((start or {}).get("images") or 0)
    if images <= 0:
        return None, None, end.get("worker_kind")
    per_image = ws / images
    hourly = end.get("price_per_hour")
    price = None if hourly is None else 1000 * per_image * float(hourly) / 3600
    return per_image, price, end.get("worker_kind")
