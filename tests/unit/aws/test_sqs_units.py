"""SQS's units: whole seconds for waits and visibility timeouts."""

from __future__ import annotations

import pytest

from imgrec.aws.sqs_queue import visibility_seconds, wait_seconds


@pytest.mark.parametrize(("given", "sent"), [
    (0.0, 0), (0.3, 1), (0.5, 1), (6.0, 6), (6.4, 6), (10**6, 43_200),
])
def test_a_positive_visibility_is_at_least_one_second(given: float, sent: int) -> None:
    assert visibility_seconds(given) == sent


@pytest.mark.parametrize(("given", "sent"), [(0.0, 0), (0.4, 0), (1.0, 1), (60.0, 20)])
def test_waits_are_whole_seconds_up_to_20(given: float, sent: int) -> None:
    assert wait_seconds(given) == sent
