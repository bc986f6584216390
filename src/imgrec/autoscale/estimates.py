"""What the autoscaler remembers between runs: one worker's rate and boot time, per kind of worker.

A burst that arrives right after a restart is sized right from the first tick only if the policy
already knows how fast a worker serves and how long one takes to boot. ``Estimates`` keeps those
numbers keyed by model and instance type (``"mobilenet_v2"`` on ``"local"``, or on
``"c5.large"``), as a small JSON document the backend can keep in its store or state directory.
Pure: no I/O here; the controller reads and writes the document.

Example::

    known = Estimates().updated("mobilenet_v2", "local", rate_per_worker=240.0, boot_s=0.33)
    raw = known.to_json()
    Estimates.from_json(raw).get("mobilenet_v2", "local")  # Estimate(240.0, 0.33, 1)
    obs = known.get("mobilenet_v2", "local").fill(obs)    # measured values win, None filled
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from .policy import Observation

FORMAT_VERSION = 1
SMOOTHING = 0.3  # weight of a new measurement: a few runs settle it, one odd run does not


class EstimatesError(ValueError):
    """An estimates document that cannot be read; the message says what is wrong."""


@dataclass(frozen=True)
class Estimate:
    """One kind of worker: images/s it serves, seconds from launch to ready, runs it is from."""

    rate_per_worker: float | None = None
    boot_s: float | None = None
    samples: int = 0

    def fill(self, obs: Observation) -> Observation:
        """``obs`` with what it has not measured (yet) taken from this estimate."""
        return replace(
            obs,
            rate_per_worker=obs.rate_per_worker if obs.rate_per_worker is not None
            else self.rate_per_worker,
            boot_s=obs.boot_s if obs.boot_s is not None else self.boot_s,
        )

    def updated(self, rate_per_worker: float | None, boot_s: float | None) -> Estimate:
        """Folded in a new measurement (exponential smoothing; None leaves a value as it was)."""
        if rate_per_worker is not None and rate_per_worker <= 0:
            rate_per_worker = None  # a worker that served nothing says nothing about its rate
        if rate_per_worker is None and boot_s is None:
            return self
        return Estimate(_blend(self.rate_per_worker, rate_per_worker),
                        _blend(self.boot_s, boot_s), self.samples + 1)


def _blend(old: float | None, new: float | None) -> float | None:
    if new is None or new < 0:
        return old
    return new if old is None else round(old + SMOOTHING * (new - old), 6)


def _key(model: str, instance_type: str) -> str:
    return f"{model}@{instance_type}"


@dataclass(frozen=True)
class Estimates:
    """Estimates keyed by model and instance type; immutable, serialisable to JSON."""

    by_kind: tuple[tuple[str, Estimate], ...] = ()

    def get(self, model: str, instance_type: str) -> Estimate:
        """The estimate of that kind of worker (an empty one if never measured)."""
        return dict(self.by_kind).get(_key(model, instance_type), Estimate())

    def updated(
        self, model: str, instance_type: str, *, rate_per_worker: float | None = None,
        boot_s: float | None = None,
    ) -> Estimates:
        key = _key(model, instance_type)
        table = dict(self.by_kind)
        table[key] = table.get(key, Estimate()).updated(rate_per_worker, boot_s)
        return Estimates(tuple(sorted(table.items())))

    def to_json(self) -> str:
        kinds = {
            key: {"rate_per_worker": e.rate_per_worker, "boot_s": e.boot_s, "samples": e.samples}
            for key, e in self.by_kind
        }
        return json.dumps({"version": FORMAT_VERSION, "kinds": kinds}, sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | bytes) -> Estimates:
        try:
            doc = json.loads(raw)
            if doc.get("version") != FORMAT_VERSION:
                raise EstimatesError(f"estimates format version {doc.get('version')!r} is not "
                                     f"{FORMAT_VERSION}; delete the file to start afresh")
            kinds: dict[str, Any] = doc["kinds"]
            table = {key: Estimate(_number(v.get("rate_per_worker"), above_zero=True),
                                   _number(v.get("boot_s")), int(v.get("samples", 0)))
                     for key, v in kinds.items()}
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            if isinstance(exc, EstimatesError):
                raise
            raise EstimatesError(f"not an estimates document ({exc}); delete it to start "
                                 "afresh") from exc
        return cls(tuple(sorted(table.items())))


def _number(value: Any, *, above_zero: bool = False) -> float | None:
    if value is None:
        return None
    number = float(value)
    if number < 0 or (above_zero and number == 0) or number != number:
        raise ValueError(f"{value!r} is not a {'positive' if above_zero else 'non-negative'} "
                         "number")
    return number
