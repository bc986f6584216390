"""What a stack costs per hour, estimated from what runs and how often each part calls AWS (pure).

EC2 is most of it, but not all: each worker writes a heartbeat to S3 every ``heartbeat_s``,
the autoscaler reads one per worker per tick, and idle workers and web tiers long-poll SQS.
Prices are us-east-1 On-Demand list prices of 2024; other regions and later prices differ.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

PRICES_PER_HOUR = {  # On-Demand, Linux, us-east-1, 2024
    "c7i.large": 0.08925, "c7i.xlarge": 0.1785, "c7i.2xlarge": 0.357, "c6i.large": 0.085,
    "c5.large": 0.085, "m7i.large": 0.1008, "m6i.large": 0.096, "c7g.large": 0.0725,
    "c6g.large": 0.068, "t3.medium": 0.0416, "t3.large": 0.0832, "t4g.small": 0.0168,
    "t4g.medium": 0.0336,
}
PUBLIC_IPV4_PER_HOUR = 0.005
S3_PUT_PER_1000 = 0.005
S3_GET_PER_1000 = 0.0004
SQS_PER_MILLION = 0.40
SQS_LONGEST_POLL_S = 20


@dataclass(frozen=True)
class CostLine:
    """One item of the estimate; ``per_hour`` None where the price is not known."""

    item: str
    per_hour: float | None


def hourly_cost(instances: Mapping[str, int], workers: int, *, heartbeat_s: float,
                tick_s: float, poll_wait_s: float, web_tiers: int = 1) -> list[CostLine]:
    """The items of a stack's hourly cost; ``instances`` counts running instances by type."""
    lines = [CostLine(f"{n} x {kind} (EC2 On-Demand)",
                      n * PRICES_PER_HOUR[kind] if kind in PRICES_PER_HOUR else None)
             for kind, n in sorted(instances.items())]
    running = sum(instances.values())
    if running:
        lines.append(CostLine(f"{running} public IPv4 address(es)",
                              running * PUBLIC_IPV4_PER_HOUR))
    beats = workers * 3600 / heartbeat_s
    lines.append(CostLine(f"heartbeats: {beats:,.0f} S3 PUTs", beats * S3_PUT_PER_1000 / 1000))
    reads = web_tiers * workers * 3600 / tick_s
    lines.append(CostLine(f"autoscaler heartbeat reads: {reads:,.0f} S3 GETs",
                          reads * S3_GET_PER_1000 / 1000))
    poll = max(1.0, min(SQS_LONGEST_POLL_S, poll_wait_s))
    # An idle worker long-polls both request lanes (interactive and bulk); a web tier its reply
    # and dead-letter queues and reads both lanes' depths every tick.
    sqs = workers * 2 * 3600 / poll + web_tiers * (2 * 3600 / poll + 2 * 3600 / tick_s)
    lines.append(CostLine(f"polling: {sqs:,.0f} SQS requests (idle)",
                          sqs * SQS_PER_MILLION / 1e6))
    return lines


def total(lines: list[CostLine]) -> tuple[float, bool]:
    """(sum of the known items, whether every item was known)."""
    known = [line.per_hour for line in lines if line.per_hour is not None]
    return sum(known), len(known) == len(lines)
