"""``imgrec classify`` as a user runs it: a real process, the real model."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.conftest import DevPhoto


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "imgrec", "classify", *args],
                          capture_output=True, text=True, timeout=120)


def test_json_output_has_one_object_per_file(dev_photos: list[DevPhoto]) -> None:
    photos = dev_photos[:3]
    proc = _run("--json", *(str(p.path) for p in photos))
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(line) for line in proc.stdout.splitlines()]
    assert [line["file"] for line in lines] == [str(p.path) for p in photos]
    for line in lines:
        assert set(line) >= {"file", "label", "class_index", "top5"}
        assert len(line["top5"]) == 5
        assert set(line["top5"][0]) == {"label", "class_index", "probability"}
        assert line["top5"][0]["label"] == line["label"]


def test_human_output_lists_top5_with_percentages(dev_photos: list[DevPhoto]) -> None:
    brambling = next(p for p in dev_photos if p.name == "brambling")
    proc = _run(str(brambling.path), "--model", "efficientnet_lite0")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == str(brambling.path)
    assert len(lines) == 6 and lines[1].split()[0] == "brambling" and lines[1].endswith("%")


def test_an_unreadable_file_is_reported_and_the_rest_still_classified(
    dev_photos: list[DevPhoto], tmp_path: object
) -> None:
    proc = _run("--json", "/nonexistent.jpg", str(dev_photos[0].path))
    assert proc.returncode == 1
    assert "nonexistent.jpg" in proc.stderr
    assert len(proc.stdout.splitlines()) == 1


def test_an_unknown_model_says_which_exist() -> None:
    proc = _run("--model", "resnet9000", "x.jpg")
    assert proc.returncode == 2
    assert "mobilenet_v2" in proc.stderr
