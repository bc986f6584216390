"""The real ONNX models on the shared dev photos."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from tests.helpers.paths import MODEL_FILES, DevImage, dev_images

from imgrec.commands.classify import classify_command
from imgrec.errors import ImageError, ModelError
from imgrec.model.classifier import Classification, Classifier, load_classifier
from imgrec.model.preprocess import load_input
from imgrec.model.spec import BUILTIN_MODELS, ModelSpec, resolve_model

MIN_TOP1 = 0.75


@pytest.fixture(scope="module")
def photos() -> list[DevImage]:
    found = dev_images()
    assert len(found) == 100
    return found


@pytest.fixture(scope="module")
def mobilenet() -> Classifier:
    return load_classifier("mobilenet_v2", threads=2)


@pytest.fixture(scope="module")
def mobilenet_results(
    mobilenet: Classifier, photos: list[DevImage]
) -> list[Classification | ImageError]:
    return mobilenet.classify_images([p.path.read_bytes() for p in photos])


def top1(results: list[Classification | ImageError], photos: list[DevImage]) -> float:
    hits = [
        isinstance(r, Classification) and r.class_index == p.class_index
        for r, p in zip(results, photos, strict=True)
    ]
    return sum(hits) / len(photos)


@pytest.mark.parametrize("name", BUILTIN_MODELS)
def test_builtin_specs_load(name: str) -> None:
    spec = resolve_model(name)
    assert spec.name == name
    assert spec.onnx_path.is_file()
    assert (spec.input_size, spec.resize) == (224, 256)
    assert len(spec.labels) == 1000
    assert spec.labels[0] == "tench" and spec.labels[20] == "water ouzel"
    assert Classifier(spec, threads=1).spec is spec


def test_efficientnet_takes_minus_one_to_one() -> None:
    spec = resolve_model("efficientnet_lite0")
    assert spec.mean == (0.5, 0.5, 0.5) and spec.std == (0.5, 0.5, 0.5)


def test_mobilenet_accuracy_on_dev_photos(
    mobilenet_results: list[Classification | ImageError], photos: list[DevImage]
) -> None:
    assert top1(mobilenet_results, photos) >= MIN_TOP1


def test_efficientnet_accuracy_on_dev_photos(photos: list[DevImage]) -> None:
    classifier = load_classifier("efficientnet_lite0", threads=2)
    results = classifier.classify_images([p.path.read_bytes() for p in photos])
    assert top1(results, photos) >= MIN_TOP1


def test_result_shape(mobilenet_results: list[Classification | ImageError]) -> None:
    result = mobilenet_results[0]
    assert isinstance(result, Classification)
    assert len(result.top5) == 5
    probs = [p.probability for p in result.top5]
    assert probs == sorted(probs, reverse=True)
    assert 0 < sum(probs) <= 1 + 1e-9
    as_dict = result.to_dict()
    assert set(as_dict) == {"label", "class_index", "probability", "top5"}
    assert as_dict["top5"][0] == {
        "label": result.label,
        "class_index": result.class_index,
        "probability": result.probability,
    }
    json.dumps(as_dict)


def test_batch_equals_single(
    mobilenet: Classifier,
    mobilenet_results: list[Classification | ImageError],
    photos: list[DevImage],
) -> None:
    for photo, batched in list(zip(photos, mobilenet_results, strict=True))[:8]:
        [single] = mobilenet.classify_images([photo.path.read_bytes()])
        assert isinstance(single, Classification) and isinstance(batched, Classification)
        assert [p.class_index for p in single.top5] == [p.class_index for p in batched.top5]
        np.testing.assert_allclose(
            [p.probability for p in single.top5],
            [p.probability for p in batched.top5],
            atol=1e-5,
        )


def test_classify_batch_matches_classify_images(
    mobilenet: Classifier, photos: list[DevImage]
) -> None:
    data = [p.path.read_bytes() for p in photos[:4]]
    batch = np.stack([load_input(d, mobilenet.spec) for d in data])
    assert mobilenet.classify_batch(batch) == mobilenet.classify_images(data)
    assert mobilenet.classify_batch(batch[:0]) == []
    with pytest.raises(ValueError, match="shape"):
        mobilenet.classify_batch(batch[:, :, :100])


def test_bad_images_come_back_in_place(mobilenet: Classifier, photos: list[DevImage]) -> None:
    good = photos[0].path.read_bytes()
    results = mobilenet.classify_images([b"not an image", good, good[: len(good) // 2]])
    assert isinstance(results[0], ImageError) and results[0].code == "not_an_image"
    assert isinstance(results[1], Classification)
    assert results[1].class_index == photos[0].class_index
    assert isinstance(results[2], ImageError) and results[2].code == "corrupt_image"
    assert mobilenet.classify_images([]) == []


# --- user-supplied models ----------------------------------------------------------------------


def user_model(tmp_path: Path, label_count: int, **sidecar: object) -> Path:
    model = tmp_path / "my_model.onnx"
    shutil.copyfile(MODEL_FILES / "mobilenet_v2.onnx", model)
    (tmp_path / "labels.txt").write_text("".join(f"thing {i}\n" for i in range(label_count)))
    sidecar.setdefault("labels", "labels.txt")
    (tmp_path / "my_model.onnx.json").write_text(json.dumps(sidecar))
    return model


def test_user_onnx_with_sidecar(
    tmp_path: Path, mobilenet_results: list[Classification | ImageError], photos: list[DevImage]
) -> None:
    path = user_model(tmp_path, 1000, input_size=224, resize=256)
    classifier = load_classifier(str(path), threads=1)
    assert classifier.spec.name == "my_model"
    [result] = classifier.classify_images([photos[0].path.read_bytes()])
    expected = mobilenet_results[0]
    assert isinstance(result, Classification) and isinstance(expected, Classification)
    assert result.class_index == expected.class_index
    assert result.label == f"thing {expected.class_index}"


def test_user_onnx_without_sidecar_uses_imagenet_defaults(tmp_path: Path) -> None:
    path = tmp_path / "plain.onnx"
    shutil.copyfile(MODEL_FILES / "mobilenet_v2.onnx", path)
    spec = resolve_model(str(path))
    assert spec == ModelSpec("plain", path)


def test_wrong_label_count_is_a_model_error(tmp_path: Path) -> None:
    path = user_model(tmp_path, 10)
    with pytest.raises(ModelError, match="1000 classes .* 10 names"):
        load_classifier(str(path))


@pytest.mark.parametrize(
    ("sidecar", "message"),
    [
        ({"colour": "red"}, "unknown keys"),
        ({"input_size": "224"}, "positive integer"),
        ({"mean": [0.5, 0.5]}, "3 numbers"),
        ({"labels": "missing.txt"}, "cannot read label file"),
        ({"input_size": 300, "resize": 256}, "input_size <= resize"),
    ],
)
def test_bad_sidecar_is_a_model_error(
    tmp_path: Path, sidecar: dict[str, object], message: str
) -> None:
    path = user_model(tmp_path, 1000, **sidecar)
    with pytest.raises(ModelError, match=message):
        resolve_model(str(path))


def test_input_size_the_model_cannot_take(tmp_path: Path) -> None:
    path = user_model(tmp_path, 1000, input_size=200)  # the graph is fixed at 224x224
    with pytest.raises(ModelError, match="input shape"):
        load_classifier(str(path))


def test_unknown_name_lists_builtins() -> None:
    with pytest.raises(ModelError, match="mobilenet_v2, efficientnet_lite0"):
        resolve_model("resnet9000")


def test_missing_and_broken_files(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="not found"):
        resolve_model(str(tmp_path / "nope.onnx"))
    broken = tmp_path / "broken.onnx"
    broken.write_bytes(b"this is not protobuf")
    with pytest.raises(ModelError, match="cannot load ONNX model"):
        load_classifier(str(broken))


def test_threads_must_be_positive() -> None:
    with pytest.raises(ModelError, match="threads"):
        load_classifier("mobilenet_v2", threads=0)


# --- imgrec classify ---------------------------------------------------------------------------


def test_classify_command_human(
    photos: list[DevImage], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a photo")
    paths = [photos[1].path, junk, tmp_path / "missing.jpg", photos[2].path]
    assert classify_command(paths, threads=1) == 1
    out, err = capsys.readouterr()
    blocks = out.strip().split("\n" + str(photos[2].path))
    assert blocks[0].splitlines()[0] == str(photos[1].path)
    assert len(blocks[0].splitlines()) == 6 and blocks[0].rstrip().endswith("%")
    assert f"error: {junk}" in err and "missing.jpg" in err


def test_classify_command_json(photos: list[DevImage], capsys: pytest.CaptureFixture[str]) -> None:
    assert classify_command([p.path for p in photos[:3]], as_json=True, threads=1) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["file"] for line in lines] == [str(p.path) for p in photos[:3]]
    assert {"label", "class_index", "top5"} <= set(lines[0])
    assert len(lines[0]["top5"]) == 5
    assert set(lines[0]["top5"][0]) == {"label", "class_index", "probability"}


def test_classify_command_bad_model(capsys: pytest.CaptureFixture[str]) -> None:
    assert classify_command([], model="resnet9000") == 2
    assert "unknown model" in capsys.readouterr().err


def _rss_bytes() -> int:
    return int(Path("/proc/self/status").read_text().split("VmRSS:")[1].split()[0]) * 1024


def test_runs_of_one_image_answer_the_same_and_hold_less_memory(
    photos: list[DevImage],
) -> None:
    images = [p.path.read_bytes() for p in photos[:8]]
    growth: dict[int | None, int] = {}
    results: dict[int | None, list[Classification | ImageError]] = {}
    for run_batch in (1, None):  # None: the whole batch in one ONNX run
        classifier = load_classifier("mobilenet_v2", threads=1, run_batch=run_batch)
        before = _rss_bytes()
        results[run_batch] = classifier.classify_images(images)
        growth[run_batch] = _rss_bytes() - before
    for sliced, whole in zip(results[1], results[None], strict=True):
        assert isinstance(sliced, Classification) and isinstance(whole, Classification)
        assert [p.class_index for p in sliced.top5] == [p.class_index for p in whole.top5]
        assert sliced.probability == pytest.approx(whole.probability, abs=1e-5)
    # One image's activations instead of eight's (about 12 MB instead of about 90 MB).
    assert growth[1] < growth[None] / 2, growth


def test_run_batch_must_be_positive() -> None:
    with pytest.raises(ModelError, match="run_batch"):
        load_classifier("mobilenet_v2", run_batch=0)


def test_a_cached_optimised_graph_answers_the_same_and_a_broken_one_is_remade(
    tmp_path: Path, photos: list[DevImage], mobilenet_results: list[Classification | ImageError]
) -> None:
    from imgrec.model.optimized import cached_graph_path

    cache = tmp_path / "graphs"
    images = [p.path.read_bytes() for p in photos[:10]]
    cached = cached_graph_path(resolve_model("mobilenet_v2").onnx_path, cache)
    load_classifier("mobilenet_v2", threads=1, graph_cache=cache)  # makes the cached graph
    assert cached.is_file() and [p.name for p in cache.iterdir()] == [cached.name]
    made = cached.stat().st_mtime_ns
    from_cache = load_classifier("mobilenet_v2", threads=1, graph_cache=cache)
    assert cached.stat().st_mtime_ns == made  # loaded, not made again
    for got, want in zip(from_cache.classify_images(images), mobilenet_results[:10],
                         strict=True):
        assert isinstance(got, Classification) and isinstance(want, Classification)
        assert [p.class_index for p in got.top5] == [p.class_index for p in want.top5]
        assert got.probability == pytest.approx(want.probability, abs=1e-5)

    cached.write_bytes(b"not a graph")
    remade = load_classifier("mobilenet_v2", threads=1, graph_cache=cache)
    assert cached.stat().st_size > 1_000_000
    assert remade.classify_images(images[:1])[0] == from_cache.classify_images(images[:1])[0]


def test_an_unwritable_graph_cache_only_costs_the_speed_up(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache directory would be")
    classifier = load_classifier("mobilenet_v2", threads=1, graph_cache=blocked / "graphs")
    assert classifier.classify_batch(np.zeros((1, 3, 224, 224), np.float32))
