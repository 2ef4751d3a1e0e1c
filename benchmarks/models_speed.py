"""Per-pair time of each shipped model's head on the same frozen features, against the SegSwap
transformer timed in the same run: the transformer (with the Lite2 blocks it fine-tunes, on its block-12
features), the frozen-feature transformer `segswap verify` uses, its NC-Net variant, MaCoSNet, SCOTT, the
training-free correlation matcher and ArtMiner's verification (features → verdict only; the Lite2 backbone
is shared and timed once), on the demo pair shipped in the package.

    .venv/bin/python benchmarks/models_speed.py [--sizes 320 480] [--repeats 7]

Prints the machine and, per input size, milliseconds per pair and the ratio to the transformer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import add_json_argument, machine_summary, median_time, print_table, run_and_record  # noqa: E402

import segswap
from segswap.backbone import get_backbone
from segswap.io import load_image, pixels_to_tensor, resize_for_model
from segswap.verify.ransac import verify
from segswap.shipped import shipped_verify_weights_path
from segswap.verify.same_object import load_verifier


DATA = Path(segswap.__file__).parent / "data"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[320, 480])
    parser.add_argument("--repeats", type=int, default=7)
    add_json_argument(parser)
    args = parser.parse_args()
    print(machine_summary())
    backbone = get_backbone("efficientnet-lite2")
    transformer, ncnet, correlation = segswap.load(), segswap.load("ncnet"), segswap.load("correlation")
    frozen = segswap.load(weights=shipped_verify_weights_path())  # `segswap verify`'s transformer
    macosnet = segswap.load("macosnet")
    scott = load_verifier()
    for size in args.sizes:
        # The demo pair shipped in the package (real content: RANSAC's work depends on the matches).
        image_a = resize_for_model(load_image(DATA / "box.png"), size)
        image_b = resize_for_model(load_image(DATA / "box_in_scene.png"), size)
        tensor_a, tensor_b = pixels_to_tensor(image_a), pixels_to_tensor(image_b)
        fa, fb = backbone(tensor_a), backbone(tensor_b)
        target = fb[0].numpy()
        # the shipped transformer runs Lite2's last blocks itself, on its backbone's (block-12) features
        ta, tb = transformer.features(tensor_a), transformer.features(tensor_b)
        heads = {
            "segswap transformer": lambda: transformer.predict(ta, tb),
            "segswap transformer, frozen features (verify's)": lambda: frozen.predict(fa, fb),
            "ncnet variant": lambda: ncnet.predict(fa, fb),
            "macosnet": lambda: macosnet.predict(fa, fb),
            "scott (verify)": lambda: scott.verify_features(fa, fb),
            "correlation (training-free)": lambda: correlation.predict(fa, fb),
            "artminer verification (training-free)": lambda: verify(fa[0].numpy(), target, (target.shape[2] * 16, target.shape[1] * 16)),
        }
        backbone_ms = 1000 * (median_time(lambda: backbone(tensor_a), args.repeats) + median_time(lambda: backbone(tensor_b), args.repeats))
        times = {name: 1000 * median_time(fn, args.repeats) for name, fn in heads.items()}
        reference = times["segswap transformer"]
        grids = f"{fa.shape[2]}×{fa.shape[3]} and {fb.shape[2]}×{fb.shape[3]}"
        print(f"\n{size} px (box / box_in_scene: {grids} cells); backbone for both images: {backbone_ms:.1f} ms")
        print_table(["head", "ms per pair", "× transformer"],
                    [[name, f"{ms:.1f}", f"{ms / reference:.2f}"] for name, ms in times.items()])


if __name__ == "__main__":
    run_and_record(main)
