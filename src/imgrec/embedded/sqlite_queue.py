"""Queues with SQS semantics in one SQLite file, shared by every process of one machine.

Visibility timeouts, receive counts, dead-letter redrive and long polling behave as on SQS.
Long polling across processes watches ``PRAGMA data_version``, which changes whenever another
connection commits: a waiting receiver notices a send within a few milliseconds without reading
any table. WAL mode; with ``durable`` (the default) ``synchronous=FULL``: every commit is
fsynced before it returns, so a message whose send returned survives a power cut. Without it,
``synchronous=NORMAL``: a committed message survives a process crash, but a power cut may lose
the last transactions.
"""

from __future__ import annotations

import functools
import secrets
import sqlite3
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from ..errors import BackendUnavailable, QueueNotFound, StorageFull
from ..ports import Message, QueueDepth

T = TypeVar("T")

DEFAULT_VISIBILITY_S = 30.0
_CHANGE_POLL_S = 0.005
_RESCAN_S = 0.1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS queues (
    name TEXT PRIMARY KEY,
    dead_letter TEXT,
    max_receives INTEGER,
    created_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    queue TEXT NOT NULL,
    message_id TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at REAL NOT NULL,
    visible_at REAL NOT NULL,
    receive_count INTEGER NOT NULL DEFAULT 0,
    receipt TEXT
);
CREATE INDEX IF NOT EXISTS messages_by_visibility ON messages (queue, visible_at, seq);
"""


class SqliteBroker:
    """Opens queues stored in one SQLite file; one connection per process, guarded by a lock.

    Example::

        broker = SqliteBroker(Path(".imgrec/queues.db"))
        requests = broker.open("requests", dead_letter="requests-dead", max_receives=5)
    """

    def __init__(self, path: Path, *, default_visibility_s: float = DEFAULT_VISIBILITY_S,
                 durable: bool = True) -> None:
        self.path = path
        self.default_visibility_s = default_visibility_s
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._local_commits = 0
        # Wake-ups, all guarded by ``_lock``: commits of this process per queue (``None``:
        # any queue), and commits of other processes seen by the one polling waiter.
        self._queue_commits: dict[str | None, int] = {}
        self._remote_changes = 0
        self._last_version = -1
        self._polling = False
        self._pending_lock = threading.Lock()
        self._pending: list[_PendingSend] = []
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = sqlite3.connect(
                path, timeout=10.0, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode=WAL")
            self._conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'NORMAL'}")
            self._conn.executescript(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            raise _translate(exc, f"cannot open queue database {path}") from exc

    def open(
        self,
        name: str,
        *,
        dead_letter: str | None = None,
        max_receives: int | None = None,
        create: bool = True,
    ) -> SqliteQueue:
        with self._lock:
            row = self._conn.execute("SELECT 1 FROM queues WHERE name = ?", (name,)).fetchone()
            if row is None and not create:
                raise QueueNotFound(f"no queue named {name!r}")
            if create:
                if dead_letter is not None:
                    self._execute_write(
                        "INSERT OR IGNORE INTO queues (name, created_at) VALUES (?, ?)",
                        (dead_letter, time.time()),
                    )
                self._execute_write(
                    "INSERT INTO queues (name, dead_letter, max_receives, created_at)"
                    " VALUES (?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                    " dead_letter = excluded.dead_letter, max_receives = excluded.max_receives"
                    " WHERE excluded.dead_letter IS NOT NULL",
                    (name, dead_letter, max_receives, time.time()),
                )
        return SqliteQueue(self, name)

    def delete_queue(self, name: str) -> None:
        with self._lock:
            self._transaction(
                lambda c: (
                    c.execute("DELETE FROM messages WHERE queue = ?", (name,)),
                    c.execute("DELETE FROM queues WHERE name = ?", (name,)),
                )
            )

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    # -- used by SqliteQueue -------------------------------------------------------------

    def _execute_write(self, sql: str, params: Sequence[object]) -> int:
        before = self._conn.total_changes
        try:
            cur = self._conn.execute(sql, params)
        except sqlite3.Error as exc:
            raise _translate(exc, "queue write failed") from exc
        self._notify_local(before)
        return cur.rowcount

    def _transaction(self, body: Callable[[sqlite3.Connection], T],
                     queues: set[str] | None = None) -> T:
        """``body`` in one write transaction; ``queues``: the queues it may change (read after
        ``body`` ran, which may add to it), ``None`` for any."""
        before = self._conn.total_changes
        try:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                result = body(self._conn)
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise _translate(exc, "queue transaction failed") from exc
        self._notify_local(before, queues)
        return result

    def _group_send(self, item: _PendingSend) -> bool:
        """Commit ``item`` with every send that queued up behind the current commit (group
        commit): under load the web tier's request threads share one transaction, so one
        fsync instead of one per request. Returns whether the item's queue exists."""
        with self._pending_lock:
            self._pending.append(item)
        with self._lock:
            if not item.done:  # nobody took it along: commit everything pending now
                with self._pending_lock:
                    group, self._pending = self._pending, []
                try:
                    self._transaction(lambda c: _insert_group(c, group),
                                      {other.queue for other in group})
                except BaseException as exc:
                    for other in group:
                        other.error, other.done = exc, True
                    raise
                for other in group:
                    other.done = True
                return item.found
        if item.error is not None:  # another thread's commit of this send failed
            raise type(item.error)(*item.error.args) from item.error
        return item.found

    def _notify_local(self, changes_before: int, queues: set[str] | None = None) -> None:
        # Only a commit that changed rows wakes local waiters: two receivers in one process
        # (reply dispatcher, dead-letter responder) would otherwise wake each other with their
        # empty receives and spin a core while the service is idle. And only the waiters of
        # the queues it changed: the web tier's request sends do not wake its reply receiver.
        if self._conn.total_changes == changes_before:
            return
        self._local_commits += 1
        for queue in (None,) if queues is None else queues:
            self._queue_commits[queue] = self._queue_commits.get(queue, 0) + 1
        self._changed.notify_all()

    def _wake_stamp(self, queue: str | None) -> tuple[int, int, int]:
        return (self._remote_changes, self._queue_commits.get(None, 0),
                self._queue_commits.get(queue, 0) if queue is not None else self._local_commits)

    def _wait_for_change(self, timeout_s: float, queue: str | None = None, *,
                         since: tuple[int, int, int] | None = None) -> None:
        """Block until another connection commits, this process commits to ``queue`` (any
        queue if ``None``), or ``timeout_s`` passes; counted from ``since`` (a ``_wake_stamp``
        taken earlier) if given, else from now.

        One waiting thread at a time polls ``PRAGMA data_version`` and wakes the others when
        it changes: the receivers of one process (reply dispatcher, dead-letter responder)
        share one poll instead of each querying 200 times a second.
        """
        end = time.monotonic() + timeout_s
        with self._changed:
            start = self._wake_stamp(queue) if since is None else since
            polling = False
            try:
                while True:
                    remaining = end - time.monotonic()
                    if remaining <= 0 or self._wake_stamp(queue) != start:
                        return
                    if not polling and not self._polling:
                        polling = self._polling = True
                        if self._last_version < 0:
                            self._last_version = self._data_version()
                    self._changed.wait(min(remaining, _CHANGE_POLL_S) if polling else remaining)
                    if polling:
                        version = self._data_version()
                        if version != self._last_version:
                            self._last_version = version
                            self._remote_changes += 1
                            self._changed.notify_all()
            finally:
                if polling:  # hand the poll over to a thread still waiting
                    self._polling = False
                    self._changed.notify_all()

    def _data_version(self) -> int:
        try:
            return int(self._conn.execute("PRAGMA data_version").fetchone()[0])
        except sqlite3.Error as exc:
            raise _translate(exc, "queue database unreadable") from exc


class SqliteQueue:
    """One named queue in a ``SqliteBroker``'s file; implements ``imgrec.ports.Queue``."""

    def __init__(self, broker: SqliteBroker, name: str) -> None:
        self._broker = broker
        self.name = name

    def send(self, bodies: Sequence[str]) -> list[str]:
        if not bodies:
            return []
        now = time.time()
        ids = [secrets.token_hex(8) for _ in bodies]
        rows = [(self.name, mid, body, now, now) for mid, body in zip(ids, bodies, strict=True)]
        if not self._broker._group_send(_PendingSend(self.name, rows)):
            raise QueueNotFound(f"no queue named {self.name!r}")
        return ids

    def receive(
        self, max_messages: int = 1, wait_s: float = 0.0, visibility_s: float | None = None
    ) -> list[Message]:
        if max_messages < 1:
            raise ValueError("max_messages must be at least 1")
        visibility = self._broker.default_visibility_s if visibility_s is None else visibility_s
        deadline = time.monotonic() + max(0.0, wait_s)
        while True:
            touched = {self.name}  # and its dead-letter queue when messages move there
            receive_in = functools.partial(self._receive_in, max_messages=max_messages,
                                           visibility_s=visibility, touched=touched)
            with self._broker._lock:
                # Taken before the look: a change another waiter notices between this look and
                # the wait below still wakes this receiver.
                stamp = self._broker._wake_stamp(self.name)
                got = (
                    self._broker._transaction(receive_in, touched)
                    if self._may_have_visible()
                    else []
                )
            remaining = deadline - time.monotonic()
            if got or remaining <= 0:
                return got
            self._broker._wait_for_change(min(remaining, _RESCAN_S), self.name, since=stamp)

    def _may_have_visible(self) -> bool:
        """A read-only look first: an empty poll then never takes the database's write lock.

        Idle receivers (reply dispatcher, dead-letter responder, idle workers) wake on every
        commit; a write transaction each time would contend with the senders.
        """
        try:
            queue_exists, visible = self._broker._conn.execute(
                "SELECT EXISTS (SELECT 1 FROM queues WHERE name = ?),"
                " EXISTS (SELECT 1 FROM messages WHERE queue = ? AND visible_at <= ?)",
                (self.name, self.name, time.time()),
            ).fetchone()
        except sqlite3.Error as exc:
            raise _translate(exc, "queue read failed") from exc
        # A missing queue goes on to the transaction, which raises QueueNotFound.
        return bool(visible) or not queue_exists

    def _receive_in(
        self, conn: sqlite3.Connection, max_messages: int, visibility_s: float,
        touched: set[str],
    ) -> list[Message]:
        now = time.time()
        config = conn.execute(
            "SELECT dead_letter, max_receives FROM queues WHERE name = ?", (self.name,)
        ).fetchone()
        if config is None:
            raise QueueNotFound(f"no queue named {self.name!r}")
        dead_letter, max_receives = config
        received: list[Message] = []
        dead_lettered = True
        # Loop only while messages were moved to the dead-letter queue: with visibility 0 a
        # received message would otherwise be visible (and received) again in the same pass.
        while dead_lettered and len(received) < max_messages:
            dead_lettered = False
            rows = conn.execute(
                "SELECT seq, message_id, body, sent_at, receive_count FROM messages"
                " WHERE queue = ? AND visible_at <= ? ORDER BY visible_at, seq LIMIT ?",
                (self.name, now, max_messages - len(received)),
            ).fetchall()
            if not rows:
                break
            for seq, message_id, body, sent_at, count in rows:
                if dead_letter is not None and max_receives is not None and count >= max_receives:
                    conn.execute(
                        "UPDATE messages SET queue = ?, visible_at = ?, receipt = NULL"
                        " WHERE seq = ?",
                        (dead_letter, now, seq),
                    )
                    touched.add(dead_letter)
                    dead_lettered = True
                    continue
                receipt = f"{seq}.{secrets.token_hex(8)}"
                conn.execute(
                    "UPDATE messages SET receive_count = receive_count + 1, visible_at = ?,"
                    " receipt = ? WHERE seq = ?",
                    (now + visibility_s, receipt, seq),
                )
                received.append(Message(message_id, receipt, body, count + 1, sent_at))
        return received

    def delete(self, receipts: Sequence[str]) -> None:
        params = [p for p in (_parse_receipt(r) for r in receipts) if p is not None]
        if not params:
            return
        with self._broker._lock:
            self._broker._transaction(
                lambda c: c.executemany(
                    "DELETE FROM messages WHERE seq = ? AND receipt = ?", params
                ),
                set(),  # a delete makes no message visible: it wakes no receiver
            )

    def change_visibility(self, receipt: str, visibility_s: float) -> None:
        parsed = _parse_receipt(receipt)
        if parsed is None:
            return
        with self._broker._lock:
            self._broker._transaction(
                lambda c: c.execute(
                    "UPDATE messages SET visible_at = ? WHERE seq = ? AND receipt = ?",
                    (time.time() + max(0.0, visibility_s), *parsed),
                ),
                {self.name},
            )

    def depth(self) -> QueueDepth:
        now = time.time()
        with self._broker._lock:
            try:
                visible, in_flight = self._broker._conn.execute(
                    "SELECT COALESCE(SUM(visible_at <= ?), 0), COALESCE(SUM(visible_at > ?), 0)"
                    " FROM messages WHERE queue = ?",
                    (now, now, self.name),
                ).fetchone()
            except sqlite3.Error as exc:
                raise _translate(exc, "queue depth query failed") from exc
        return QueueDepth(visible=int(visible), in_flight=int(in_flight))


@dataclass
class _PendingSend:
    """One ``send`` waiting to be committed, with its outcome once it is."""

    queue: str
    rows: list[tuple[str, str, str, float, float]]
    done: bool = False
    found: bool = False
    error: BaseException | None = None


def _insert_group(conn: sqlite3.Connection, group: Sequence[_PendingSend]) -> None:
    names = {item.queue for item in group}
    found = {name for name in names
             if conn.execute("SELECT 1 FROM queues WHERE name = ?", (name,)).fetchone()}
    rows = [row for item in group if item.queue in found for row in item.rows]
    conn.executemany(
        "INSERT INTO messages (queue, message_id, body, sent_at, visible_at)"
        " VALUES (?, ?, ?, ?, ?)",
        rows,
    )
    for item in group:
        item.found = item.queue in found


def _parse_receipt(receipt: str) -> tuple[int, str] | None:
    seq, _, _token = receipt.partition(".")
    if not seq.isdigit():
        return None
    return int(seq), receipt


def _translate(exc: BaseException, what: str) -> Exception:
    text = str(exc).lower()
    if "full" in text or "readonly" in text or "read-only" in text:
        return StorageFull(f"{what}: {exc} (disk full or read-only state directory)")
    return BackendUnavailable(f"{what}: {exc}")
