"""The README's first steps and its command list agree with the Makefile and the command line."""

from __future__ import annotations

import re
from pathlib import Path

import typer

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def intro() -> str:
    """The README up to its Install section: what a newcomer runs first."""
    return README.split("\n## Install", 1)[0]


def use_commands() -> list[str]:
    """The command lines of the Use section's code block, comments cut."""
    block = README.split("\n## Use", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.startswith("segswap ")]


def test_the_readme_says_how_to_run_segswap_after_make_demo():
    """Item 8 of issue 36: after `make demo` a plain `segswap` is "command not found": it lives in the
    Makefile's virtual environment."""
    venv = re.search(r"^VENV \?= (\S+)$", (ROOT / "Makefile").read_text(), re.M).group(1)
    assert f"source {venv}/bin/activate" in intro() and f"{venv}/bin/segswap" in intro()


def test_the_readme_says_what_make_test_costs_and_installs():
    """Item 8: `make test` takes minutes and installs Debian packages (as root); the README said neither."""
    paragraph = intro().split("make demo", 1)[1].split("make test", 1)[0]
    assert re.search(r"about \d+(–\d+)? minutes", paragraph) and "Debian packages" in paragraph, paragraph


def test_the_pair_options_shown_exist_and_the_prior_is_shown_turned_off():
    """Item 8: the Use section showed `--prior` as an option to turn on, while it is the default."""
    from segswap.cli import app
    from segswap.shipped import PAIR_PRIOR

    pair = typer.main.get_command(app).commands["pair"]
    options = {name for param in pair.params if param.param_type_name == "option"
               for name in param.opts + param.secondary_opts}
    shown = {token for line in use_commands() if line.startswith("segswap pair ") for token in line.split()
             if token.startswith("-")}
    assert shown and shown <= options, shown - options
    assert PAIR_PRIOR and "--no-prior" in shown and "--prior" not in shown
