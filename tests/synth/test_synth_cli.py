"""The ``synth`` command function, mounted on a throw-away typer app as cli.py mounts it."""

from __future__ import annotations

import pytest
import typer
from typer.testing import CliRunner

from segswap.cli_synth import synth
from segswap.errors import SegswapError


@pytest.fixture
def app() -> typer.Typer:
    app = typer.Typer()
    app.command()(synth)

    @app.command()
    def other():  # a second command, so typer keeps "synth" as a subcommand name
        pass

    return app


def test_cli_writes_pairs_and_a_preview(app, tmp_path, texture_yolo, photos, paintings):
    out = tmp_path / "out"
    result = CliRunner().invoke(app, [
        "synth", "--segments", str(texture_yolo), "--backgrounds", str(photos), "--styles", str(paintings),
        "--out", str(out), "-n", "2", "--size", "160", "--workers", "1", "--seed", "3",
        "--preview", str(tmp_path / "sheet.jpg"),
    ])
    assert result.exit_code == 0, result.output
    assert "2 new pairs" in result.output
    assert (out / "000001" / "gt.npz").is_file() and (tmp_path / "sheet.jpg").is_file()


def test_cli_user_errors_are_segswap_errors(app, tmp_path, texture_yolo, photos):
    result = CliRunner().invoke(app, [
        "synth", "--segments", str(texture_yolo), "--backgrounds", str(photos), "--out", str(tmp_path / "o"),
        "-n", "1", "--size", "100",
    ])
    assert isinstance(result.exception, SegswapError)
