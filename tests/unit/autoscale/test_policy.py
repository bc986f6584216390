"""The scaling policy, step by step and as a whole, with the clock passed in (no I/O, no sleep)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imgrec.autoscale.policy import (
    Decision,
    DrainRule,
    Observation,
    PolicySettings,
    PolicyState,
    after_delay,
    all_idle,
    capacity,
    clamp,
    decide,
    decide_by_ratio,
    drain_choice,
    held_need,
    knows_rates,
    launch_count,
    rate_window_s,
    wanted_for_backlog,
)
from imgrec.autoscale.rates import ArrivalHistory
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
    history = ArrivalHistory()
    arrival_rate = draw(st.floats(0, 50))
    for t in range(max(0, int(now) - draw(st.integers(0, 90))), int(now)):
        history = history.observe(float(t), round(arrival_rate * t), ())
    state = PolicyState(
        short_since=draw(st.none() | st.floats(0, now)),
        surplus_since=draw(st.none() | st.floats(0, now)),
        backlog=draw(st.none() | st.integers(0, 600)),
        arrivals=history,
        rate_needs=tuple((now - draw(st.floats(0, 60)), draw(st.integers(0, 15)))
                         for _ in range(draw(st.integers(0, 3)))),
    )
    cfg = replace(cfg, target_latency_s=draw(st.none() | st.floats(0.1, 200)),
                  utilisation=draw(st.floats(0.3, 1.0)))
    return obs, cfg, state, now


@settings(max_examples=600, deadline=None)
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
        assert w.idle_since is not None and now >= w.idle_since
        if not knows_rates(obs):
            assert now - w.idle_since >= cfg.idle_before_drain_s, "cold: drains a worker idle " \
                "for less than idle_before_drain_s"
    assert decision.inputs is not None and decision.inputs.capacity == have
    if have < cfg.min_workers and not cfg.scale_out_delay_s:
        assert after >= cfg.min_workers, "stays below min"


# --- with the rate and the boot time known ------------------------------------------------

EC2 = {"rate_per_worker": 5.0, "boot_s": 40.0}


def at(i: int, state: WorkerState, *, idle_since: float | None = None, processed: int = 0,
       launched_at: float = 0.0) -> WorkerInfo:
    return WorkerInfo(f"w{i}", state, launched_at, 0.0,
                      idle_since if state == R else None, processed)


class Stream:
    """Feeds ``decide`` one tick per second of a stream served by ``workers`` workers."""

    def __init__(self, cfg: PolicySettings, rate: float = 5.0, boot: float = 40.0) -> None:
        self.cfg, self.rate, self.boot = cfg, rate, boot
        self.state, self.arrived, self.done = PolicyState(), 0.0, 0

    def tick(self, now: float, arrivals_per_s: float, workers: list[WorkerState],
             idle_for: float = 0.1, backlog: int = 2) -> Decision:
        self.arrived += arrivals_per_s
        self.done = max(self.done, round(self.arrived) - backlog)
        n = max(1, len(workers))
        infos = tuple(at(i, s, idle_since=now - idle_for, processed=self.done // n)
                      for i, s in enumerate(workers))
        left = round(self.arrived) - (self.done // n) * n
        obs = Observation(left, 0, infos, rate_per_worker=self.rate, boot_s=self.boot)
        decision, self.state = decide(obs, self.cfg, self.state, now)
        return decision


def test_warm_burst_from_zero_launches_the_fewest_that_clear_it_by_the_deadline() -> None:
    cfg = PolicySettings(max_workers=15)
    slow, _ = decide(Observation(100, 0, rate_per_worker=0.5, boot_s=40), cfg, PolicyState(), 0)
    fast, _ = decide(Observation(100, 0, rate_per_worker=50, boot_s=40), cfg, PolicyState(), 0)
    assert (slow.launch, fast.launch) == (10, 1)
    assert slow.inputs is not None and slow.inputs.mode == "rates"
    assert slow.inputs.deadline_s == 60.0 and slow.inputs.for_backlog == 10
    assert "backlog 100 by 60.0 s needs 10 more" in slow.reason


def test_a_longer_latency_target_launches_fewer() -> None:
    cfg = PolicySettings(max_workers=15, target_latency_s=100.0)
    d, _ = decide(Observation(100, 0, rate_per_worker=0.5, boot_s=40), cfg, PolicyState(), 0)
    assert d.launch == 4  # each serves 60 s, 30 images


def test_warm_no_second_launch_while_the_first_ones_boot() -> None:
    cfg = PolicySettings(max_workers=15)
    obs = Observation(100, 0, rate_per_worker=0.5, boot_s=40)
    d, state = decide(obs, cfg, PolicyState(), 0.0)
    starting = tuple(at(i, S, launched_at=0.0) for i in range(d.launch))
    d2, _ = decide(replace(obs, workers=starting), cfg, state, 1.0)
    assert d2.launch == 0 and not d2.drain


def test_warm_no_launch_when_serving_workers_clear_the_backlog_by_the_deadline() -> None:
    cfg = PolicySettings(max_workers=15)
    obs = Observation(40, 2, fleet(B, B), rate_per_worker=5.0, boot_s=40)
    d, _ = decide(obs, cfg, PolicyState(), 0.0)
    assert d.launch == 0


def test_a_steady_stream_is_sized_by_its_rate() -> None:
    stream = Stream(PolicySettings(max_workers=15))
    for t in range(120):
        d = stream.tick(float(t), 12.0, [B, B, B])
    assert d.inputs is not None and d.inputs.arrival_rate == pytest.approx(12.0, abs=0.2)
    assert d.inputs.for_rate == 3  # 12/s at 5/s each: 2.4 workers
    assert not d.is_action


def test_the_fleet_grows_ahead_of_a_rising_rate() -> None:
    stream = Stream(PolicySettings(max_workers=15))
    launched = 0
    # The rate climbs 0.1/s per s: two workers serve 10/s, reached at t=100.
    for t in range(100):
        d = stream.tick(float(t), 0.1 * t, [B, B])
        launched += d.launch
    assert launched >= 1, "did not scale ahead of the rate that 2 workers cannot serve"


def test_ski_rental_capacity_for_a_rate_is_kept_one_boot_time_after_it_fell() -> None:
    stream = Stream(PolicySettings(max_workers=15))
    workers = [B] * 5
    for t in range(120):
        stream.tick(float(t), 22.0, workers)  # 4.4 workers: 5
    drained_at = None
    for t in range(120, 300):
        # Random dispatch: every worker is briefly idle now and then, none for long.
        d = stream.tick(float(t), 5.0, [R, B, R, B, R][: len(workers)])
        if d.drain:
            drained_at = drained_at or t
            workers = workers[: len(workers) - len(d.drain)]
    assert drained_at is not None and drained_at >= 120 + 40
    assert len(workers) == 2  # 5/s at 5/s each, 90 % busy


def test_after_a_burst_idle_workers_go_after_idle_before_drain_s() -> None:
    cfg = PolicySettings(max_workers=15, idle_before_drain_s=1.0)
    state = PolicyState()
    for t in range(50):  # a burst was served; nothing arrives any more
        _, state = decide(Observation(0, 0, (), **EC2), cfg, state, float(t))
    idle = tuple(at(i, R, idle_since=50.0, processed=10) for i in range(10))
    d, state = decide(Observation(0, 0, idle, **EC2), cfg, state, 50.5)
    assert not d.drain
    d, _ = decide(Observation(0, 0, idle, **EC2), cfg, state, 51.0)
    assert len(d.drain) == 10


def test_a_lone_worker_waits_one_idle_window_through_a_trickle_then_goes() -> None:
    cfg = PolicySettings(max_workers=15)
    stream = Stream(cfg)
    for t in range(120):  # one request every 5 s
        stream.tick(float(t), 1.0 if t % 5 == 0 else 0.0, [R], idle_for=float(t % 5), backlog=0)
    d = stream.tick(120.0, 0.0, [R], idle_for=39.0, backlog=0)
    assert not d.drain, "drained before a boot time of idleness"
    d = stream.tick(121.0, 0.0, [R], idle_for=40.0, backlog=0)
    assert d.drain == ("w0",)


def test_a_fast_booting_fleet_drains_within_a_second() -> None:
    cfg = PolicySettings(max_workers=2, idle_before_drain_s=1.0)
    state = PolicyState()
    idle = (at(0, R, idle_since=10.0), at(1, R, idle_since=10.0))
    drained_at = None
    for k in range(8):
        now = 10.0 + 0.5 * k
        d, state = decide(Observation(0, 0, idle, rate_per_worker=250, boot_s=0.3), cfg, state,
                          now)
        if d.drain:
            drained_at = now
            break
    assert drained_at == 11.0


def test_held_need_is_the_largest_of_the_last_hold() -> None:
    held, kept = held_need(((0.0, 5), (30.0, 3)), now=45.0, hold_s=40.0, need=2)
    assert held == 3 and kept == ((30.0, 3), (45.0, 2))


def test_drain_rules_allow_the_most_of_any_rule_longest_idle_first() -> None:
    cfg = PolicySettings(max_workers=6)
    workers = (at(0, R, idle_since=0.0), at(1, R, idle_since=55.0), at(2, B),
               at(3, R, idle_since=59.9))
    rules = (DrainRule(3, 0.0), DrainRule(0, 40.0))
    assert drain_choice(0, workers, cfg, 60.0, rules) == ("w0",)
    assert drain_choice(0, workers, cfg, 60.0, (DrainRule(1, 0.0),)) == ("w0", "w1", "w3")
    assert all_idle(workers[:2], 60.0, 5.0) and not all_idle(workers, 60.0, 5.0)


def test_rate_window_is_about_two_boot_times_within_limits() -> None:
    assert (rate_window_s(0.3), rate_window_s(20.0), rate_window_s(40.0)) == (10.0, 40.0, 60.0)


def test_ratio_baseline_is_the_cold_rule_whatever_is_known() -> None:
    cfg = PolicySettings(max_workers=15)
    obs = Observation(100, 0, rate_per_worker=50, boot_s=40)
    d, _ = decide_by_ratio(obs, cfg, PolicyState(), 0.0)
    assert d.launch == 10 and d.inputs is not None and d.inputs.mode == "cold"


def test_inputs_are_a_plain_dict_for_status() -> None:
    d, _ = decide(Observation(100, 0, rate_per_worker=0.5, boot_s=40),
                  PolicySettings(max_workers=15), PolicyState(), 0.0)
    assert d.inputs is not None
    record = d.inputs.to_dict()
    assert {"arrival_rate", "rate_per_worker", "boot_s", "target_latency_s", "deadline_s",
            "for_rate", "for_backlog", "mode"} <= record.keys()
    assert record["target_workers"] == 10 and record["target_latency_s"] is None


def test_a_trickle_does_not_relaunch_the_worker_it_just_lost() -> None:
    stream = Stream(PolicySettings(max_workers=15))
    for t in range(120):  # one request every 5 s, served at once
        stream.tick(float(t), 1.0 if t % 5 == 0 else 0.0, [R], idle_for=float(t % 5), backlog=0)
    d = stream.tick(121.0, 0.0, [], backlog=0)  # the worker went; nothing is queued
    assert d.launch == 0
    d = stream.tick(122.0, 1.0, [], backlog=1)  # the next request starts one
    assert d.launch == 1
