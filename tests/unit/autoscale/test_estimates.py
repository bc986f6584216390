"""Remembered per-worker rate and boot time: keyed, smoothed, filled in, and JSON round trip."""

from __future__ import annotations

import json

import pytest

from imgrec.autoscale.estimates import Estimate, Estimates, EstimatesError
from imgrec.autoscale.policy import Observation


def test_round_trip_through_json() -> None:
    known = (Estimates()
             .updated("mobilenet_v2", "local", rate_per_worker=240.0, boot_s=0.33)
             .updated("mobilenet_v2", "c5.large", rate_per_worker=60.0, boot_s=41.0))
    again = Estimates.from_json(known.to_json())
    assert again == known
    assert again.get("mobilenet_v2", "c5.large") == Estimate(60.0, 41.0, 1)
    assert json.loads(known.to_json())["version"] == 1


def test_unknown_kind_is_empty() -> None:
    assert Estimates().get("resnet18", "local") == Estimate()


def test_new_measurements_are_smoothed_and_none_keeps_the_old_value() -> None:
    e = Estimate().updated(100.0, 40.0).updated(200.0, None)
    assert e.rate_per_worker == pytest.approx(130.0) and e.boot_s == 40.0 and e.samples == 2
    assert Estimate(5.0, 40.0, 3).updated(None, None) == Estimate(5.0, 40.0, 3)
    assert Estimate(5.0, 40.0, 3).updated(0.0, None) == Estimate(5.0, 40.0, 3)


def test_fill_keeps_measured_values_and_fills_the_rest() -> None:
    e = Estimate(rate_per_worker=5.0, boot_s=40.0)
    assert e.fill(Observation(3, 0)) == Observation(3, 0, rate_per_worker=5.0, boot_s=40.0)
    measured = Observation(3, 0, rate_per_worker=7.0)
    assert e.fill(measured) == Observation(3, 0, rate_per_worker=7.0, boot_s=40.0)


@pytest.mark.parametrize(("raw", "message"), [
    ("not json", "not an estimates document"),
    ('{"version": 2, "kinds": {}}', "version 2"),
    ('{"version": 1}', "not an estimates document"),
    ('{"version": 1, "kinds": {"m@t": {"rate_per_worker": -1}}}', "positive"),
    ('{"version": 1, "kinds": {"m@t": {"boot_s": "soon"}}}', "not an estimates document"),
])
def test_bad_documents_say_what_to_do(raw: str, message: str) -> None:
    with pytest.raises(EstimatesError, match=message):
        Estimates.from_json(raw)
