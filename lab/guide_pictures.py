"""The pictures of the user guides, from real runs on the package's demo images (OpenCV's samples).

    .venv/bin/python lab/guide_pictures.py            # writes docs/guide/align_demo.jpg, docs/guide/conditions_demo.jpg

align_demo.jpg: `segswap align box.png box_in_scene.png`'s side_by_side.png. conditions_demo.jpg: the scene
under two conditions of `segswap synth --conditions` (night, line engraving; seed 0), each matched with the
box by `segswap pair` with its defaults: the overlays, one above the other, with each run's verdict line.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from importlib.resources import files
from pathlib import Path

import cv2
import numpy as np

from segswap.synth.conditions import CONDITIONS

ROOT = Path(__file__).resolve().parents[1]
DEMO = Path(str(files("segswap") / "data"))
OUT = ROOT / "docs" / "guide"
CLI = [sys.executable, "-c", "from segswap.cli import main; main()"]


def segswap(*args) -> str:
    return subprocess.run([*CLI, *map(str, args)], check=True, capture_output=True, text=True).stdout.strip()


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    box, scene = DEMO / "box.png", DEMO / "box_in_scene.png"
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        segswap("align", box, scene, "--out", tmp / "align")
        cv2.imwrite(str(OUT / "align_demo.jpg"), cv2.imread(str(tmp / "align" / "side_by_side.png")),
                    [cv2.IMWRITE_JPEG_QUALITY, 80])
        rows = []
        for name in ("night", "line_engraving"):
            rgb = cv2.cvtColor(cv2.imread(str(scene)), cv2.COLOR_BGR2RGB)
            changed, _ = CONDITIONS[name](rgb, np.random.default_rng(0))
            path = tmp / f"scene_{name}.png"
            cv2.imwrite(str(path), cv2.cvtColor(changed, cv2.COLOR_RGB2BGR))
            print(name, segswap("pair", box, path, "--out", tmp / name))
            print(name, segswap("verify", box, path, "--by", "fused"))
            rows.append(cv2.imread(str(tmp / name / "overlay.png")))
        width = max(row.shape[1] for row in rows)
        rows = [cv2.copyMakeBorder(row, 0, 8, 0, width - row.shape[1], cv2.BORDER_CONSTANT, value=(255, 255, 255))
                for row in rows]
        sheet = np.vstack(rows)
        sheet = cv2.resize(sheet, (1000, round(sheet.shape[0] * 1000 / sheet.shape[1])), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(OUT / "conditions_demo.jpg"), sheet, [cv2.IMWRITE_JPEG_QUALITY, 80])


if __name__ == "__main__":
    main()
