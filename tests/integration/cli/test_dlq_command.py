"""``imgrec dlq`` as a user runs it, on requests that really died in an embedded backend."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers.dead_letters import kill_request

from imgrec import keys
from imgrec.backend import open_backend
from imgrec.config import load_settings
from imgrec.messages import ClassifyRequest


def _dlq(state: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imgrec", "dlq", *args, "--state-dir",
                           str(state), "--max-receives", "1"],
                          capture_output=True, text=True, timeout=120)


def test_list_show_replay_and_purge(tmp_path: Path) -> None:
    state = tmp_path / "state"
    backend = open_backend(load_settings(state_dir=state, max_receives=1))
    kept, lost = kill_request(backend), kill_request(backend)
    backend.store.delete(lost.key)  # its image expired meanwhile
    backend.close()

    listed = _dlq(state, "list")  # no web tier ran: the command answers the dead letters
    assert listed.returncode == 0, listed.stderr
    assert kept.request_id in listed.stdout and lost.request_id in listed.stdout
    assert "2 dead letter(s)" in listed.stdout
    rows = {r["request_id"]: r for r in json.loads(_dlq(state, "list", "--json").stdout)}
    assert rows[kept.request_id]["input_present"] is True
    assert rows[lost.request_id]["input_present"] is False
    assert rows[kept.request_id]["receive_count"] == 1

    shown = _dlq(state, "show", kept.request_id)
    assert shown.returncode == 0, shown.stderr
    assert "why:         It was delivered 1 time and never finished" in shown.stdout

    replayed = _dlq(state, "replay", kept.request_id)
    assert replayed.returncode == 0, replayed.stderr
    gone = _dlq(state, "replay", lost.request_id)
    assert gone.returncode == 1 and "is gone" in gone.stderr
    unknown = _dlq(state, "show", keys.new_request_id())
    assert unknown.returncode == 1 and "no dead letter" in unknown.stderr

    backend = open_backend(load_settings(state_dir=state, max_receives=1))
    try:
        [msg] = backend.requests.receive(10, wait_s=1)
        assert ClassifyRequest.decode(msg.body).request_id == kept.request_id
        assert not backend.store.exists(keys.result_key(kept.request_id))
    finally:
        backend.close()

    purged = _dlq(state, "purge", "--yes")
    assert purged.returncode == 0 and "dropped 2" in purged.stdout
    assert "No dead letters." in _dlq(state, "list").stdout
