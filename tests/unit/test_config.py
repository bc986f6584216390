from __future__ import annotations

from pathlib import Path

import pytest

from imgrec.config import Settings, cpu_count, load_settings
from imgrec.errors import ConfigError


def test_environment_variables_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGREC_PORT", "8080")
    monkeypatch.setenv("IMGREC_BATCH_SIZE", "4")
    monkeypatch.setenv("IMGREC_STATE_DIR", "/tmp/x")
    settings = load_settings()
    assert (settings.port, settings.batch_size, settings.state_dir) == (8080, 4, Path("/tmp/x"))


def test_flags_override_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IMGREC_PORT", "8080")
    assert load_settings(port=9090, host=None).port == 9090


def test_defaults_bind_loopback_and_scale_to_the_cores() -> None:
    settings = Settings()
    assert settings.host == "127.0.0.1" and settings.port == 3000
    assert settings.min_workers == 0 and settings.max_workers == cpu_count()


@pytest.mark.parametrize(
    "overrides",
    [{"min_workers": 5, "max_workers": 2}, {"port": 70000}, {"batch_size": 0},
     {"backend": "aws"}, {"backend": "gcp"}],
)
def test_invalid_settings_raise_config_error(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        load_settings(**overrides)


@pytest.mark.parametrize(
    ("workers", "max_workers", "threads", "expected"),
    [(None, 2, None, max(1, cpu_count() // 2)), (1, 8, None, cpu_count()), (None, 64, None, 1),
     (None, 2, 3, 3)],
)
def test_onnx_threads_share_the_cores_between_workers(
    workers: int | None, max_workers: int, threads: int | None, expected: int
) -> None:
    settings = Settings(workers=workers, max_workers=max_workers, worker_threads=threads)
    assert settings.threads_per_worker() == expected


def test_idle_workers_long_poll_sqs_but_wake_often_on_sqlite() -> None:
    from imgrec.aws.sqs_queue import wait_seconds

    aws = load_settings(backend="aws", stack="demo")
    # SQS rounds a wait to whole seconds: under half a second would be a busy loop of calls.
    assert wait_seconds(aws.poll_wait_s) >= 1
    # A drained local worker leaves when its receive returns: within a fraction of a second.
    assert Settings().poll_wait_s < aws.poll_wait_s
