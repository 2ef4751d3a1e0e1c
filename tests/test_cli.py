import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import segswap

DATA = Path(segswap.__file__).parent / "data"


def test_version(run_cli):
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.strip() == f"segswap {segswap.__version__}"


def test_backbones_lists_the_registry(run_cli):
    r = run_cli("backbones", "--json")
    assert r.returncode == 0
    names = {row["name"] for row in json.loads(r.stdout)}
    assert {"efficientnet-lite2", "efficientnet-lite0", "dinov2-s"} <= names


def test_pair_writes_the_four_files(tmp_path, run_cli):
    r = run_cli("pair", str(DATA / "box.png"), str(DATA / "box_in_scene.png"), "--out", str(tmp_path), "--model", "correlation",
            "--size", "320")
    assert r.returncode == 0, r.stderr
    result = json.loads((tmp_path / "result.json").read_text())
    assert {"score", "mask_area_a", "mask_area_b", "correspondences", "model", "backbone", "size", "view"} <= set(result)
    assert result["model"] == "correlation" and result["size"] == 320
    assert 0 <= result["mask_area_a"] <= 1 and all(len(c) == 5 for c in result["correspondences"])
    box, scene = Image.open(DATA / "box.png"), Image.open(DATA / "box_in_scene.png")
    mask_a, mask_b = Image.open(tmp_path / "mask_a.png"), Image.open(tmp_path / "mask_b.png")
    assert mask_a.size == box.size and mask_b.size == scene.size and mask_a.mode == "L"
    overlay = np.asarray(Image.open(tmp_path / "overlay.png"))
    assert overlay.shape[0] == 480 and overlay.shape[2] == 3


@pytest.mark.parametrize(
    "args, message",
    [
        (["pair", "missing.png", "{box}", "--out", "{out}", "--model", "correlation"], "no such file"),
        (["pair", "{text}", "{box}", "--out", "{out}", "--model", "correlation"], "not an image"),
        (["pair", "{box}", "{box}", "--out", "{out}", "--model", "correlation", "--size", "100"], "multiple of 16"),
        (["pair", "{box}", "{box}", "--out", "{out}", "--model", "correlation", "--backbone", "vgg"], "unknown backbone"),
        (["pair", "{box}", "{box}", "--out", "{out}", "--weights", "{text}"], "not a safetensors"),
        (["pair", "{box}", "{box}", "--out", "{out}", "--model", "nope"], "unknown pair model"),
        (["pair", "{box}", "{box}", "--out", "{out}", "--model", "correlation", "--scales", "1,big"], "--scales takes numbers"),
        (["pair", "{box}", "{box}", "--out", "{out}", "--model", "correlation", "--scales", "0,1"], "scales must be between"),
    ],
)
def test_bad_input_gives_one_line_and_exit_2(tmp_path, args, message, run_cli):
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    fill = {"box": str(DATA / "box.png"), "out": str(tmp_path / "o"), "text": str(text)}
    r = run_cli(*[a.format(**fill) for a in args])
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and message in lines[0].lower(), r.stderr
    assert "Traceback" not in r.stderr


def test_bad_option_is_a_usage_error_not_a_traceback(tmp_path, run_cli):
    r = run_cli("pair", "--frobnicate")
    assert r.returncode == 2 and "Traceback" not in r.stderr


@pytest.mark.parametrize("args, message", [
    (["pair", "{box}", "{box}", "--out", "/etc/passwd"], "--out /etc/passwd: is a file, not a folder"),
    (["pair", "{box}", "{box}", "--out", "{file}/sub"], "is a file, not a folder"),
    (["pair", "{box}", "{box}", "--out", "{long}"], "longer than 255 bytes"),
    (["demo", "--out", "/etc/passwd"], "is a file, not a folder"),
    (["search", "{box}", "--index", "{tmp}", "--json", ""], "--json .: is a folder, not a file"),
    (["search", "{box}", "--index", "{tmp}", "--report", "{file}/r.html"], "is a file, not a folder"),
    (["index", "{tmp}", "--index", "{file}"], "--index"),
    (["cosegment", "{tmp}", "--out", "{tmp}", "--report", "{tmp}"], "--report"),
    (["eval", "coseg", "{tmp}", "--json", "{file}/x.json"], "is a file, not a folder"),
    (["export", "{tmp}", "--out", "{tmp}"], "is a folder, not a file"),
])
def test_bad_outputs_are_refused_before_any_work(tmp_path, run_cli, args, message):
    """Item 1/18 of issue 21: an output that cannot be written is one line, exit 2, before the model loads
    (a traceback after the whole computation before)."""
    (tmp_path / "afile").write_text("x")
    fill = {"box": DATA / "box.png", "file": tmp_path / "afile", "tmp": tmp_path, "long": tmp_path / ("x" * 300)}
    r = run_cli(*[str(a).format(**fill) for a in args], "--model", "correlation") if args[0] in ("pair", "search") \
        else run_cli(*[str(a).format(**fill) for a in args])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.stderr, r.stderr


@pytest.mark.parametrize("command", [["index", "{box}", "--index", "{tmp}/i"], ["cosegment", "{box}", "--out", "{tmp}/o"]])
def test_a_file_given_for_a_folder_is_called_a_file(tmp_path, run_cli, command):
    r = run_cli(*[a.format(box=DATA / "box.png", tmp=tmp_path) for a in command])
    assert r.returncode == 2 and r.stderr.strip() == f"error: {DATA / 'box.png'}: is a file, not a folder"


def test_indexing_an_empty_folder_is_an_error(tmp_path, run_cli):
    (tmp_path / "empty").mkdir()
    r = run_cli("index", tmp_path / "empty", "--index", tmp_path / "idx")
    assert r.returncode == 2 and "no images found" in r.stderr and not (tmp_path / "idx").exists()


def test_an_unknown_backbone_is_called_unknown_even_with_weights(tmp_path, run_cli):
    r = run_cli("pair", DATA / "box.png", DATA / "box.png", "--out", tmp_path / "o", "--backbone", "nope")
    assert r.returncode == 2
    assert "unknown backbone 'nope'; valid names: efficientnet-lite2" in r.stderr and "trained on" not in r.stderr


def test_a_missing_file_is_reported_before_the_heavy_imports(tmp_path, run_cli):
    """Item 5: arguments are checked before torch, onnxruntime and OpenCV load (2.5–7 s before)."""
    probe = ("import sys; from segswap.cli import main\n"
             "try:\n    main()\nexcept SystemExit:\n    pass\n"
             "print(sorted(m for m in ('torch', 'cv2', 'onnxruntime') if m in sys.modules))")
    for args in (["pair", "missing.jpg", str(DATA / "box.png"), "--out", str(tmp_path / "o")],
                 ["search", "missing.jpg", "--index", str(tmp_path)], ["index", "missing", "--index", str(tmp_path)],
                 ["serve", "--index", str(tmp_path / "missing")],
                 ["synth", "--segments", "missing", "--backgrounds", str(tmp_path), "--out", str(tmp_path / "p"), "-n", "1"]):
        r = subprocess.run([sys.executable, "-c", probe, *args], capture_output=True, text=True, timeout=60)
        assert "no such" in r.stderr and r.stdout.strip() == "[]", (args, r.stdout, r.stderr)


def run_listing_heavy_imports(*args, timeout=120):
    """``segswap ARGS`` in a fresh process; its stdout ends with the heavy modules (torch, OpenCV,
    onnxruntime) it had imported when it stopped, as a Python list."""
    probe = ("import sys; from segswap.cli import main\n"
             "try:\n    main()\nfinally:\n"
             "    print(sorted(m for m in ('torch', 'cv2', 'onnxruntime') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", probe, *map(str, args)], capture_output=True, text=True, timeout=timeout)
    return r, r.stdout.strip().splitlines()[-1] if r.stdout.strip() else None


@pytest.mark.parametrize("args, message", [
    (["pair", "{box}", "{box}", "--out", "/proc/segswap-out"], "--out /proc/segswap-out: cannot write in /proc"),
    (["index", "{data}", "--index", "/sys/segswap-index"], "--index /sys/segswap-index: cannot write in /sys"),
])
def test_outputs_where_no_file_can_be_made_are_refused_before_the_work(args, message):
    """Item 4 of issue 36: outputs under /proc or /sys passed the permission check (root may write
    anywhere, and /proc says it is writable) and failed with a traceback after 12–24 s of work."""
    r, heavy = run_listing_heavy_imports(*[a.format(box=DATA / "box.png", data=DATA) for a in args])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {message}") and "Traceback" not in r.stderr, r.stderr
    assert heavy == "[]", "refused only after loading the heavy modules"


@pytest.fixture(scope="module")
def data_index(tmp_path_factory):
    """An index of the two sample images, and a co-segmentation layout of them (masks all foreground)."""
    from segswap.collection.update import update_index

    root = tmp_path_factory.mktemp("data-index")
    update_index(DATA, root / "index", show_progress=False)[0].close()
    for name in ("box.png", "box_in_scene.png"):
        (root / "layout" / "images" / "g").mkdir(parents=True, exist_ok=True)
        (root / "layout" / "groundtruth" / "g").mkdir(parents=True, exist_ok=True)
        (root / "layout" / "images" / "g" / name).write_bytes((DATA / name).read_bytes())
        size = Image.open(DATA / name).size
        Image.new("L", size, 255).save(root / "layout" / "groundtruth" / "g" / name)
    return root


@pytest.mark.parametrize("args, message", [
    (["search", "{box}", "--index", "{index}", "--top", "0"], "--top must be at least 1, got 0"),
    (["search", "{box}", "--index", "{index}", "--shortlist", "-5"], "--shortlist must be at least 1, got -5"),
    (["search", "{box}", "--index", "{index}", "--box", "1,2,3"], "--box must be x0,y0,x1,y1 in pixels, got '1,2,3'"),
    (["search", "{box}", "--index", "{index}", "--box", "5,5,5,40"], "--box 5,5,5,40 has no area"),
    (["search", "{box}", "--index", "{index}", "--threshold", "nan"], "--threshold must be a number, not nan"),
    (["search", "{box}", "--index", "{index}", "--rerank", "sift"], "--rerank must be one of model, ransac, not 'sift'"),
    (["pair", "{box}", "{box}", "--out", "{tmp}/o", "--scales", "1,big"], "--scales takes numbers"),
    (["pair", "{box}", "{box}", "--out", "{tmp}/o", "--scales", "0.5,20"], "scales must be between 0.1 and 10"),
    (["discover", "--index", "{index}", "--top-k", "0"], "--top-k must be at least 1, got 0"),
    (["discover", "--index", "{index}", "--clusters", "0"], "--clusters must be at least 1, got 0"),
    (["cosegment", "{data}", "--out", "{tmp}/m", "--top-k", "0"], "--top-k must be at least 1, got 0"),
    (["eval", "coseg", "{layout}", "--top-k", "0"], "--top-k must be at least 1, got 0"),
])
def test_bad_option_values_are_refused_before_the_heavy_imports(tmp_path, data_index, args, message):
    """Item 6 of issue 36: these options were checked only after the model had loaded (4–10 s)."""
    fill = {"box": DATA / "box.png", "index": data_index / "index", "layout": data_index / "layout", "data": DATA,
            "tmp": tmp_path}
    r, heavy = run_listing_heavy_imports(*[a.format(**fill) for a in args])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], r.stderr
    assert heavy == "[]", f"refused only after loading {heavy}"


def disk_full_in_a_shard(root, index, **options):
    """What `segswap index` meets when the disk fills while it writes features: the kernel's ENOSPC
    (/dev/full gives it on every write)."""
    with open("/dev/full", "wb", buffering=0) as full:
        full.write(b"features")


def disk_full_in_sqlite(root, index, **options):
    """SQLite's own "full" (SQLITE_FULL), met here by a database allowed two pages."""
    import sqlite3

    db = sqlite3.connect(":memory:")
    db.execute("PRAGMA max_page_count = 2")
    db.execute("CREATE TABLE images (features BLOB)")
    db.execute("INSERT INTO images VALUES (zeroblob(100000))")


@pytest.mark.parametrize("fail", [disk_full_in_a_shard, disk_full_in_sqlite])
def test_a_full_disk_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, fail):
    """Item 3 of issue 36: a disk filling up during `segswap index` was a traceback (OSError: [Errno 28])."""
    from segswap.cli import main

    monkeypatch.setattr("segswap.collection.update.update_index", fail)
    monkeypatch.setattr(sys, "argv", ["segswap", "index", str(DATA), "--index", str(tmp_path / "index")])
    with pytest.raises(SystemExit) as ended:
        main()
    assert ended.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: no space left on the disk"), lines


#: Runs a command and bounds it (see :func:`run_bounded`); prints [exit status, peak RSS in bytes, seconds].
_BOUNDED_LAUNCHER = """
import json, os, subprocess, sys, time
import psutil
seconds, memory, command = float(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
start = time.monotonic()
process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
watched = psutil.Process(process.pid)
while True:
    pid, status, usage = os.wait4(process.pid, os.WNOHANG)
    if pid:
        break
    try:
        if time.monotonic() - start > seconds or watched.memory_info().rss > memory:
            process.kill()
    except psutil.NoSuchProcess:
        pass
    time.sleep(0.02)
print(json.dumps([os.waitstatus_to_exitcode(status), usage.ru_maxrss * 1024, time.monotonic() - start]))
"""


def run_bounded(command: list, seconds: float, memory_bytes: int):
    """Run ``command``, killed once it has run ``seconds`` or holds ``memory_bytes`` (polled, so the
    machine is spared what the limit is there to catch). Returns its exit status, its stderr, its peak
    resident memory in bytes (the kernel's account of that process, from wait4) and the seconds taken.

    A small launcher process starts it: a process forked from this one (pytest, gigabytes by the end of
    the suite) would carry this one's peak into its own account, since Linux keeps it across exec."""
    done = subprocess.run([sys.executable, "-c", _BOUNDED_LAUNCHER, str(seconds), str(memory_bytes), *map(str, command)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=seconds + 60)
    status, peak, taken = json.loads(done.stdout.strip().splitlines()[-1])
    return status, done.stderr, peak, taken


def test_a_strip_of_extreme_aspect_is_matched_within_a_minute_and_2_gb(tmp_path, run_cli):
    """Item 1 of issue 36: a 2.9 KB PNG of 60000×16 px took `segswap pair` to 22 GB, and it was killed:
    its overlay was drawn 480 px high, so 1.8 million px wide. The issue's target: a result (or a
    one-line refusal) within 60 s and 2 GB."""
    strip = np.zeros((16, 60000), np.uint8)
    strip[:, ::64] = 255
    Image.fromarray(strip).save(tmp_path / "strip.png")
    status, stderr, peak, seconds = run_bounded(
        run_cli.command("pair", tmp_path / "strip.png", DATA / "box.png", "--out", tmp_path / "out"), 60, 2 * 2**30)
    assert status == 0 and seconds < 60 and peak < 2 * 2**30, (status, round(seconds), peak / 2**30, stderr)
    from segswap.viz.overlay import MAX_ASPECT

    overlay = Image.open(tmp_path / "out" / "overlay.png")
    assert overlay.height == 480 and overlay.width <= 2 * MAX_ASPECT * 480 + 8
    assert Image.open(tmp_path / "out" / "mask_a.png").size == (60000, 16)


def test_size_has_bounds_and_its_help_gives_the_shipped_weights_size(run_cli):
    from segswap.shipped import shipped_input_size

    r = run_cli("pair", DATA / "box.png", DATA / "box.png", "--out", "o", "--size", "160000")
    assert r.returncode == 2 and "between 32 and 1280" in r.stderr
    help_text = " ".join(run_cli("pair", "--help").stdout.replace("│", " ").split())
    assert f"the weights' own, {shipped_input_size()} for the shipped ones" in help_text


def test_help_shows_plain_flags_and_capitalised_arguments(run_cli):
    help_text = run_cli("pair", "--help").stdout
    assert "Usage: segswap pair [OPTIONS] IMAGE_A IMAGE_B" in help_text
    assert "<bool>" not in help_text and "{image_a}" not in help_text
    assert "<bool>" not in run_cli("--help").stdout and "<bool>" not in run_cli("eval", "coseg", "--help").stdout


def test_backbones_table_columns_line_up(run_cli):
    lines = run_cli("backbones").stdout.splitlines()
    # four backbones, the objectness prior and four keypoint matchers; channel counts right-aligned
    ends = {line.index(f" {word} ") + len(word) + 1 for line, word in
            zip(lines[1:], ("120", "120", "112", "384", "1", "64", "64", "128", "128"))}
    assert len(lines) == 10 and len({line.index("yes") for line in lines[1:]}) == 1 and len(ends) == 1
    assert "(prior)" in lines[5] and "shipped pair model" in lines[2] and "default" in lines[1]
    assert all("(keypoints" in line for line in lines[6:]) and "(keypoints; default)" in lines[7]


def test_demo_and_pair_print_one_summary_format(tmp_path, run_cli):
    demo = run_cli("demo", "--out", tmp_path / "demo").stdout.strip()
    pair = run_cli("pair", DATA / "box.png", DATA / "box_in_scene.png", "--out", tmp_path / "pair").stdout.strip()
    pattern = r"model segswap on efficientnet-lite2[\w-]*: score [\d.]+, shared area a [\d.]+%, b [\d.]+%, \d+ correspondences"
    assert re.match(pattern, demo) and re.match(pattern, pair), (demo, pair)
    assert json.loads((tmp_path / "demo" / "result.json").read_text())["score"] == \
        json.loads((tmp_path / "pair" / "result.json").read_text())["score"]


def test_verify_help_says_how_rarely_scott_says_match(run_cli):
    """Item 9 of issue 36: `verify --by scott` says "match" almost never (recall 0.01 at the threshold
    of its own calibration), and its help did not say so."""
    from segswap.shipped import verify_calibrations

    (scott,) = [record for record in verify_calibrations() if record["model"] == "scott"]
    help_text = " ".join(run_cli("verify", "--help").stdout.replace("│", " ").split())
    assert "almost never" in help_text and f"recall {scott['recall']:.2f}" in help_text, help_text
