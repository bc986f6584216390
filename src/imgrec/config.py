"""Typed settings: ``IMGREC_*`` environment variables, CLI flags, validated once at start-up.

Every field says what it is and carries its unit in its name. CLI flags override environment
variables, which override the defaults below.

Example::

    IMGREC_MAX_WORKERS=4 IMGREC_BATCH_SIZE=8 imgrec serve --port 8080
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError


def cpu_count() -> int:
    """Cores this process may use (respects CPU affinity, e.g. in containers)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not Linux
        return max(1, os.cpu_count() or 1)


# Defaults that differ on AWS, where a worker is an instance: it boots in a minute or two and
# EC2 bills at least 60 s per launch. Draining an idle worker only pays when it would stay idle
# longer than a new boot costs (the ski-rental rule: wait about one boot time, ~2 min); a
# synchronous request from zero workers waits for a boot, so it may wait 5 min; the cap is the
# original design's 20 instead of this machine's cores. min_workers stays 0: idle costs nothing.
AWS_DEFAULTS: dict[str, float | int] = {
    "max_workers": 20,
    "idle_before_drain_s": 120.0,
    "sync_timeout_s": 300.0,
    "poll_wait_s": 1.0,  # SQS waits whole seconds; shorter would be a busy loop of receives
}


class Settings(BaseSettings):
    """All of imgrec's settings. Each can be set as ``IMGREC_<NAME>`` (e.g. ``IMGREC_PORT``)."""

    model_config = SettingsConfigDict(env_prefix="IMGREC_", extra="ignore")

    backend: Literal["embedded", "aws"] = Field(
        "embedded", description="Where queues, objects and workers live: this machine, or AWS."
    )
    state_dir: Path = Field(
        Path(".imgrec"), description="Embedded backend: directory for objects and the queue file."
    )
    host: str = Field("127.0.0.1", description="Address the web tier binds to.")
    port: int = Field(3000, ge=0, le=65535, description="TCP port of the web tier.")
    model: str = Field(
        "mobilenet_v2",
        description="Model: mobilenet_v2, mobilenet_v2_int8, efficientnet_lite0, or a path "
        "to an ImageNet .onnx file.",
    )

    workers: int | None = Field(
        None, ge=0, description="Pin the number of local workers (disables autoscaling)."
    )
    min_workers: int = Field(0, ge=0, description="Autoscaler: fewest workers, also when idle.")
    max_workers: int = Field(
        default_factory=cpu_count, ge=1, description="Autoscaler: most workers (the cap).",
        json_schema_extra={"default_text": "cores (aws: 20)"},
    )
    autoscale_tick_s: float = Field(
        0.5, gt=0, le=60, description="Autoscaler: seconds between observe-decide-act ticks."
    )
    target_backlog_per_worker: float = Field(
        10.0, gt=0, description="Autoscaler: queued + in-flight requests one worker should have."
    )
    scale_out_delay_s: float = Field(
        0.0, ge=0, description="Autoscaler: seconds a shortage must last before launching."
    )
    scale_in_delay_s: float = Field(
        0.0, ge=0, description="Autoscaler: seconds a surplus must last before draining."
    )
    idle_before_drain_s: float = Field(
        1.0, ge=0, description="Autoscaler: seconds a worker must be idle before it is drained.",
        json_schema_extra={"default_text": "1.0 (aws: 120)"},
    )
    target_latency_s: float | None = Field(
        None, gt=0, description="Autoscaler: clear a backlog within this many seconds, boot "
        "time included; lower launches more workers sooner, higher costs less.",
        json_schema_extra={"default_text": "1.5 x the measured boot time"},
    )
    boot_deadline_s: float | None = Field(
        None, gt=0, description="Autoscaler: a worker not ready this long after launch is "
        "terminated and replaced.",
        json_schema_extra={"default_text": "3 x measured boot, at least 60 (900 until measured)"},
    )
    worker_silent_after_s: float = Field(
        120.0, gt=0, description="Autoscaler: a ready or busy worker whose last heartbeat is "
        "older than this is terminated and replaced.",
    )
    worker_threads: int | None = Field(
        None, ge=1, description="ONNX Runtime threads per worker.",
        json_schema_extra={"default_text": "cores / max workers", "flag_aliases": ["--threads"]},
    )
    worker_start: Literal["fork", "spawn"] = Field(
        "fork",
        description="Embedded backend: how a local worker starts. fork: from a fork server "
        "that imported the worker's modules once (ready in tens of ms; Linux); spawn: a new "
        "interpreter per worker (also where fork is not available).",
    )

    batch_size: int = Field(
        8, ge=1, le=256, description="Most requests a worker classifies at once."
    )
    bulk_batch_size: int = Field(
        4, ge=1, le=256,
        description="Most batch items (the bulk lane) a worker takes at once; small, so an "
        "interactive request waits for at most one small bulk batch.",
    )
    bulk_nice: int = Field(
        10, ge=0, le=19,
        description="A worker serves batch items in a thread this much nicer (lower CPU "
        "priority) than its interactive one; 0: one loop for both lanes, interactive first.",
    )
    max_batch_items: int = Field(
        10_000, ge=1, description="Most items one batch (POST /api/v1/batches) may hold."
    )
    max_batch_upload_bytes: int = Field(
        512 * 1024 * 1024, ge=1024,
        description="Largest body of one batch upload (files or an archive), in bytes.",
    )
    run_batch_size: int = Field(
        1, ge=1, le=256,
        description="Most images per ONNX Runtime run: a worker's batch is run in slices this "
        "big. A session keeps the memory of its largest run (MobileNetV2: about 11 MB per "
        "image), and with one thread per worker a run of 1 costs no more CPU per image.",
    )
    batch_wait_ms: float = Field(
        4.0, ge=0, le=1000, description="How long a worker waits to fill a batch once it has one."
    )
    poll_wait_s: float = Field(
        0.25, gt=0, le=20, description="Long-poll wait of an idle worker's receive; a "
        "drained idle worker exits when it returns.",
        json_schema_extra={"default_text": "0.25 (aws: 1)"},
    )
    visibility_timeout_s: float = Field(
        6.0, gt=0,
        description="Seconds a received request stays hidden; a live worker keeps extending "
        "it, so this is how soon a dead worker's requests go to another one.",
    )
    max_processing_s: float = Field(
        300.0, gt=0,
        description="A worker stops extending a batch it has held this long, so the requests "
        "of a hung worker go to another one.",
    )
    max_receives: int = Field(
        5, ge=1, description="Deliveries before a request goes to the dead-letter queue."
    )
    heartbeat_s: float = Field(2.0, gt=0, description="Seconds between worker heartbeats.")

    sync_timeout_s: float = Field(
        30.0, gt=0, description="A synchronous request waits this long, then gets 504 + job id.",
        json_schema_extra={"default_text": "30.0 (aws: 300)"},
    )
    max_upload_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, description="Largest accepted upload, in bytes (413 above)."
    )
    max_image_pixels: int = Field(
        40_000_000, ge=1, description="Largest accepted image, width x height (bomb guard)."
    )
    max_concurrent_per_client: int = Field(
        256, ge=1, description="Requests one client address may have in progress (429 above)."
    )
    max_backlog: int = Field(
        5000, ge=1,
        description="Requests queued or in progress past which new ones get 503 with a "
        "Retry-After from the measured throughput.",
    )
    backend_timeout_s: float = Field(
        2.5, gt=0, le=60,
        description="Longest a web request waits on the queue or store before it answers 503.",
    )
    retention_days: float = Field(
        3.0, gt=0,
        description="Inputs and results are deleted this long after upload (embedded: the "
        "janitor; AWS: S3 lifecycle rules, whole days rounded up); such a job answers 410.",
    )
    janitor_interval_s: float = Field(
        60.0, gt=0, description="Embedded backend: seconds between the janitor's sweeps."
    )
    web_heartbeat_s: float = Field(
        5.0, gt=0, description="Seconds between a web tier's heartbeats (its reply queue's life)."
    )
    reply_queue_grace_s: float = Field(
        60.0, gt=0,
        description="A reply queue whose web tier has not beaten for this long is deleted.",
    )
    durability: Literal["power-loss", "crash"] = Field(
        "power-loss",
        description="Embedded backend: what an accepted request survives. power-loss: uploads, "
        "results and queue commits are fsynced before the answer; crash: a process crash "
        "only (no fsync, faster).",
    )
    api_key: SecretStr | None = Field(
        None, description="If set, every API call and the page need this key."
    )
    webhook_secret: SecretStr | None = Field(
        None, description="Key of the HMAC-SHA256 signature on webhook deliveries "
        "(X-Imgrec-Signature); jobs may name a callback_url only when it is set."
    )
    webhook_allow_private: bool = Field(
        False, description="Allow callback URLs on loopback, private and link-local addresses "
        "(refused by default: the service must not be a way into its own network)."
    )
    webhook_max_attempts: int = Field(
        6, ge=1, le=20, description="Webhook deliveries tried before a callback is 'failed'."
    )
    webhook_backoff_s: float = Field(
        2.0, gt=0, le=600, description="Seconds before the first webhook retry; each later "
        "retry waits twice as long as the one before (at most 300 s)."
    )
    webhook_timeout_s: float = Field(
        10.0, gt=0, le=120, description="Seconds a webhook receiver has to answer one delivery."
    )

    stack: str | None = Field(None, description="AWS backend: the stack name given to aws up.")
    region: str | None = Field(None, description="AWS backend: region (default: AWS's chain).")

    @model_validator(mode="after")
    def _check_bounds(self) -> Settings:
        if self.backend == "aws":
            for name, value in AWS_DEFAULTS.items():
                if name not in self.model_fields_set:
                    setattr(self, name, value)
        if self.min_workers > self.max_workers:
            raise ValueError(
                f"min_workers ({self.min_workers}) is above max_workers ({self.max_workers})"
            )
        if self.backend == "aws" and not self.stack:
            raise ValueError("the aws backend needs a stack name (--stack or IMGREC_STACK)")
        return self

    @property
    def objects_dir(self) -> Path:
        return self.state_dir / "objects"

    @property
    def durable_writes(self) -> bool:
        """Whether the embedded backend fsyncs (``durability`` is ``power-loss``)."""
        return self.durability == "power-loss"

    @property
    def queue_db(self) -> Path:
        return self.state_dir / "queues.db"

    def threads_per_worker(self) -> int:
        """ONNX threads per worker so that all workers together use the cores once."""
        if self.worker_threads is not None:
            return self.worker_threads
        workers = self.workers if self.workers else self.max_workers
        return max(1, cpu_count() // max(1, workers))


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment with CLI overrides (``None`` means: not given)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(**given)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
