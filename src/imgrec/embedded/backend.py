"""The embedded backend's entry point: a directory, a SQLite file and local worker processes."""

from __future__ import annotations

from .. import keys
from ..config import Settings
from ..lanes import LanedRequests
from ..ports import Backend, Fleet
from .dir_store import DirectoryStore
from .sqlite_queue import SqliteBroker


def open_backend(settings: Settings) -> Backend:
    """The state directory's store and queues; the fleet is worker processes of this machine."""
    store = DirectoryStore(settings.objects_dir, durable=settings.durable_writes,
                           volatile_prefixes=(keys.HEARTBEATS_PREFIX, keys.WEB_TIERS_PREFIX))
    broker = SqliteBroker(settings.queue_db, default_visibility_s=settings.visibility_timeout_s,
                          durable=settings.durable_writes)
    requests = broker.open(
        keys.REQUEST_QUEUE, dead_letter=keys.DEAD_LETTER_QUEUE, max_receives=settings.max_receives
    )
    bulk = broker.open(
        keys.BULK_REQUEST_QUEUE, dead_letter=keys.DEAD_LETTER_QUEUE,
        max_receives=settings.max_receives,
    )

    def fleet(max_workers: int) -> Fleet:
        from .process_fleet import ProcessFleet

        # Released receipts of a dead worker go back to the lane each came from.
        return ProcessFleet(store, settings, requests=LanedRequests(requests, bulk),
                            max_workers=max_workers,
                            threads_per_worker=settings.threads_per_worker())

    return Backend(
        store=store,
        broker=broker,
        requests=requests,
        dead_letters=broker.open(keys.DEAD_LETTER_QUEUE),
        description=f"embedded ({settings.state_dir.resolve()})",
        fleet_factory=fleet,
        bulk=bulk,
    )
