"""``imgrec loadgen`` argument checks (no server needed: they fail before any request)."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from imgrec.cli import app


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--images", "."], "give the service URL"),
        (["ftp://x/", "--images", "."], "must start with http://"),
        (["http://x/"], "give a folder of images"),
        (["http://x/", "--images", ".", "--field", "photo"], "--field must be myfile or inputFile"),
        (["http://x/", "--images", ".", "--api", "xml"], "--api must be plain or json"),
        (["http://x/", "--url", "http://y/", "--images", "."], "give the URL once"),
    ],
)
def test_bad_arguments_say_what_to_do(args: list[str], message: str) -> None:
    result = CliRunner().invoke(app, ["loadgen", *args])
    assert result.exit_code == 2
    assert message in result.output


def test_missing_image_folder_and_bad_csv(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["loadgen", "http://x/", "--images", str(tmp_path / "no")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    (tmp_path / "a.jpg").write_bytes(b"x")
    bad = tmp_path / "bad.csv"
    bad.write_text("x,y\n1,2\n")
    result = CliRunner().invoke(app, ["loadgen", "http://x/", "--images", str(tmp_path),
                                      "--expected", str(bad)])
    assert result.exit_code == 2
    assert "expected either 'Image,Results'" in result.output
