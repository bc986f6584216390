"""The worker-seconds meter (pure): time integrated per worker, images from heartbeats."""

from __future__ import annotations

import pytest

from imgrec.autoscale.usage import UsageMeter, price_per_1000_images
from imgrec.ports import WorkerInfo, WorkerState


def _worker(worker_id: str, processed: int) -> WorkerInfo:
    return WorkerInfo(worker_id, WorkerState.BUSY, launched_at=0.0, last_seen=0.0,
                      processed=processed)


def test_worker_seconds_integrate_the_fleet_over_the_ticks() -> None:
    meter = UsageMeter()
    meter.observe(0.0, [_worker("a", 0), _worker("b", 0)])
    meter.observe(2.0, [_worker("a", 30), _worker("b", 10)])  # 2 workers x 2 s
    meter.observe(3.0, [_worker("a", 50)])  # b gone; its 10 images stay counted
    meter.observe(5.0, [])
    usage = meter.usage()
    assert usage.worker_seconds == pytest.approx(2 * 2 + 2 * 1 + 1 * 2)
    assert usage.images == 60
    assert usage.worker_seconds_per_image == pytest.approx(8 / 60)


def test_no_images_means_no_per_image_figure() -> None:
    meter = UsageMeter()
    meter.observe(0.0, [_worker("a", 0)])
    meter.observe(1.0, [_worker("a", 0)])
    assert meter.usage().worker_seconds == 1.0
    assert meter.usage().worker_seconds_per_image is None


def test_price_per_1000_images() -> None:
    # 0.36 worker-seconds per image at $0.10/h: 1000 x 0.36 / 3600 x 0.10 = $0.01.
    assert price_per_1000_images(0.36, 0.10) == pytest.approx(0.01)
    assert price_per_1000_images(None, 0.10) is None
    assert price_per_1000_images(0.36, None) is None
