"""The ``cost`` section of ``GET /api/v1/status``: worker-seconds per image and, for a known EC2
instance type, the estimated price per 1,000 images.

Worker-seconds count every second a worker exists (booting and idle included), so the figure
is what classifying cost, not the model's speed alone. The price uses the On-Demand list
prices of ``imgrec.aws.costs`` (us-east-1, 2024); local workers have no price.
"""

from __future__ import annotations

from typing import Any

from ..autoscale.controller import Controller
from ..autoscale.usage import price_per_1000_images


def cost_section(controller: Controller | None) -> dict[str, Any]:
    """Worker-seconds, images, per-image figure and price (None where not known)."""
    if controller is None:
        return {"worker_seconds": None, "images": None, "worker_seconds_per_image": None,
                "worker_kind": None, "price_per_hour": None, "price_per_1000_images": None}
    usage = controller.usage()
    kind = controller.worker_kind()
    price_per_hour = None
    if kind != "local":
        from ..aws.costs import PRICES_PER_HOUR  # pure table; loads no AWS client

        price_per_hour = PRICES_PER_HOUR.get(kind)
    per_image = usage.worker_seconds_per_image
    return {
        "worker_seconds": round(usage.worker_seconds, 3),
        "images": usage.images,
        "worker_seconds_per_image": None if per_image is None else round(per_image, 6),
        "worker_kind": kind,
        "price_per_hour": price_per_hour,
        "price_per_1000_images": price_per_1000_images(per_image, price_per_hour),
    }
