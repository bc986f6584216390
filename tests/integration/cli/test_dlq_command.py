"""``imgrec dlq`` as a user runs it, on requests that really died in an embedded backend."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tests.helpers.aws_adapters import moto_fixture as moto  # noqa: F401 - a fixture
from tests.helpers.dead_letters import kill_request
from tests.helpers.wheels import stand_in_wheel

from imgrec import keys
from imgrec.aws.provision import UpOptions, open_stack
from imgrec.backend import open_backend
from imgrec.config import load_settings
from imgrec.messages import ClassifyRequest
from imgrec.ports import Message


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


@pytest.mark.aws
@pytest.mark.usefixtures("moto")
def test_on_an_aws_stack(tmp_path: Path) -> None:
    open_stack("t1", None).up(UpOptions(wheel=stand_in_wheel(tmp_path), max_receives=1))
    backend = open_backend(load_settings(backend="aws", stack="t1"))
    died = kill_request(backend)
    backend.close()

    def dlq(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "imgrec", "dlq", *args, "--backend", "aws",
                               "--stack", "t1"], capture_output=True, text=True, timeout=120)

    deadline = time.monotonic() + 30
    rows: list[dict[str, object]] = []
    while not rows:  # SQS may hide the moved message from a receive or two
        assert time.monotonic() < deadline
        listed = dlq("list", "--json")
        assert listed.returncode == 0, listed.stderr
        rows = json.loads(listed.stdout)
    assert [r["request_id"] for r in rows] == [died.request_id]
    replayed = dlq("replay", "--all")
    assert replayed.returncode == 0 and "1 replayed, 0 not." in replayed.stdout, replayed.stderr
    backend = open_backend(load_settings(backend="aws", stack="t1"))
    try:
        got: list[Message] = []
        while not got:
            assert time.monotonic() < deadline
            got = backend.requests.receive(1, wait_s=1)
        assert ClassifyRequest.decode(got[0].body).request_id == died.request_id
    finally:
        backend.close()
