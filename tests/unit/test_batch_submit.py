"""Submitting a batch part on the embedded backend: stored and queued a group at a time."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import DevPhoto

from imgrec import keys
from imgrec.backend import open_backend
from imgrec.batches.submit import INTAKE_GROUP, NewItem, submit_part
from imgrec.config import Settings


def test_a_part_is_taken_in_a_group_at_a_time_with_the_hook_before_each(
        tmp_path: Path, dev_photos: list[DevPhoto]) -> None:
    backend = open_backend(Settings(state_dir=tmp_path))
    assert backend.bulk is not None
    items = [NewItem(f"{i}.jpg", dev_photos[i % 5].path.read_bytes())
             for i in range(2 * INTAKE_GROUP + 3)]
    items.append(NewItem("empty.jpg", None, "empty_file", "The file is empty (0 bytes)."))
    queued_before_hook: list[int] = []
    part = submit_part(backend, backend.bulk, "b1", "p1", items, max_pixels=10**8, room=100,
                       before_group=lambda: queued_before_hook.append(
                           backend.bulk.depth().total))  # type: ignore[union-attr]
    assert queued_before_hook == [0, INTAKE_GROUP, 2 * INTAKE_GROUP]
    assert backend.bulk.depth().total == 2 * INTAKE_GROUP + 3
    assert len(part.items) == len(items)
    for item in part.items[:-1]:
        assert backend.store.exists(keys.input_key(item.request_id))
    assert backend.store.exists(keys.result_key(part.items[-1].request_id))  # refused at once
