"""Choose the worker fleet for the configured backend: local processes, or EC2 instances."""

from __future__ import annotations

from .backend import Backend
from .config import Settings
from .ports import Fleet


def open_fleet(settings: Settings, backend: Backend, *, max_workers: int | None = None) -> Fleet:
    if settings.backend == "aws":
        from .aws.ec2_fleet import open_ec2_fleet

        return open_ec2_fleet(settings, backend, max_workers=max_workers)
    from .embedded.process_fleet import ProcessFleet

    return ProcessFleet(backend.store, settings, max_workers=max_workers,
                        threads_per_worker=settings.threads_per_worker())
