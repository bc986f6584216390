"""fp32 vs int8 MobileNetV2 in one run: speed per image and agreement on the dev photos.

Both models are opened the way the service opens them (``load_classifier``, one ONNX thread by
default) and timed in alternating rounds, so a busy neighbour slows both alike; the table shows
each timing's best round (interference only ever adds time), the JSON every round. Timings:

- network: ``classify_batch`` on already preprocessed photos (ONNX run + softmax top-5);
- end to end: ``load_input`` (decode + preprocess) of the JPEG bytes, then ``classify_batch``.

    .venv/bin/python bench/int8.py [--rounds 7] [--batches 1,8] [--threads 1]

Prints a table and writes ``bench/results/int8.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from imgrec.model.classifier import Classification, Classifier, load_classifier
from imgrec.model.preprocess import load_input

HERE = Path(__file__).resolve().parent
MODELS = ("mobilenet_v2", "mobilenet_v2_int8")


def say(text: str) -> None:
    print(f"[int8] {text}", file=sys.stderr, flush=True)


def per_image_ms(step: Callable[[int, int], object], count: int, batch: int) -> float:
    start = time.perf_counter()
    for first in range(0, count, batch):
        step(first, min(first + batch, count))
    return (time.perf_counter() - start) / count * 1000


def timings(classifiers: dict[str, Classifier], data: list[bytes], batches: list[int],
            rounds: int) -> dict[str, dict[str, list[float]]]:
    """{model: {"network b8": [ms per image per round], "end to end b8": [...]}}."""
    pre = {name: np.stack([load_input(d, c.spec) for d in data])
           for name, c in classifiers.items()}
    out: dict[str, dict[str, list[float]]] = {name: {} for name in classifiers}
    for name, classifier in classifiers.items():  # warm-up: buffers, first-run allocations
        classifier.classify_batch(pre[name][: max(batches)])
    for round_no in range(rounds):
        for batch in batches:
            for name, c in classifiers.items():
                x = pre[name]

                def network(a: int, b: int, c: Classifier = c, x: Any = x) -> object:
                    return c.classify_batch(x[a:b])

                def e2e(a: int, b: int, c: Classifier = c) -> object:
                    return c.classify_batch(np.stack([load_input(d, c.spec) for d in data[a:b]]))

                net = per_image_ms(network, len(data), batch)
                full = per_image_ms(e2e, len(data), batch)
                out[name].setdefault(f"network b{batch}", []).append(net)
                out[name].setdefault(f"end to end b{batch}", []).append(full)
        say(f"round {round_no + 1}/{rounds} done")
    return out


def agreement(results: dict[str, list[Classification]], truth: list[int]) -> dict[str, Any]:
    fp32, int8 = (results[name] for name in MODELS)
    top5 = [({p.class_index for p in a.top5}, {p.class_index for p in b.top5})
            for a, b in zip(fp32, int8, strict=True)]
    return {
        "top1": {name: sum(r.class_index == t for r, t in zip(rs, truth, strict=True))
                 for name, rs in results.items()},
        "top5": {name: sum(t in {p.class_index for p in r.top5}
                           for r, t in zip(rs, truth, strict=True))
                 for name, rs in results.items()},
        "same_top1": sum(a.class_index == b.class_index for a, b in zip(fp32, int8, strict=True)),
        "same_top5_set": sum(a == b for a, b in top5),
        "top5_overlap": sum(len(a & b) for a, b in top5) / (5 * len(top5)),
        "photos": len(truth),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    default_images = HERE.parent.parent / "shared" / "images" / "dev"
    parser.add_argument("--images", type=Path,
                        default=Path(os.environ.get("IMGREC_DEV_IMAGES", default_images)))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--threads", type=int, default=1, help="ONNX intra-op threads")
    parser.add_argument("--out", type=Path, default=HERE / "results" / "int8.json")
    args = parser.parse_args()
    labels = args.images / "labels.csv"
    if not labels.is_file():
        raise SystemExit(f"no dev photos at {args.images} (give --images or IMGREC_DEV_IMAGES)")
    with open(labels, newline="") as fh:
        rows = list(csv.DictReader(fh))
    data = [(args.images / r["file"]).read_bytes() for r in rows]
    truth = [int(r["class_index"]) for r in rows]
    batches = [int(b) for b in args.batches.split(",")]

    classifiers = {name: load_classifier(name, threads=args.threads) for name in MODELS}
    results = {}
    for name, c in classifiers.items():
        outcomes = c.classify_images(data)
        results[name] = [o for o in outcomes if isinstance(o, Classification)]
        if len(results[name]) != len(data):
            raise SystemExit(f"{name}: some dev photos failed to classify")
    accuracy = agreement(results, truth)
    say(f"timing {len(data)} photos x {args.rounds} rounds, batches {batches}, "
        f"{args.threads} thread(s)")
    raw = timings(classifiers, data, batches, args.rounds)
    best = {name: {k: min(v) for k, v in per.items()} for name, per in raw.items()}
    medians = {name: {k: statistics.median(v) for k, v in per.items()} for name, per in raw.items()}
    document = {
        "machine": {"cpu": platform.processor() or platform.machine(), "cores": os.cpu_count(),
                    "onnxruntime": ort.__version__, "threads": args.threads},
        "accuracy": accuracy, "ms_per_image_best": best, "ms_per_image_median": medians,
        "ms_per_image_rounds": raw,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(document, indent=1))
    print(render(best, accuracy, args.threads))
    return 0


def render(best: dict[str, dict[str, float]], acc: dict[str, Any], threads: int) -> str:
    fp32, int8 = (best[name] for name in MODELS)
    lines = [f"| {threads} ONNX thread(s), best of rounds | fp32 ms/img | fp32 img/s | "
             "int8 ms/img | int8 img/s | int8 speed-up |", "|---|---|---|---|---|---|"]
    for key in fp32:
        lines.append(f"| {key} | {fp32[key]:.2f} | {1000 / fp32[key]:.0f} | {int8[key]:.2f} | "
                     f"{1000 / int8[key]:.0f} | {fp32[key] / int8[key]:.2f}x |")
    n = acc["photos"]
    lines += [
        "",
        f"top-1 on {n} dev photos: fp32 {acc['top1'][MODELS[0]]}, int8 {acc['top1'][MODELS[1]]}; "
        f"top-5: fp32 {acc['top5'][MODELS[0]]}, int8 {acc['top5'][MODELS[1]]}",
        f"int8 vs fp32: same top-1 on {acc['same_top1']}/{n}, same top-5 set on "
        f"{acc['same_top5_set']}/{n}, top-5 overlap {acc['top5_overlap']:.1%}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    raise SystemExit(main())
