"""MkDocs hook: the Benchmarks page's tables are rendered from the JSON that `segswap eval ... --json` wrote
(docs/benchmarks/*.json), each with the command that wrote it; no number on that page is typed by hand.
A marker ``<!-- benchmark: benchmarks/FILE.json -->`` on a line of its own becomes the table and the command;
a missing or unknown file fails the build."""

from __future__ import annotations

import json
import re
from pathlib import Path

from segswap.evaluation.tables import table_for

MARKER = re.compile(r"^<!-- benchmark: (\S+) -->$", re.M)


def on_page_markdown(markdown: str, page, config, files) -> str:
    docs = Path(config["docs_dir"])

    def render(match: re.Match) -> str:
        result = json.loads((docs / match.group(1)).read_text())
        return f"{table_for(result)}\n\n```bash\n{result['command']}\n```"

    return MARKER.sub(render, markdown)
