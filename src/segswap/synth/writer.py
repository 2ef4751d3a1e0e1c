"""The output folder: one directory per pair, a manifest, and safe resumption.

Layout (see docs/formats.md)::

    OUT/config.json        settings, seed and inputs; a resumed run must match them
    OUT/segments.json      the segment catalogue the pairs were drawn from (reused on resume)
    OUT/manifest.jsonl     one line per complete pair, sorted by index at the end of a run
    OUT/<id>/a.jpg b.jpg mask_a.png mask_b.png gt.npz meta.json

A pair is written into ``OUT/.tmp-<id>/`` and renamed to ``OUT/<id>/`` in one step, so a pair
directory is either complete or absent. The manifest line is appended after the rename; on start
the manifest is rebuilt from the complete directories, so a kill between the two loses nothing.
All encoders are deterministic (fixed JPEG quality, fixed zip timestamps), so one seed gives the
same bytes on every run.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import cv2
import numpy as np

from ..errors import SegswapError
from .swapping import Pair

JPEG_QUALITY = 92
FILES = ("a.jpg", "b.jpg", "mask_a.png", "mask_b.png", "gt.npz", "meta.json")
TMP_PREFIX = ".tmp-"


def pair_id(index: int) -> str:
    return f"{index:06d}"


def write_pair(out: Path, index: int, pair: Pair) -> None:
    """Write a pair atomically: a temporary directory, then one rename."""
    pid = pair_id(index)
    tmp = out / f"{TMP_PREFIX}{pid}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    _write_jpeg(tmp / "a.jpg", pair.a)
    _write_jpeg(tmp / "b.jpg", pair.b)
    _write_png(tmp / "mask_a.png", pair.truth.full_a)
    _write_png(tmp / "mask_b.png", pair.truth.full_b)
    write_npz(tmp / "gt.npz", pair.truth.arrays())
    meta = {"id": pid, **pair.meta}
    (tmp / "meta.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, out / pid)


def manifest_line(out: Path, pid: str) -> dict:
    meta = json.loads((out / pid / "meta.json").read_text(encoding="utf-8"))
    line = {"id": pid, "index": meta["index"], "seed": meta["seed"], "kind": meta["kind"]}
    line.update({name.split(".")[0]: f"{pid}/{name}" for name in FILES})
    return line


def append_manifest(out: Path, pid: str) -> None:
    with open(out / "manifest.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps(manifest_line(out, pid), sort_keys=True) + "\n")


def complete_ids(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.is_dir() and p.name.isdigit() and (p / "meta.json").is_file())


def rebuild_manifest(out: Path) -> list[str]:
    """Rewrite the manifest from the complete pair directories, in index order; returns their ids."""
    ids = complete_ids(out)
    tmp = out / "manifest.jsonl.tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        for pid in ids:
            f.write(json.dumps(manifest_line(out, pid), sort_keys=True) + "\n")
    os.replace(tmp, out / "manifest.jsonl")
    return ids


def remove_partial(out: Path) -> int:
    """Delete pairs left half-written by a killed run; returns how many."""
    stale = [p for p in out.iterdir() if p.is_dir() and p.name.startswith(TMP_PREFIX)]
    for p in stale:
        shutil.rmtree(p)
    return len(stale)


def prepare(out: Path, config: dict) -> bool:
    """Create ``out`` or check that it continues a run with the same ``config``; True when resuming."""
    path = out / "config.json"
    text = json.dumps(config, indent=1, sort_keys=True) + "\n"
    if path.is_file():
        if json.loads(path.read_text(encoding="utf-8")) != config:
            raise SegswapError(f"{out} holds pairs made with other settings or inputs; use a new --out folder")
        return True
    if out.exists() and any(out.iterdir()):
        raise SegswapError(f"{out} is not empty and is not a segswap synth folder")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(text, encoding="utf-8")
    return False


def unclaim(out: Path) -> None:
    """Undo :func:`prepare` and the segment catalogue of a fresh run that made nothing."""
    for name in ("config.json", "segments.json"):
        (out / name).unlink(missing_ok=True)
    if not any(out.iterdir()):
        out.rmdir()


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` with fixed zip timestamps, so equal arrays give equal bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in sorted(arrays):
            buffer = io.BytesIO()
            np.lib.format.write_array(buffer, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buffer.getvalue())


def _write_jpeg(path: Path, rgb: np.ndarray) -> None:
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:
        raise OSError(f"cannot encode {path}")
    path.write_bytes(data.tobytes())


def _write_png(path: Path, mask: np.ndarray) -> None:
    ok, data = cv2.imencode(".png", np.where(mask, 255, 0).astype(np.uint8))
    if not ok:
        raise OSError(f"cannot encode {path}")
    path.write_bytes(data.tobytes())
