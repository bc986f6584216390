"""The hourly cost estimate counts S3 and SQS requests, not only EC2 (pure)."""

from __future__ import annotations

import pytest

from imgrec.aws.costs import hourly_cost, total


def test_an_idle_stack_with_two_workers_and_a_web_instance() -> None:
    lines = hourly_cost({"c7i.large": 3}, workers=2, heartbeat_s=2.0, tick_s=0.5,
                        poll_wait_s=1.0)
    by_item = {line.item.split(":")[0]: line.per_hour for line in lines}
    assert by_item["3 x c7i.large (EC2 On-Demand)"] == pytest.approx(0.26775)
    assert by_item["heartbeats"] == pytest.approx(2 * 1800 * 0.005 / 1000)
    assert by_item["autoscaler heartbeat reads"] == pytest.approx(2 * 7200 * 0.0004 / 1000)
    # Two workers x two lanes, the web tier's two long polls, two lanes' depths per tick.
    assert by_item["polling"] == pytest.approx((2 * 2 * 3600 + 7200 + 2 * 7200) * 0.4 / 1e6)
    cost, complete = total(lines)
    assert complete and cost == pytest.approx(sum(v for v in by_item.values() if v))


def test_an_unknown_instance_type_is_said_not_guessed() -> None:
    lines = hourly_cost({"x9z.huge": 1}, workers=0, heartbeat_s=2.0, tick_s=0.5,
                        poll_wait_s=1.0)
    assert lines[0].per_hour is None
    assert total(lines)[1] is False
