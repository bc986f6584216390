"""``imgrec loadgen`` against a real ``imgrec serve`` on 127.0.0.1 (small counts)."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.helpers.server import RunningServer, free_port, run_server
from typer.testing import CliRunner

from imgrec.cli import app
from imgrec.model.classifier import load_classifier

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    with run_server(tmp_path_factory.mktemp("loadgen") / "state", "--max-workers", "2") as s:
        yield s


def _loadgen(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["loadgen", *args, "--quiet"])
    return result.exit_code, result.output


def test_every_dev_photo_once_gives_the_bare_models_correct_count(
    server: RunningServer, dev_images: Path, tmp_path: Path
) -> None:
    classifier = load_classifier("mobilenet_v2", threads=1)
    with open(dev_images / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    outcomes = classifier.classify_images([(dev_images / r["file"]).read_bytes() for r in rows])
    bare_correct = sum(1 for o, r in zip(outcomes, rows, strict=True)
                       if not isinstance(o, Exception) and o.class_index == int(r["class_index"]))

    out_json, out_png = tmp_path / "run.json", tmp_path / "run.png"
    code, output = _loadgen(
        server.url + "/", "--images", str(dev_images), "--requests", str(len(rows)),
        "--concurrency", "16", "--expected", str(dev_images / "labels.csv"),
        "--json", str(out_json), "--plot", str(out_png),
    )
    assert code == 0, output
    assert f"{len(rows)} sent, {len(rows)} answered, 0 errors" in output
    assert f"{bare_correct} correct, {len(rows) - bare_correct} wrong, 0 unchecked" in output
    doc = json.loads(out_json.read_text())
    assert doc["summary"]["answered"] == len(rows)
    assert doc["config"]["api"] == "json"
    assert {r["file"] for r in doc["requests"]} == {r["file"] for r in rows}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_course_arguments_and_label_csv_on_the_plain_api(
    server: RunningServer, dev_images: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "images"
    folder.mkdir()
    with open(dev_images / "labels.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))[:6]
    classifier = load_classifier("mobilenet_v2", threads=1)
    answers = classifier.classify_images([(dev_images / r["file"]).read_bytes() for r in rows])
    predictions = tmp_path / "predictions.csv"
    lines = ["Image,Results"]
    for i, (row, answer) in enumerate(zip(rows, answers, strict=True)):
        (folder / f"test_{i}.jpg").write_bytes((dev_images / row["file"]).read_bytes())
        assert not isinstance(answer, Exception)
        # One deliberately wrong expectation; the rest are the model's own labels.
        lines.append(f"test_{i},{'not a label' if i == 0 else answer.label}")
    predictions.write_text("\n".join(lines) + "\n")

    code, output = _loadgen(
        "--url", server.url + "/", "--image_folder", str(folder), "--num_request", "6",
        "--prediction_file", str(predictions), "--field", "inputFile", "-c", "3",
    )
    assert code == 0, output
    assert "(plain API)" in output
    assert "5 correct, 1 wrong, 0 unchecked" in output


def test_open_loop_for_a_duration(server: RunningServer, dev_images: Path) -> None:
    code, output = _loadgen(server.url, "--images", str(dev_images), "--rate", "10",
                            "--duration", "1")
    assert code == 0, output
    assert "10 sent, 10 answered, 0 errors" in output


def test_http_errors_are_counted_by_status(server: RunningServer, dev_images: Path) -> None:
    code, output = _loadgen(server.url + "/no-such-page", "--images", str(dev_images),
                            "--requests", "3")
    assert code == 1
    assert "3 sent, 0 answered, 3 errors" in output
    assert "http_404 3" in output or "http_405 3" in output


def test_refused_connections_are_counted_not_raised(dev_images: Path) -> None:
    code, output = _loadgen(f"http://127.0.0.1:{free_port()}/", "--images", str(dev_images),
                            "--requests", "4", "-c", "2")
    assert code == 1
    assert "errors       connection 4" in output


def test_timeouts_are_counted_not_retried(tmp_path: Path, dev_images: Path) -> None:
    # No workers: nothing is answered, so every request times out on the client.
    with run_server(tmp_path / "state", "--workers", "0") as idle:
        code, output = _loadgen(idle.url + "/", "--images", str(dev_images), "--requests", "3",
                                "-c", "3", "--timeout", "0.5")
    assert code == 1
    assert "errors       timeout 3" in output
