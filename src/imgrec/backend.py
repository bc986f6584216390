"""Assemble the store and queues a process needs from the settings."""

from __future__ import annotations

from dataclasses import dataclass

from . import keys
from .config import Settings
from .ports import ObjectStore, Queue, QueueBroker


@dataclass
class Backend:
    """The object store, the queue broker and the shared request and dead-letter queues."""

    store: ObjectStore
    broker: QueueBroker
    requests: Queue
    dead_letters: Queue
    description: str

    def close(self) -> None:
        close = getattr(self.broker, "close", None)
        if close is not None:
            close()


def open_backend(settings: Settings) -> Backend:
    """Open the embedded backend (a directory and a SQLite file) or the AWS stack's resources."""
    if settings.backend == "aws":
        from .aws.backend import open_aws_backend

        aws_backend: Backend = open_aws_backend(settings)
        return aws_backend
    from .embedded.dir_store import DirectoryStore
    from .embedded.sqlite_queue import SqliteBroker

    store = DirectoryStore(settings.objects_dir)
    broker = SqliteBroker(settings.queue_db, default_visibility_s=settings.visibility_timeout_s)
    requests = broker.open(
        keys.REQUEST_QUEUE, dead_letter=keys.DEAD_LETTER_QUEUE, max_receives=settings.max_receives
    )
    dead_letters = broker.open(keys.DEAD_LETTER_QUEUE)
    return Backend(
        store=store,
        broker=broker,
        requests=requests,
        dead_letters=dead_letters,
        description=f"embedded ({settings.state_dir.resolve()})",
    )
