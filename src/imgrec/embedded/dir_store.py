"""An ``ObjectStore`` in a directory: one file per key, atomic replace on put.

A put writes a temporary file and renames it into place: a reader, or a process killed midway,
never sees a partial object. With ``durable`` (the default) the file is also fsynced before the
rename and its directory after it, so an object whose put returned survives a power cut too;
keys under ``volatile_prefixes`` (heartbeats: rewritten every few seconds, worthless after a
reboot) skip the fsyncs.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

from ..errors import BackendUnavailable, InvalidKey, ObjectNotFound, StorageFull
from ..keys import PARTIAL_SUFFIX, validate_key

_FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES}
_MAX_REMEMBERED_DIRS = 1024
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


class DirectoryStore:
    """Objects as files under ``root``; keys map to relative paths, validated against escape.

    Example::

        store = DirectoryStore(Path(".imgrec/objects"))
        store.put("inputs/abc", b"...")
    """

    def __init__(self, root: Path, *, durable: bool = True,
                 volatile_prefixes: tuple[str, ...] = ()) -> None:
        self.root = root.resolve()
        self.durable = durable
        self.volatile_prefixes = volatile_prefixes
        self._inside_dirs: set[str] = set()
        self._dir_syncs = DirectorySyncs(_fsync_dir)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _translate(exc, f"cannot create store directory {self.root}") from exc

    def _path(self, key: str) -> Path:
        path = self.root.joinpath(*validate_key(key).parts)
        # Symlinks inside the root could still point outside it. A directory, once seen to be
        # inside, is remembered (resolving every path costs a syscall per component): whoever
        # can swap directories of the state dir for symlinks later can write there anyway.
        parent = str(path.parent)
        if parent not in self._inside_dirs or path.is_symlink():
            if not path.resolve().is_relative_to(self.root):
                raise InvalidKey(f"object key escapes the store root: {key!r}")
            if path.parent.is_dir() and len(self._inside_dirs) < _MAX_REMEMBERED_DIRS:
                self._inside_dirs.add(parent)
        return path

    def put(self, key: str, data: bytes) -> None:
        path = self._path(key)
        try:
            tmp, sync = self._write_partial(key, path, data)
            try:
                os.replace(tmp, path)
                if sync:
                    self._dir_syncs.sync(path.parent)
            except BaseException:
                _remove_quietly(tmp)
                raise
        except OSError as exc:
            raise _translate(exc, f"cannot write object {key!r}") from exc

    def put_if_absent(self, key: str, data: bytes) -> bool:
        # The object is written in full under a temporary name first, then hard-linked into
        # place: link() fails if the name exists, so readers never see a partial object and
        # of two racing writers exactly one wins.
        path = self._path(key)
        try:
            tmp, sync = self._write_partial(key, path, data)
            try:
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    return False
                if sync:
                    self._dir_syncs.sync(path.parent)
                return True
            finally:
                _remove_quietly(tmp)
        except OSError as exc:
            raise _translate(exc, f"cannot write object {key!r}") from exc

    def put_many(self, items: Sequence[tuple[str, bytes]]) -> None:
        # Files written first and synced after, in one thread, and one fsync per directory:
        # cheaper than a put each, and a batch part's hundred puts no longer run eight at a
        # time in front of every interactive upload's own fsyncs.
        def replace(tmp: str, path: Path) -> bool:
            os.replace(tmp, path)
            return True

        self._place_many(items, replace)

    def put_many_if_absent(self, items: Sequence[tuple[str, bytes]]) -> list[bool]:
        """``put_if_absent`` of each ``(key, data)``, in order: whether each was stored.

        The same durability as one call per item, with one directory fsync per directory for
        all of them instead of one per object (a worker stores a batch's results at once).
        Every key is checked before anything is written.
        """
        def link(tmp: str, path: Path) -> bool:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
            finally:
                _remove_quietly(tmp)
            return True

        return self._place_many(items, link)

    def _place_many(self, items: Sequence[tuple[str, bytes]],
                    place: Callable[[str, Path], bool]) -> list[bool]:
        """Every object in a temporary file, their data synced, each ``place``d (renamed or
        linked into its key: whether it was stored), then each directory synced once."""
        paths = [self._path(key) for key, _ in items]
        written: list[tuple[str, Path]] = []
        synced = False
        try:
            try:
                for (key, data), path in zip(items, paths, strict=True):
                    tmp, sync = self._write_partial(key, path, data, sync_now=False)
                    written.append((tmp, path))
                    synced = synced or sync
                if synced:
                    _sync_files([tmp for tmp, _ in written])
                stored = [place(tmp, path) for tmp, path in written]
                if synced:
                    for directory in sorted({path.parent for path, was in zip(
                            paths, stored, strict=True) if was}):
                        self._dir_syncs.sync(directory)
            except BaseException:
                for tmp, _ in written:
                    _remove_quietly(tmp)
                raise
        except OSError as exc:
            raise _translate(exc, f"cannot write {len(items)} objects") from exc
        return stored

    def _write_partial(self, key: str, path: Path, data: bytes, *,
                       sync_now: bool = True) -> tuple[str, bool]:
        """``data`` in a temporary file beside ``path``: (its name, whether it needs a sync);
        synced at once if durable, unless ``sync_now`` is False (the caller syncs it)."""
        if str(path.parent) not in self._inside_dirs:
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd, tmp = _create_partial(path)
        except FileNotFoundError:  # a remembered directory was removed meanwhile
            self._inside_dirs.discard(str(path.parent))
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = _create_partial(path)
        sync = self.durable and not key.startswith(self.volatile_prefixes)
        try:
            try:
                _write_all(fd, data)
                if sync and sync_now:
                    os.fsync(fd)
            finally:
                os.close(fd)
        except BaseException:
            _remove_quietly(tmp)
            raise
        return tmp, sync

    def get(self, key: str) -> bytes:
        path = self._path(key)
        try:
            return path.read_bytes()
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise ObjectNotFound(key) from exc
        except OSError as exc:
            raise _translate(exc, f"cannot read object {key!r}") from exc

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            path.unlink(missing_ok=True)
        except IsADirectoryError:
            pass
        except OSError as exc:
            raise _translate(exc, f"cannot delete object {key!r}") from exc

    def list(self, prefix: str = "") -> Iterator[str]:
        # Walk only the deepest directory the prefix names, not the whole store.
        base = prefix.rpartition("/")[0]
        start = self.root.joinpath(*validate_key(base).parts) if base else self.root
        keys: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(start):
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.endswith(PARTIAL_SUFFIX):
                    continue
                key = name if rel_dir == "." else f"{rel_dir}/{name}"
                if key.startswith(prefix):
                    keys.append(key)
        yield from sorted(keys)


def _translate(exc: OSError, what: str) -> Exception:
    if exc.errno in _FULL_ERRNOS:
        return StorageFull(f"{what}: {exc.strerror} (disk full or read-only state directory)")
    return BackendUnavailable(f"{what}: {exc}")


def _sync_files(files: Sequence[str]) -> None:
    """Make the data of ``files`` durable, one after the other. (Not ``syncfs``: it would also
    flush whatever else is dirty on the file system, and interactive fsyncs would queue behind
    that.)"""
    for name in files:
        fd = os.open(name, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _create_partial(path: Path) -> tuple[int, str]:
    """A new file ``.<name>.<random><PARTIAL_SUFFIX>`` beside ``path``, opened for writing.

    As ``tempfile.mkstemp`` (exclusive create, no symlink followed, mode 0600) at a third of
    its cost: the name needs no secret, only to be new, which ``O_EXCL`` checks.
    """
    for _ in range(100):
        tmp = f"{path.parent}/.{path.name}.{random.getrandbits(48):012x}{PARTIAL_SUFFIX}"
        try:
            return os.open(tmp, _CREATE_FLAGS, 0o600), tmp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(path))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


class DirectorySyncs:
    """Directory fsyncs shared by the threads that need one at the same time (group commit).

    A caller's rename is in the directory before it calls ``sync``, so any fsync of the
    directory that starts after the call makes it durable. Callers that arrive while one runs
    wait for it to end and share the next: under load the web tier's upload threads, which all
    write to ``inputs/``, make one directory fsync per group instead of one each.
    """

    def __init__(self, fsync: Callable[[Path], None]) -> None:
        self._fsync = fsync
        self._cond = threading.Condition()
        self._started: dict[Path, int] = {}
        self._finished: dict[Path, int] = {}
        self._running: set[Path] = set()

    def sync(self, directory: Path) -> None:
        with self._cond:
            wanted = self._started.get(directory, 0) + 1  # the next sync to start covers us
            while self._finished.get(directory, 0) < wanted:
                if directory in self._running:
                    self._cond.wait()
                    continue
                number = self._started[directory] = self._started.get(directory, 0) + 1
                self._running.add(directory)
                self._cond.release()
                try:
                    self._fsync(directory)
                finally:
                    self._cond.acquire()
                    self._running.discard(directory)
                    self._cond.notify_all()
                self._finished[directory] = number


def _fsync_dir(directory: Path) -> None:
    """Make a rename in ``directory`` durable (the new name is in the directory's data)."""
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
