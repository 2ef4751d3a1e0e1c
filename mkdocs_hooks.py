"""MkDocs hook: the benchmark tables are rendered from the JSON that wrote them, each with the command that
wrote it; no number in them is typed by hand. A marker ``<!-- benchmark: PATH.json -->`` on a line of its own
(PATH relative to docs/) becomes the tables and the command: the JSON of a ``segswap eval ... --json`` run
(docs/benchmarks/), or of a ``benchmarks/*.py --json`` run (docs/performance/), which carries its tables and
the machine it ran on. A missing or unknown file fails the build."""

from __future__ import annotations

import json
import re
from pathlib import Path

from segswap.evaluation.tables import markdown_table, table_for

MARKER = re.compile(r"^<!-- benchmark: (\S+) -->$", re.M)


def on_page_markdown(markdown: str, page, config, files) -> str:
    docs = Path(config["docs_dir"])

    def render(match: re.Match) -> str:
        result = json.loads((docs / match.group(1)).read_text())
        if "tables" in result:  # a benchmarks/ script's record
            tables = "\n\n".join((f"*{t['title']}*\n\n" if t["title"] else "") + markdown_table(t["header"], t["rows"])
                                 for t in result["tables"])
            where = f"\n\n*{result['machine']}; load average {result['load_average']} at the end.*"
            return f"{tables}{where}\n\n```bash\n{result['command']}\n```"
        return f"{table_for(result)}\n\n```bash\n{result['command']}\n```"

    return MARKER.sub(render, markdown)
