"""Ray Serve running imgrec's model, the peer of ``make bench PEERS=ray``. Runs in ``.venv-ray``.

    .venv-ray/bin/python bench/peers/ray_app.py --port 8123 --model mobilenet_v2

The deployment takes what imgrec takes, so the same client and the same prepared bodies drive
both: ``POST /`` with a multipart ``myfile`` upload answers ``<stem>:<label>`` in plain text,
``POST /api/v1/classify`` answers ``{"label": ..., "class_index": ...}``; an image that does not
decode is a 400. The work per image is imgrec's own (``Classifier.classify_images``: the same
decode, preprocessing and ONNX session with one thread), batched by ``@serve.batch(8, 5 ms)``
across ``max_ongoing_requests=64`` per replica, 2 replicas of 1 CPU each.

Prints ``READY <port> <Ray version>`` on stdout once the application answers; SIGTERM shuts
Serve and the local Ray cluster (GCS, raylet, workers: all children of this process) down.
"""

from __future__ import annotations

import argparse
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

import ray
from ray import serve
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

REPO = Path(__file__).resolve().parents[2]
MAX_BATCH_SIZE = 8
BATCH_WAIT_TIMEOUT_S = 0.005
MAX_ONGOING_REQUESTS = 64
REPLICAS = 2


@serve.deployment(num_replicas=REPLICAS, max_ongoing_requests=MAX_ONGOING_REQUESTS,
                  ray_actor_options={"num_cpus": 1})
class Classify:
    def __init__(self, model: str) -> None:
        from imgrec.model.classifier import load_classifier

        self.classifier = load_classifier(model, threads=1)

    @serve.batch(max_batch_size=MAX_BATCH_SIZE, batch_wait_timeout_s=BATCH_WAIT_TIMEOUT_S)
    async def classify(self, images: list[bytes]) -> list[Any]:
        return list(self.classifier.classify_images(images))

    async def __call__(self, request: Request) -> Response:
        from imgrec.errors import ImageError

        form = await request.form()
        upload = form.get("myfile")
        if upload is None or isinstance(upload, str):
            return PlainTextResponse("expected a multipart file field 'myfile'", status_code=400)
        data = await upload.read()
        result = await self.classify(data)
        if isinstance(result, ImageError):
            return PlainTextResponse(str(result), status_code=400)
        if request.url.path.rstrip("/").endswith("/api/v1/classify"):
            return JSONResponse({"label": result.label, "class_index": result.class_index})
        name = upload.filename or "upload"
        stem = name.rsplit(".", 1)[0] if "." in name else name
        return PlainTextResponse(f"{stem}:{result.label}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--model", default="mobilenet_v2")
    parser.add_argument("--cpus", type=int, default=REPLICAS)
    parser.add_argument("--temp-dir", help="Ray's session directory (short: socket paths)")
    args = parser.parse_args()

    def stop(_signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    # A short private directory: Ray's Unix socket paths must fit in 107 characters, and another
    # Ray on the machine must not be joined.
    temp_dir = args.temp_dir or tempfile.mkdtemp(prefix="rayb-", dir="/tmp")
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False,
             _temp_dir=temp_dir,
             runtime_env={"env_vars": {"PYTHONPATH": str(REPO / "src")}})
    try:
        serve.start(http_options={"host": "127.0.0.1", "port": args.port})
        serve.run(Classify.bind(args.model), name="imgrec-peer", route_prefix="/")
        print(f"READY {args.port} {ray.__version__}", flush=True)
        signal.pause()
    finally:
        serve.shutdown()
        ray.shutdown()
        if not args.temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO / "src"))
    raise SystemExit(main())
