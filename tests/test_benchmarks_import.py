"""Every benchmark still imports: what it takes from segswap exists where it looks for it (none of them
runs in the suite; a module that moved would otherwise break them silently). The experiments in lab/
are not the product's, and are not checked here."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FILES = sorted((ROOT / "benchmarks").glob("*.py"))

# Loads each file as a module (not as __main__, so nothing runs) in one fresh process, the scripts'
# own sys.path additions included; prints {file: error} for those that fail.
PROBE = """
import importlib.util, json, sys, traceback
failed = {}
for index, path in enumerate(sys.argv[1:]):
    spec = importlib.util.spec_from_file_location(f"probe_{index}", path)
    try:
        spec.loader.exec_module(importlib.util.module_from_spec(spec))
    except Exception as err:
        failed[path] = traceback.format_exception_only(err)[-1].strip()
print(json.dumps(failed))
"""


def test_every_benchmark_imports():
    assert len(FILES) > 10
    r = subprocess.run([sys.executable, "-c", PROBE, *map(str, FILES)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == {}
