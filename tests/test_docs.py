"""What the code says about the docs holds: every docs/ file it points to exists, and it carries no date or
issue number (results and their history live in docs/ and lab/, where they can be kept current)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for p in (ROOT / "src" / "segswap").rglob("*") if p.suffix in {".py", ".js", ".html", ".css"}]


def test_every_docs_file_the_code_points_to_exists():
    """Pointers into the user docs (docs/) and the lab notebook (lab/), from the code and from the pages."""
    pages = [*(ROOT / "docs").rglob("*.md"), ROOT / "README.md"]
    pointers = {(path.relative_to(ROOT), match) for path in [*SOURCES, *pages]
                for match in re.findall(r"(?<![\w/.])(?:docs|lab)/[\w/.-]+\.(?:md|py)", path.read_text())}
    assert pointers, "the pattern finds nothing: it is wrong"
    missing = sorted((str(path), target) for path, target in pointers if not (ROOT / target).is_file())
    assert missing == []


def test_the_code_carries_no_date_and_no_issue_number():
    found = [(str(path.relative_to(ROOT)), line.strip()[:80]) for path in SOURCES
             for line in path.read_text().splitlines()
             if re.search(r"\b20\d\d-[01]\d-[0-3]\d\b|\bissues? #?\d+\b", line)]
    assert found == []


def test_the_command_line_reference_says_what_the_commands_say():
    """docs/cli.md is generated (`make docs`); a command or option changed without it fails here."""
    from segswap.cli.reference import command_reference

    assert (ROOT / "docs" / "cli.md").read_text() == command_reference(), "run `make docs`"


def test_the_documentation_site_builds_with_no_warning(tmp_path):
    """`make docs`: MkDocs in strict mode (a broken link, a missing page or an API reference entry that no
    longer exists is an error), the API reference rendered from the docstrings."""
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                       cwd=ROOT, capture_output=True, text=True, timeout=300, env={**__import__("os").environ,
                                                                                     "NO_MKDOCS_2_WARNING": "1"})
    assert r.returncode == 0, r.stderr[-2000:]
    assert "WARNING" not in r.stderr, r.stderr[-2000:]
    # the Benchmarks page: one table and its command per JSON marker, no marker left
    markers = re.findall(r"<!-- benchmark: (\S+) -->", (ROOT / "docs" / "benchmarks.md").read_text())
    page = (tmp_path / "site" / "benchmarks" / "index.html").read_text()
    assert len(markers) >= 3 and page.count("<table>") == len(markers) and "<!-- benchmark:" not in page
    assert all(Path(marker).name in page for marker in markers)  # each table's command names its JSON
    api = (tmp_path / "site" / "api" / "index.html").read_text()
    for name in ("segswap.load", "Matcher", "update_index", "search", "run_discovery", "cosegment_folder",
                 "register_coseg_method"):
        assert name in api, name
