"""The ``synth`` command function, mounted on a throw-away typer app as cli.app mounts it."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from segswap.cli.synth import synth
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


def _children(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads /proc")
def test_workers_die_with_a_killed_parent(tmp_path, texture_yolo, photos, run_cli):
    """Item 20 of issue 21: `kill -9` of `segswap synth` left its spawn workers making their pairs."""
    command = run_cli.command("synth", "--segments", texture_yolo, "--backgrounds", photos, "--out", tmp_path / "o",
                              "-n", "400", "--size", "160", "--workers", "2")
    parent = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, workers = time.time() + 60, set()
    while time.time() < deadline and not (tmp_path / "o" / "000001").exists():
        time.sleep(0.1)
    workers = _children(parent.pid)
    assert len(workers) >= 2, "the workers should be running"
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in workers):
        time.sleep(0.1)
    alive = [pid for pid in workers if Path(f"/proc/{pid}").exists() and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]
    assert not alive
