"""Open the backend that ``settings.backend`` names: one entry point per backend package.

A backend is a package with an ``open_backend(settings) -> imgrec.ports.Backend`` function and
adapters of the ports; adding one means writing that package, its contract tests, and a line in
``BACKENDS``. Each is imported only when chosen, so the embedded backend never loads boto3.
"""

from __future__ import annotations

from collections.abc import Callable

from .config import Settings
from .ports import Backend

__all__ = ["BACKENDS", "Backend", "open_backend"]


def _embedded(settings: Settings) -> Backend:
    from .embedded.backend import open_backend as open_embedded

    return open_embedded(settings)


def _aws(settings: Settings) -> Backend:
    from .aws.backend import open_backend as open_aws

    return open_aws(settings)


BACKENDS: dict[str, Callable[[Settings], Backend]] = {"embedded": _embedded, "aws": _aws}


def open_backend(settings: Settings) -> Backend:
    """The store, queues and fleet factory of the configured backend."""
    return BACKENDS[settings.backend](settings)
