"""The autoscaler's memory in a real directory store: survives restarts, shrugs off garbage."""

from __future__ import annotations

from pathlib import Path

from imgrec import keys
from imgrec.autoscale.memory import EstimateMemory
from imgrec.embedded.dir_store import DirectoryStore


def test_remembered_values_survive_a_new_memory(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "objects")
    now = [0.0]
    memory = EstimateMemory(store, "mobilenet_v2", save_every_s=30, clock=lambda: now[0])
    assert memory.remember("local", rate_per_worker=200.0, boot_s=0.3)
    assert not memory.remember("local", rate_per_worker=100.0, boot_s=0.3)  # too soon
    now[0] = 31
    assert not memory.remember("local", rate_per_worker=None, boot_s=None)  # nothing measured
    estimate = EstimateMemory(store, "mobilenet_v2").estimate("local")
    assert (estimate.rate_per_worker, estimate.boot_s) == (200.0, 0.3)
    assert EstimateMemory(store, "efficientnet_lite0").estimate("local").boot_s is None


def test_an_unreadable_document_means_starting_afresh(tmp_path: Path) -> None:
    store = DirectoryStore(tmp_path / "objects")
    store.put(keys.ESTIMATES_KEY, b"not json")
    memory = EstimateMemory(store, "mobilenet_v2", save_every_s=0)
    assert memory.estimate("local").rate_per_worker is None
    assert memory.remember("local", rate_per_worker=50.0, boot_s=None)
    assert EstimateMemory(store, "mobilenet_v2").estimate("local").rate_per_worker == 50.0
