"""CPU seconds used by a process and all its descendants, from /proc (Linux)."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> tuple[int, float] | None:
    """(parent pid, utime + stime + cutime + cstime in seconds), or None if the process is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = raw[raw.rindex(")") + 2 :].split()
    # After the command: state ppid ... utime(12) stime(13) cutime(14) cstime(15), 0-based here.
    ppid = int(fields[1])
    ticks = sum(int(fields[i]) for i in (11, 12, 13, 14))
    return ppid, ticks / _TICKS


def process_cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` itself (utime + stime), 0.0 if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = raw[raw.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS


def tree_cpu_s(root: int) -> float:
    """CPU seconds of ``root`` and every live descendant (reaped children count via cutime)."""
    stats: dict[int, tuple[int, float]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                stats[int(entry.name)] = stat
    children: dict[int, list[int]] = {}
    for pid, (ppid, _) in stats.items():
        children.setdefault(ppid, []).append(pid)
    total, todo = 0.0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            total += stats[pid][1]
        todo.extend(children.get(pid, []))
    return total


def _descendants(root: int) -> list[int]:
    """``root`` and every live descendant, from the parent pids in /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = _stat(int(entry.name))
            if stat is not None:
                children.setdefault(stat[0], []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def _rollup_kib(pid: int) -> tuple[int, int] | None:
    """(Rss, Pss) in KiB from /proc/<pid>/smaps_rollup, or None if the process is gone."""
    try:
        lines = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
    except OSError:
        return None
    values = {}
    for line in lines:
        name, _, rest = line.partition(":")
        if name in ("Rss", "Pss"):
            values[name] = int(rest.split()[0])
    if "Rss" not in values or "Pss" not in values:
        return None
    return values["Rss"], values["Pss"]


def tree_memory_by_process(root: int) -> dict[int, tuple[str, int, int]]:
    """Per live process of the tree: (command line, RSS, PSS), bytes."""
    out: dict[int, tuple[str, int, int]] = {}
    for pid in _descendants(root):
        rollup = _rollup_kib(pid)
        try:
            cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if rollup is not None:
            out[pid] = (cmd.strip(), rollup[0] * 1024, rollup[1] * 1024)
    return out


def tree_memory(root: int) -> tuple[int, int]:
    """(sum of RSS, sum of PSS) in bytes of ``root`` and every live descendant.

    RSS counts a page shared by several processes (shared libraries, pages a forked child
    still shares with its parent) once per process, as the issue's numbers do; PSS divides
    each shared page among the processes that map it, so the PSS sum is the memory the tree
    really holds.
    """
    rss = pss = 0
    for pid in _descendants(root):
        rollup = _rollup_kib(pid)
        if rollup is not None:
            rss += rollup[0] * 1024
            pss += rollup[1] * 1024
    return rss, pss
