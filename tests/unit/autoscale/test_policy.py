"""The scaling policy, step by step and as a whole, with the clock passed in (no I/O, no sleep)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgrec.autoscale.policy import (
    Decision,
    Observation,
    PolicySettings,
    PolicyState,
    after_delay,
    capacity,
    clamp,
    decide,
    drain_choice,
    launch_count,
    wanted_for_backlog,
)
from imgrec.ports import WorkerInfo, WorkerState

S, R, B, D = WorkerState.STARTING, WorkerState.READY, WorkerState.BUSY, WorkerState.DRAINING


def worker(i: int, state: WorkerState, idle_since: float | None = None) -> WorkerInfo:
    if state == R and idle_since is None:
        idle_since = 0.0
    return WorkerInfo(f"w{i}", state, launched_at=0.0, last_seen=0.0, idle_since=idle_since)


def fleet(*states: WorkerState, idle_since: float = 0.0) -> tuple[WorkerInfo, ...]:
    return tuple(worker(i, s, idle_since if s == R else None) for i, s in enumerate(states))


def test_capacity_counts_starting_ready_and_busy_not_draining() -> None:
    assert capacity(fleet(S, R, B, D, D)) == 3


@pytest.mark.parametrize(("backlog", "target", "wanted"), [
    (0, 10, 0), (1, 10, 1), (10, 10, 1), (11, 10, 2), (200, 10, 20), (5, 2.5, 2),
])
def test_wanted_for_backlog_is_one_worker_per_target(backlog: int, target: float,
                                                     wanted: int) -> None:
    obs = Observation(visible=backlog, in_flight=0)
    assert wanted_for_backlog(obs, PolicySettings(max_workers=50,
                                                  target_backlog_per_worker=target)) == wanted


def test_no_launch_when_serving_workers_clear_a_shrinking_backlog_before_boot() -> None:
    obs = Observation(visible=30, in_flight=0, workers=fleet(B), rate_per_worker=100, boot_s=0.5)
    cfg = PolicySettings(max_workers=4)
    assert wanted_for_backlog(obs, cfg, previous_backlog=40) == 1
    assert wanted_for_backlog(obs, cfg, previous_backlog=20) == 3  # growing: launch
    assert wanted_for_backlog(obs, cfg, previous_backlog=None) == 3


@pytest.mark.parametrize(("wanted", "low", "high", "out"), [(0, 0, 4, 0), (9, 0, 4, 4),
                                                             (0, 2, 4, 2), (3, 1, 4, 3)])
def test_clamp(wanted: int, low: int, high: int, out: int) -> None:
    assert clamp(wanted, PolicySettings(max_workers=high, min_workers=low)) == out


def test_after_delay_remembers_since_when() -> None:
    assert after_delay(None, 5.0, 0.0) == (True, 5.0)
    assert after_delay(None, 5.0, 2.0) == (False, 5.0)
    assert after_delay(5.0, 6.9, 2.0) == (False, 5.0)
    assert after_delay(5.0, 7.0, 2.0) == (True, 5.0)


def test_starting_workers_count_so_a_burst_does_not_launch_twice() -> None:
    cfg = PolicySettings(max_workers=4)
    assert launch_count(4, fleet(), cfg) == 4
    assert launch_count(4, fleet(S, S, S, S), cfg) == 0
    assert launch_count(9, fleet(S, B), cfg) == 2


def test_drain_choice_takes_only_long_idle_workers_longest_idle_first() -> None:
    cfg = PolicySettings(max_workers=4, idle_before_drain_s=1.0)
    workers = (worker(0, B), worker(1, R, idle_since=9.5), worker(2, R, idle_since=8.0),
               worker(3, R, idle_since=7.0), worker(4, S))
    assert drain_choice(0, workers, cfg, now=10.0) == ("w3", "w2")
    assert drain_choice(4, workers, cfg, now=10.0) == ("w3",)
    floor = PolicySettings(max_workers=5, min_workers=4, idle_before_drain_s=1.0)
    assert drain_choice(0, workers, floor, now=10.0) == ("w3",)


def test_a_backlog_from_zero_launches_within_one_tick() -> None:
    decision, _ = decide(Observation(200, 0), PolicySettings(max_workers=2), PolicyState(), 0.0)
    assert decision.launch == 2 and not decision.drain
    assert "backlog 200" in decision.reason


def test_the_next_tick_of_the_same_burst_launches_nothing() -> None:
    cfg = PolicySettings(max_workers=2)
    d1, state = decide(Observation(200, 0), cfg, PolicyState(), 0.0)
    d2, _ = decide(Observation(200, 0, fleet(S, S)), cfg, state, 0.5)
    assert (d1.launch, d2.launch) == (2, 0)


def test_scale_out_delay_waits_then_launches() -> None:
    cfg = PolicySettings(max_workers=2, scale_out_delay_s=1.0)
    d, state = decide(Observation(5, 0), cfg, PolicyState(), 0.0)
    assert d.launch == 0 and "delay" in d.reason
    d, state = decide(Observation(5, 0), cfg, state, 1.0)
    assert d.launch == 1


def test_empty_queue_drains_to_min_once_workers_are_idle() -> None:
    cfg = PolicySettings(max_workers=4, min_workers=1, idle_before_drain_s=1.0)
    busy_just_now = (worker(0, R, idle_since=10.0), worker(1, R, idle_since=10.0))
    d, state = decide(Observation(0, 0, busy_just_now), cfg, PolicyState(), 10.5)
    assert d == Decision(reason=d.reason) and "idle" in d.reason
    d, _ = decide(Observation(0, 0, busy_just_now), cfg, state, 11.0)
    assert len(d.drain) == 1


def test_min_workers_are_kept_and_replaced() -> None:
    cfg = PolicySettings(max_workers=4, min_workers=2)
    d, _ = decide(Observation(0, 0, fleet(R)), cfg, PolicyState(), 0.0)
    assert d.launch == 1


def test_empty_queue_reaches_min_within_two_seconds_at_a_half_second_tick() -> None:
    """Workers go idle when the queue empties at t=0; ticks every 0.5 s; nothing else happens."""
    cfg = PolicySettings(max_workers=4)
    workers = {f"w{i}": worker(i, R, idle_since=0.0) for i in range(4)}
    state, now = PolicyState(), 0.0
    while workers:
        d, state = decide(Observation(0, 0, tuple(workers.values())), cfg, state, now)
        for worker_id in d.drain:
            del workers[worker_id]
        now += 0.5
        assert now <= 2.0, "not at min within 2 s"


states = st.sampled_from([S, R, B, D])


@st.composite
def situations(draw: st.DrawFn) -> tuple[Observation, PolicySettings, PolicyState, float]:
    high = draw(st.integers(0, 12))
    low = draw(st.integers(0, high))
    cfg = PolicySettings(
        max_workers=high, min_workers=low,
        target_backlog_per_worker=draw(st.floats(0.5, 50)),
        scale_out_delay_s=draw(st.sampled_from([0.0, 1.0])),
        scale_in_delay_s=draw(st.sampled_from([0.0, 1.0])),
        idle_before_drain_s=draw(st.floats(0, 5)),
    )
    now = draw(st.floats(0, 100))
    workers = tuple(
        worker(i, s, draw(st.floats(0, now)) if s == R else None)
        for i, s in enumerate(draw(st.lists(states, max_size=16)))
    )
    obs = Observation(
        visible=draw(st.integers(0, 500)), in_flight=draw(st.integers(0, 100)), workers=workers,
        rate_per_worker=draw(st.none() | st.floats(0.1, 500)),
        boot_s=draw(st.none() | st.floats(0.1, 60)),
    )
    state = PolicyState(
        short_since=draw(st.none() | st.floats(0, now)),
        surplus_since=draw(st.none() | st.floats(0, now)),
        backlog=draw(st.none() | st.integers(0, 600)),
    )
    return obs, cfg, state, now


@settings(max_examples=400, deadline=None)
@given(situations())
def test_invariants(case: tuple[Observation, PolicySettings, PolicyState, float]) -> None:
    obs, cfg, state, now = case
    decision, _ = decide(obs, cfg, state, now)
    have = capacity(obs.workers)
    after = have + decision.launch - len(decision.drain)
    by_id = {w.worker_id: w for w in obs.workers}
    assert decision.launch >= 0
    assert not (decision.launch and decision.drain), "launches and drains at once"
    if decision.launch:
        assert after <= cfg.max_workers, "launches past max"
    if decision.drain:
        assert after >= cfg.min_workers, "drains below min"
    assert len(set(decision.drain)) == len(decision.drain)
    for worker_id in decision.drain:
        w = by_id[worker_id]
        assert w.state == R, f"drains a {w.state.value} worker"
        assert w.idle_since is not None and now - w.idle_since >= cfg.idle_before_drain_s
    if have < cfg.min_workers and not cfg.scale_out_delay_s:
        assert after >= cfg.min_workers, "stays below min"
