import os
import subprocess

import pytest

from segswap.errors import SegswapError
from segswap.io.paths import IMAGE_SUFFIXES, check_output_file, check_output_folder, list_images


def test_symlinked_folders_are_followed_once_and_loops_end(tmp_path):
    """Item 9 of issue 21: symlinked sub-folders were skipped (2 of 6 images indexed)."""
    (tmp_path / "photos").mkdir()
    (tmp_path / "elsewhere").mkdir()
    for name in ("a.jpg", "b.PNG"):
        (tmp_path / "photos" / name).write_bytes(b"x")
    for name in ("c.jpg", "d.gif", "e.webp", "f.tif"):
        (tmp_path / "elsewhere" / name).write_bytes(b"x")
    (tmp_path / "elsewhere" / "notes.txt").write_text("not an image")
    (tmp_path / "photos" / ".hidden.jpg").write_bytes(b"x")
    os.symlink(tmp_path / "elsewhere", tmp_path / "photos" / "linked")
    os.symlink(tmp_path / "photos", tmp_path / "elsewhere" / "back")  # a loop
    found = [p.relative_to(tmp_path / "photos").as_posix() for p in list_images(tmp_path / "photos")]
    assert found == ["a.jpg", "b.PNG", "linked/c.jpg", "linked/d.gif", "linked/e.webp", "linked/f.tif"]
    assert [p.name for p in list_images(tmp_path / "photos", recursive=False)] == ["a.jpg", "b.PNG"]


def test_one_suffix_list_in_the_package():
    """Item 9: IMAGE_SUFFIXES existed three times with different members."""
    import segswap

    root = os.path.dirname(segswap.__file__)
    found = subprocess.run(["grep", "-rln", "--include=*.py", "IMAGE_SUFFIXES = ", root], capture_output=True, text=True)
    assert found.stdout.split() == [os.path.join(root, "io", "paths.py")]
    assert {".jpg", ".png", ".gif", ".webp"} <= IMAGE_SUFFIXES


@pytest.mark.parametrize("make, message", [
    (lambda t: t / "file", "is a file, not a folder"),
    (lambda t: t / "file" / "sub", "is a file, not a folder"),
    (lambda t: t / ("x" * 256), "longer than 255 bytes"),
])
def test_output_folders_are_checked(tmp_path, make, message):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SegswapError, match=message):
        check_output_folder(make(tmp_path), "--out")
    assert check_output_folder(tmp_path / "new" / "deeper", "--out") == tmp_path / "new" / "deeper"


def test_output_files_are_checked(tmp_path):
    with pytest.raises(SegswapError, match="--json .*: is a folder, not a file"):
        check_output_file(tmp_path, "--json")
    assert check_output_file(tmp_path / "r.json", "--json") == tmp_path / "r.json"
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "locked").mkdir(mode=0o500)
        with pytest.raises(SegswapError, match="cannot write"):
            check_output_file(tmp_path / "locked" / "r.json", "--json")
