"""Every setting is a flag of ``serve`` and ``worker``; the README table is the generated one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgrec.cli import app
from imgrec.commands.settings_flags import settings_table
from imgrec.config import Settings

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_table_is_the_generated_one() -> None:
    text = README.read_text()
    found = re.search(r"<!-- settings-table:start -->\n(.*?)<!-- settings-table:end -->", text,
                      re.DOTALL)
    assert found, "README lacks the settings-table markers"
    assert found.group(1) == settings_table(), "run `imgrec settings --markdown` into the README"


@pytest.mark.parametrize("command", ["serve", "worker"])
def test_help_lists_every_setting_with_its_variable(command: str) -> None:
    result = CliRunner().invoke(app, [command, "--help"], env={"COLUMNS": "400"})
    assert result.exit_code == 0, result.output
    for name in Settings.model_fields:
        assert f"--{name.replace('_', '-')}" in result.output
        assert f"IMGREC_{name.upper()}" in result.output


def test_a_flag_beats_the_environment_and_a_bad_value_is_a_clear_error() -> None:
    runner = CliRunner()
    shown = runner.invoke(app, ["settings", "--batch-size", "3"],
                          env={"IMGREC_BATCH_SIZE": "5", "IMGREC_PORT": "4001"})
    assert shown.exit_code == 0, shown.output
    assert "batch_size = 3" in shown.output and "port = 4001" in shown.output
    bad = runner.invoke(app, ["settings", "--min-workers", "5", "--max-workers", "2"])
    assert bad.exit_code == 2
    assert "min_workers (5) is above max_workers (2)" in bad.output


def test_the_api_key_is_never_shown() -> None:
    shown = CliRunner().invoke(app, ["settings"], env={"IMGREC_API_KEY": "s3cret-value"})
    assert shown.exit_code == 0
    assert "s3cret-value" not in shown.output and "api_key = (set)" in shown.output
