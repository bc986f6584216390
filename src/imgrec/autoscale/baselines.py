"""Other scaling policies, for the simulator to compare ours against (same signature as ours).

- ``ratio``: imgrec's previous policy, which ours falls back to while cold: one worker per
  ``target_backlog_per_worker`` (10) queued or in-flight messages, drain after 1 s idle.
- ``seed``: the course's original controller: one worker per visible message up to the cap;
  every worker stopped as soon as no message is visible.
- ``target-tracking``: an EC2 Auto Scaling target-tracking policy on "backlog per instance"
  (visible messages / instances, target ``target_backlog_per_worker``), evaluated on the
  1-minute CloudWatch metric; scale-in only after a 300 s cooldown since the last scaling.
- ``keda``: KEDA's ``aws-sqs-queue`` scaler with its defaults: ``queueLength`` 5 (visible and
  in-flight messages per replica), polled every 30 s, the HPA's 300 s scale-down
  stabilisation window and KEDA's 300 s cooldown before scaling to zero; scale-up is limited by
  the HPA's default rate (double, or +4, per evaluation).

They pick which workers to stop as those systems do not know about idleness: the newest first,
whatever they are doing (the simulator lets a stopped worker finish the image in hand).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ..ports import WorkerInfo
from .policy import (
    CAPACITY_STATES,
    Decision,
    NamedPolicy,
    Observation,
    PolicySettings,
    PolicyState,
    capacity,
    clamp,
    decide_by_ratio,
)

TARGET_TRACKING_PERIOD_S = 60.0
TARGET_TRACKING_COOLDOWN_S = 300.0
KEDA_POLLING_S = 30.0
KEDA_QUEUE_LENGTH = 5
KEDA_STABILISATION_S = 300.0
KEDA_COOLDOWN_S = 300.0
SEED_INTERVAL_S = 1.0


def newest_first(workers: Sequence[WorkerInfo], count: int) -> tuple[str, ...]:
    """The ``count`` most recently launched workers that still count as capacity."""
    live = [w for w in workers if w.state in CAPACITY_STATES]
    live.sort(key=lambda w: (w.launched_at, w.worker_id), reverse=True)
    return tuple(w.worker_id for w in live[: max(0, count)])


def resize(obs: Observation, target: int, reason: str) -> Decision:
    have = capacity(obs.workers)
    if target > have:
        return Decision(launch=target - have, reason=f"{reason}: launch {target - have}")
    if target < have:
        return Decision(drain=newest_first(obs.workers, have - target),
                        reason=f"{reason}: stop {have - target}")
    return Decision(reason=reason)


@dataclass(frozen=True)
class NoState:
    pass


def seed_decide(
    obs: Observation, settings: PolicySettings, state: NoState, now: float
) -> tuple[Decision, NoState]:
    if obs.visible == 0:
        return resize(obs, settings.min_workers, "queue empty, stop all"), state
    have = capacity(obs.workers)
    target = clamp(max(have, obs.visible), settings)
    return resize(obs, target, f"{obs.visible} visible"), state


@dataclass(frozen=True)
class CooldownState:
    last_scaled: float | None = None


def target_tracking_decide(
    obs: Observation, settings: PolicySettings, state: CooldownState, now: float
) -> tuple[Decision, CooldownState]:
    have = capacity(obs.workers)
    target = clamp(math.ceil(obs.visible / settings.target_backlog_per_worker), settings)
    reason = f"backlog per instance {obs.visible}/{max(have, 1)}"
    if target > have:
        return resize(obs, target, reason), CooldownState(now)
    cooling = state.last_scaled is not None and now - state.last_scaled < TARGET_TRACKING_COOLDOWN_S
    if target < have and not cooling:
        return resize(obs, target, reason), CooldownState(now)
    return Decision(reason=f"{reason}{' (cooldown)' if cooling else ''}"), state


@dataclass(frozen=True)
class KedaState:
    last_active: float | None = None
    recommendations: tuple[tuple[float, int], ...] = ()


def keda_decide(
    obs: Observation, settings: PolicySettings, state: KedaState, now: float
) -> tuple[Decision, KedaState]:
    have = capacity(obs.workers)
    active = obs.backlog > 0
    last_active = now if active else state.last_active
    raw = math.ceil(obs.backlog / KEDA_QUEUE_LENGTH)
    window = tuple((t, r) for t, r in state.recommendations if now - t < KEDA_STABILISATION_S)
    window = (*window, (now, raw))
    new_state = KedaState(last_active, window)
    if have == 0:
        target = 1 if active else 0
    elif not active and last_active is not None and now - last_active >= KEDA_COOLDOWN_S:
        target = 0
    else:
        stabilised = max(r for _, r in window)
        target = min(max(stabilised, 1), max(2 * have, have + 4))
    target = clamp(target, settings)
    return resize(obs, target, f"{obs.backlog} messages / queueLength {KEDA_QUEUE_LENGTH}"), \
        new_state


SEED = NamedPolicy("seed", seed_decide, NoState, interval_s=SEED_INTERVAL_S,
                   notes="one worker per visible message; all stopped once none is visible")
TARGET_TRACKING = NamedPolicy(
    "target-tracking", target_tracking_decide, CooldownState,
    interval_s=TARGET_TRACKING_PERIOD_S, notes="backlog per instance, 300 s scale-in cooldown",
)
KEDA = NamedPolicy("keda", keda_decide, KedaState, interval_s=KEDA_POLLING_S,
                   notes="queueLength 5, 30 s polling, 300 s stabilisation and cooldown")
RATIO = NamedPolicy("ratio", decide_by_ratio, PolicyState,
                    notes="imgrec's previous policy: 10 messages per worker, drain after 1 s idle")
