"""Fixtures shared by several test folders."""

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest


def _make_fake_synth(root, n=8, size=64, seed=0):
    """A folder in `segswap synth`'s format: a textured square pasted at two places."""
    rng = np.random.default_rng(seed)
    g = size // 16
    lines = []
    for i in range(n):
        pid = f"{i:06d}"
        d = root / pid
        d.mkdir(parents=True)
        tex = (rng.random((16, 16, 3)) * 255).astype(np.uint8)
        tex = cv2.resize(tex, (32, 32), interpolation=cv2.INTER_NEAREST)
        a = (rng.random((size, size, 3)) * 80).astype(np.uint8)
        b = (rng.random((size, size, 3)) * 80).astype(np.uint8)
        a[0:32, 0:32] = tex
        b[32:64, 32:64] = tex
        cv2.imwrite(str(d / "a.jpg"), a)
        cv2.imwrite(str(d / "b.jpg"), b)
        mask_a = np.zeros((g, g), np.float32)
        mask_a[:2, :2] = 1
        mask_b = np.zeros((g, g), np.float32)
        mask_b[2:, 2:] = 1
        centres = (np.stack(np.meshgrid(np.arange(g), np.arange(g)), -1) + 0.5) / g
        np.savez(d / "gt.npz", mask_a=mask_a, mask_b=mask_b, flow_ab=np.clip(centres + 0.5, 0, 1).astype(np.float32),
                 flow_ba=np.clip(centres - 0.5, 0, 1).astype(np.float32))
        lines.append(json.dumps({"id": pid, "kind": "positive", "seed": seed}))
    (root / "manifest.jsonl").write_text("\n".join(lines) + "\n")
    (root / "config.json").write_text(json.dumps({"format_version": 2, "settings": {"size": size}}))
    return root


@pytest.fixture(scope="session")
def fake_synth():
    """``fake_synth(root, n=8, size=64, seed=0)`` writes a folder in `segswap synth`'s format."""
    return _make_fake_synth


@pytest.fixture(scope="session")
def run_cli():
    """``run_cli(*args, timeout=300, **kwargs)`` runs ``segswap ARGS`` in a fresh process, as a user's
    shell would (exit status, stdout and stderr apart), and returns the CompletedProcess;
    ``run_cli.command(*args)`` is the command line, for tests that start and signal the process."""
    def command(*args):
        return [sys.executable, "-c", "from segswap.cli import main; main()", *map(str, args)]

    def run(*args, timeout=300, **kwargs):
        return subprocess.run(command(*args), capture_output=True, text=True, timeout=timeout, **kwargs)

    run.command = command
    return run
