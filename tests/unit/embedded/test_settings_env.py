from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr

from imgrec.config import Settings
from imgrec.embedded.process_fleet import settings_env


def test_workers_get_the_same_settings_but_never_the_api_key() -> None:
    settings = Settings(state_dir=Path("/tmp/s"), batch_size=7, api_key=SecretStr("s3cret"))
    env = settings_env(settings)
    assert env["IMGREC_BATCH_SIZE"] == "7" and env["IMGREC_STATE_DIR"] == "/tmp/s"
    assert "IMGREC_API_KEY" not in env
    assert "s3cret" not in "".join(env.values())
    again: dict[str, object] = {k[7:].lower(): v for k, v in env.items()}
    assert Settings(**again).batch_size == 7  # type: ignore[arg-type]
