"""What the code says about the docs holds: every docs/ file it points to exists, and it carries no date or
issue number (results and their history live in docs/ and lab/, where they can be kept current)."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for p in (ROOT / "src" / "segswap").rglob("*") if p.suffix in {".py", ".js", ".html", ".css"}]


def test_every_docs_file_the_code_points_to_exists():
    pointers = {(path.relative_to(ROOT), match) for path in SOURCES
                for match in re.findall(r"(?<![\w/.])docs/[\w/.-]+\.md", path.read_text())}
    assert pointers, "the pattern finds nothing: it is wrong"
    missing = sorted((str(path), target) for path, target in pointers if not (ROOT / target).is_file())
    assert missing == []


def test_the_code_carries_no_date_and_no_issue_number():
    found = [(str(path.relative_to(ROOT)), line.strip()[:80]) for path in SOURCES
             for line in path.read_text().splitlines()
             if re.search(r"\b20\d\d-[01]\d-[0-3]\d\b|\bissues? #?\d+\b", line)]
    assert found == []
