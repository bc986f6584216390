"""imgrec's scaling policy: a pure function from what the controller saw to what it should do.

``decide(observation, settings, state, now) -> (decision, state)`` does no I/O and reads no clock;
the controller (and the simulator) pass ``now`` in. Its inputs are what a real controller can
observe: the queue's depth (visible and in flight), the workers from their heartbeats (state,
idle since, ``processed`` count) and, once measured or remembered from a previous run (see
``estimates``), one worker's service rate and the launch-to-ready (boot) time.

**With the rate and the boot time known** it sizes the fleet from them:

1. *Arrival rate* (``rates``): cumulative arrivals are backlog + completions (the growth of the
   heartbeats' ``processed`` counts); the rate is the median over five parts of a window of
   two boot times (10 s to 60 s, so a few heartbeats fall in each part), so a one-off burst is
   backlog, not a rate. Its trend (Theil-Sen, bursts capped) counts only beyond what Poisson
   noise would give.
2. *For the rate*: enough workers to serve the rate expected one boot time ahead at
   ``utilisation`` busy (default 1.0: headroom is the backlog rule's job, which weighs it
   against the latency target); a fraction of a worker within ``sizing.SLACK`` is not a worker.
   The rate grows a fleet in use; from zero the first request starts it (see 3), so a trickle
   does not relaunch a worker just drained.
3. *For the backlog*: the fewest more workers that clear the backlog, plus what arrives
   meanwhile, by the deadline: ``target_latency_s`` (default 1.5 x boot; a target the boot time
   alone exceeds counts from readiness), counting what serving workers and those still booting
   do before it. None when the current workers manage, or finish within ``SLACK`` of the
   deadline after it: a launch that cannot help, or helps less than a boot costs, is not made.
   A burst of 100 with 40 s boots: at 50 images/s one worker (ready at 40 s, done at 42 s), at
   0.5 images/s ten (each serves 20 s).
4. *Scale-in, the ski-rental rule*: a worker idle costs, per second, what a boot costs per second
   of booting, so capacity is kept about one boot time longer than it seems needed, and no
   longer. The workers the rate asked for are kept for one boot time after it fell (the need is
   held); beyond that, READY workers are drained at once while a sustained rate shows the
   surplus, after ``idle_before_drain_s`` when nothing is arriving (a burst served, nothing to
   wait for), and once every worker has been idle for an idle window (the boot time, at least
   ``idle_before_drain_s``) whatever the estimate. So workers that boot in 0.3 s drain about a
   second after the last answer, and workers that boot in 40 s do not flap and are gone one
   idle window after it.

**Cold** (rate or boot time not known yet) it falls back to a ratio: one worker per
``target_backlog_per_worker`` messages, no launch when serving workers clear a shrinking
backlog before a new one could be ready, drain workers idle for ``idle_before_drain_s``.

Both then go through the same steps: ``clamp`` to ``[min_workers, max_workers]``,
``after_delay`` (a shortage or surplus must last ``scale_out_delay_s`` / ``scale_in_delay_s``),
``launch_count`` (starting workers count, so a burst never launches the cap twice) and
``drain_choice`` (only READY workers, longest idle first, never below ``min_workers``). A
decision never launches and drains at once. Each carries its reason in words and the inputs it
used (``PolicyInputs``).

Tuning: ``target_latency_s`` trades cost for latency on bursts. Lower it and a burst gets more
workers (each extra one costs at least a boot time); raise it and fewer workers serve it for
longer. ``utilisation`` does the same for steady traffic: lower leaves more headroom for
bursts of chance (0.9: a diurnal day at about 10% more worker-seconds, for a p95 of 0.2 s
instead of 0.9 s), 1.0 costs least. Neither changes anything while the policy is cold.

Example::

    decision, state = decide(Observation(visible=40, in_flight=0, workers=()),
                             PolicySettings(max_workers=4), PolicyState(), now=0.0)
    assert decision.launch == 4
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..ports import WorkerInfo
from .plans import (
    cold_plan,
    held_need,
    knows_rates,
    rate_plan,
    rate_window_s,
    requests_ongoing,
    skip_launch_that_cannot_help,
    wanted_for_backlog,
)
from .policy_types import (
    CAPACITY_STATES,
    Decision,
    DrainRule,
    NamedPolicy,
    Observation,
    Plan,
    PolicyInputs,
    PolicySettings,
    PolicyState,
    all_idle,
    capacity,
    idle_workers,
    serving,
)

__all__ = [
    "CAPACITY_STATES", "OURS", "Decision", "DrainRule", "NamedPolicy", "Observation", "Plan",
    "PolicyInputs", "PolicySettings", "PolicyState", "act", "after_delay", "all_idle",
    "capacity", "clamp", "cold_plan", "decide", "decide_by_ratio", "drain_choice", "held_need",
    "idle_workers", "knows_rates", "launch_count", "rate_plan", "rate_window_s",
    "requests_ongoing", "serving", "skip_launch_that_cannot_help", "wanted_for_backlog",
]


def clamp(wanted: int, settings: PolicySettings) -> int:
    return max(settings.min_workers, min(settings.max_workers, wanted))


def after_delay(since: float | None, now: float, delay_s: float) -> tuple[bool, float]:
    """(whether a condition seen since ``since`` has lasted ``delay_s``, the new ``since``)."""
    start = now if since is None else since
    return now - start >= delay_s, start


def launch_count(target: int, workers: Sequence[WorkerInfo], settings: PolicySettings) -> int:
    """Workers to launch to reach ``target``: starting ones count, and never past the cap."""
    have = capacity(workers)
    return max(0, min(target, settings.max_workers) - have)


def drain_choice(
    keep: int, workers: Sequence[WorkerInfo], settings: PolicySettings, now: float,
    rules: Sequence[DrainRule] | None = None,
) -> tuple[str, ...]:
    """Idle workers to drain, longest idle first, never below ``min_workers``.

    Each rule allows the READY workers idle ``rule.idle_s`` while ``rule.keep`` are left; the
    default rule is ``keep`` with ``idle_before_drain_s``.
    """
    have = capacity(workers)
    rules = rules if rules is not None else (DrainRule(keep, settings.idle_before_drain_s),)
    count = max((min(len(idle_workers(workers, now, r.idle_s)), have - r.keep) for r in rules),
                default=0)
    count = min(count, have - settings.min_workers)
    if count <= 0:
        return ()
    return tuple(w.worker_id for w in idle_workers(workers, now, 0.0)[:count])


def decide(
    obs: Observation, settings: PolicySettings, state: PolicyState, now: float
) -> tuple[Decision, PolicyState]:
    """One tick of imgrec's policy (see the module docstring)."""
    history = state.arrivals.observe(now, obs.backlog, obs.workers, obs.rate_per_worker)
    plan = rate_plan(obs, settings, state, history, now) if knows_rates(obs) \
        else cold_plan(obs, settings, state)
    state = replace(state, backlog=obs.backlog, arrivals=history, rate_needs=plan.rate_needs)
    return act(plan, obs, settings, state, now)


def decide_by_ratio(
    obs: Observation, settings: PolicySettings, state: PolicyState, now: float
) -> tuple[Decision, PolicyState]:
    """imgrec's previous policy: the cold rules always, whatever is known (a baseline)."""
    plan = cold_plan(obs, settings, state)
    return act(plan, obs, settings, replace(state, backlog=obs.backlog), now)


def act(
    plan: Plan, obs: Observation, settings: PolicySettings, state: PolicyState, now: float
) -> tuple[Decision, PolicyState]:
    """Turn a plan into a decision through the bounds, the delays, launch and drain choice."""
    have = capacity(obs.workers)
    up, keep = clamp(plan.up, settings), clamp(plan.keep, settings)
    why = f"{plan.why}; bounds [{settings.min_workers}, {settings.max_workers}]; have {have}"
    inputs = plan.inputs
    if up > have:
        ok, since = after_delay(state.short_since, now, settings.scale_out_delay_s)
        new_state = replace(state, short_since=since, surplus_since=None)
        if not ok:
            return Decision(reason=f"{why}; waiting out the scale-out delay",
                            inputs=inputs), new_state
        launch = launch_count(up, obs.workers, settings)
        return Decision(launch=launch, reason=f"{why}: launch {launch}", inputs=inputs), new_state
    rules = tuple(DrainRule(clamp(r.keep, settings), r.idle_s) for r in plan.drain_rules)
    drain = drain_choice(keep, obs.workers, settings, now, rules)
    if keep < have or drain:
        ok, since = after_delay(state.surplus_since, now, settings.scale_in_delay_s)
        new_state = replace(state, short_since=None, surplus_since=since)
        if not ok:
            return Decision(reason=f"{why}; waiting out the scale-in delay",
                            inputs=inputs), new_state
        if not drain:
            return Decision(reason=f"{why}; keep {keep}, no worker idle for "
                                   f"{rules[0].idle_s:g} s", inputs=inputs), new_state
        return Decision(drain=drain, reason=f"{why}; keep {keep}: drain {len(drain)} idle",
                        inputs=inputs), new_state
    return Decision(reason=f"{why}; keep {keep}", inputs=inputs), \
        replace(state, short_since=None, surplus_since=None)


OURS = NamedPolicy(
    "ours", decide, PolicyState,
    notes="arrival rate, service rate and boot time; ski-rental scale-in; cold: backlog ratio",
)
