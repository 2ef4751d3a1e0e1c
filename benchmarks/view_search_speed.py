"""Cost of the view search of `segswap pair` (relative scales × quarter turns of b) against the plain
view, timed in the same run on the demo pair with the shipped weights.

    .venv/bin/python benchmarks/view_search_speed.py [--repeats 5]

Prints the machine and, per set of views, the median wall time of one ``Matcher.match`` (image decoding,
features of every view, the model on every view) and its ratio to the plain view. The objectness prior and
the keypoint matches (once per pair each, whatever the views) are left out of the view sets and timed in
the last rows with the default views, the last as `segswap pair` runs it.
"""

from __future__ import annotations

import argparse
import sys
from importlib import resources
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import add_json_argument, machine_summary, median_time, print_table, run_and_record  # noqa: E402

import segswap  # noqa: E402
from segswap.pair import SEARCH_SCALES  # noqa: E402

VIEW_SETS = {
    "plain view": dict(scales=(1.0,), rotations=False, prior=False, keypoints=False),
    "scales 0.7–1.4": dict(scales=(0.7, 1.0, 1.4), rotations=False, prior=False, keypoints=False),
    "SEARCH_SCALES (default of `segswap pair`)": dict(scales=SEARCH_SCALES, rotations=False, prior=False, keypoints=False),
    "SEARCH_SCALES + rotations": dict(scales=SEARCH_SCALES, rotations=True, prior=False, keypoints=False),
    "SEARCH_SCALES + the objectness prior": dict(scales=SEARCH_SCALES, rotations=False, prior=True, keypoints=False),
    "SEARCH_SCALES + the prior + keypoint matches (`segswap pair`)": dict(scales=SEARCH_SCALES, rotations=False,
                                                                         prior=True, keypoints=None),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    add_json_argument(parser)
    args = parser.parse_args()
    data = resources.files("segswap") / "data"
    image_a, image_b = str(data / "box.png"), str(data / "box_in_scene.png")
    matcher = segswap.load()
    print(machine_summary())
    print(f"model {matcher.name} ({matcher.weights}), input size {matcher.size}, demo pair; SEARCH_SCALES = {SEARCH_SCALES}\n")
    rows, reference = [], None
    for name, views in VIEW_SETS.items():
        seconds = median_time(lambda: matcher.match(image_a, image_b, **views), repeats=args.repeats, warmup=1)
        reference = reference or seconds
        view = matcher.match(image_a, image_b, **views)["view"]
        rows.append([name, view["views_tried"], f"{1000 * seconds:.0f}", f"{seconds / reference:.1f}×",
                     f"×{view['scale']:g}, {view['rotation_deg']}°"])
    print_table(["views", "n", "ms per pair", "vs plain", "chosen view"], rows)


if __name__ == "__main__":
    run_and_record(main)
