"""The bare model's ceiling: decode + preprocess + inference of in-memory photos, no service.

Several processes (or one with several ONNX threads) each take a share of the photos; the clock
starts when every process has loaded its model, so start-up is not counted.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


@dataclass(frozen=True)
class BareResult:
    processes: int
    threads: int
    batch_size: int
    images: int
    wall_s: float
    cpu_s: float

    @property
    def images_per_s(self) -> float:
        return self.images / self.wall_s

    @property
    def cpu_ms_per_image(self) -> float:
        return self.cpu_s / self.images * 1000


def _child(paths: list[str], threads: int, batch: int, model: str, barrier: Any, out: Any) -> None:
    from imgrec.model.classifier import load_classifier
    from imgrec.model.preprocess import load_input

    classifier = load_classifier(model, threads=threads)
    data = [Path(p).read_bytes() for p in paths]
    classifier.classify_images(data[:batch])  # warm up the session's buffers
    barrier.wait()
    cpu0, t0 = time.process_time(), time.perf_counter()
    for start in range(0, len(data), batch):
        chunk = np.stack([load_input(d, classifier.spec) for d in data[start : start + batch]])
        classifier.classify_batch(chunk)
    out.put((t0, time.perf_counter(), time.process_time() - cpu0))


def run_bare(paths: list[Path], *, processes: int, threads: int, batch_size: int,
             rounds: int = 3, model: str = "mobilenet_v2") -> BareResult:
    """Classify ``rounds`` passes over ``paths`` split across ``processes`` processes."""
    ctx = mp.get_context("spawn")
    work = [str(p) for p in paths] * rounds
    shares = [work[i::processes] for i in range(processes)]
    barrier, out = ctx.Barrier(processes), ctx.Queue()
    procs = [ctx.Process(target=_child, args=(share, threads, batch_size, model, barrier, out))
             for share in shares]
    for proc in procs:
        proc.start()
    results = [out.get(timeout=600) for _ in procs]
    for proc in procs:
        proc.join()
    start = min(r[0] for r in results)
    end = max(r[1] for r in results)
    return BareResult(processes, threads, batch_size, len(work), end - start,
                      sum(r[2] for r in results))


def bare_correct(photos: list[tuple[Path, int]], model: str = "mobilenet_v2") -> int:
    """How many photos the bare model gets right (top-1 class index)."""
    from imgrec.model.classifier import load_classifier

    classifier = load_classifier(model, threads=os.cpu_count() or 1)
    outcomes = classifier.classify_images([p.read_bytes() for p, _ in photos])
    return sum(1 for o, (_, want) in zip(outcomes, photos, strict=True)
               if not isinstance(o, Exception) and o.class_index == want)
