import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from segswap.errors import ImageError
from segswap.io import load_image, resize_for_model


def _gradient(w=64, h=48):
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :].repeat(h, 0)
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None].repeat(w, 1)
    return np.stack([x, y, 255 - x], axis=2).astype(np.uint8)


def test_rgb_png_round_trips(tmp_path):
    rgb = _gradient()
    Image.fromarray(rgb).save(tmp_path / "a.png")
    out = load_image(tmp_path / "a.png")
    assert out.dtype == np.uint8 and out.shape == (48, 64, 3)
    assert np.array_equal(out, rgb)


def test_exif_orientation_is_applied(tmp_path):
    rgb = _gradient(64, 48)
    exif = Image.Exif()
    exif[0x0112] = 6  # rotated: display needs a 90° clockwise turn
    Image.fromarray(rgb).save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = load_image(tmp_path / "r.jpg")
    assert out.shape == (64, 48, 3)
    # after a clockwise turn the original top-left (dark red channel) is at the top-right
    assert out[0, -1, 0] < 40 and out[-1, 0, 0] > 200


@pytest.mark.parametrize("mode", ["L", "P", "CMYK", "RGBA", "LA", "1", "I;16", "I", "F"])
def test_every_mode_becomes_rgb_uint8(tmp_path, mode):
    base = Image.fromarray(_gradient())
    if mode == "I;16":
        img = Image.fromarray((np.asarray(base.convert("L")).astype(np.uint16) * 257))
    elif mode == "I":
        img = Image.fromarray(np.asarray(base.convert("L")).astype(np.int32) * 257)
    elif mode == "F":
        img = Image.fromarray(np.asarray(base.convert("L")).astype(np.float32) / 255.0)
    else:
        img = base.convert(mode)
    suffix = ".tif" if mode in ("CMYK", "I", "F") else ".png"
    img.save(tmp_path / f"x{suffix}")
    out = load_image(tmp_path / f"x{suffix}")
    assert out.dtype == np.uint8 and out.shape == (48, 64, 3)
    if mode in ("L", "I;16", "I", "F"):  # the same grey levels come back, whatever the bit depth
        grey = np.asarray(base.convert("L"))
        assert np.abs(out[..., 0].astype(int) - grey).max() <= 1


def test_transparent_pixels_become_white(tmp_path):
    rgba = np.zeros((32, 32, 4), np.uint8)
    rgba[..., 0] = 200
    rgba[:, 16:, 3] = 255  # left half transparent
    Image.fromarray(rgba).save(tmp_path / "t.png")
    out = load_image(tmp_path / "t.png")
    assert (out[:, :16] == 255).all() and (out[:, 16:] == [200, 0, 0]).all()


def test_arrays_and_pil_images_are_accepted():
    rgb = _gradient()
    assert np.array_equal(load_image(rgb), rgb)
    assert np.array_equal(load_image(Image.fromarray(rgb)), rgb)
    assert load_image(rgb[..., 0]).shape == (48, 64, 3)
    assert load_image(rgb.astype(np.float32) / 255).dtype == np.uint8
    assert load_image((rgb.astype(np.uint16) * 257)).max() == rgb.max()


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: None, "no such file"),
        (lambda p: p.write_bytes(b""), "empty"),
        (lambda p: p.write_text("hello, I am text"), "not an image"),
        (lambda p: p.mkdir(), "directory"),
    ],
)
def test_bad_files_give_one_line_errors(tmp_path, make, message):
    path = tmp_path / "bad.png"
    make(path)
    with pytest.raises(ImageError, match=message) as info:
        load_image(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated_file(tmp_path):
    Image.fromarray(_gradient(256, 256)).save(tmp_path / "full.jpg", quality=95)
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="cannot decode"):
        load_image(tmp_path / "cut.jpg")


def _png_header_only(path, width, height):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IEND", b""))


def test_gigantic_images_are_refused_before_decoding(tmp_path):
    _png_header_only(tmp_path / "bomb.png", 40000, 40000)  # 1.6 G pixels announced
    with pytest.raises(ImageError, match="too large"):
        load_image(tmp_path / "bomb.png")
    Image.fromarray(_gradient()).save(tmp_path / "ok.png")
    with pytest.raises(ImageError, match="too large"):
        load_image(tmp_path / "ok.png", max_pixels=1000)


def test_tiny_images_are_refused(tmp_path):
    Image.fromarray(_gradient(8, 40)).save(tmp_path / "tiny.png")
    with pytest.raises(ImageError, match="too small"):
        load_image(tmp_path / "tiny.png")


def test_bad_arrays():
    with pytest.raises(ImageError):
        load_image(np.zeros((4, 4, 4, 4)))
    with pytest.raises(ImageError, match="NaN"):
        load_image(np.full((32, 32), np.nan))
    with pytest.raises(ImageError):
        load_image(12)


@pytest.mark.parametrize("shape", [(480, 640), (100, 1000), (37, 41), (1000, 20)])
def test_resize_for_model_gives_multiples_of_16_near_the_aspect(shape):
    out = resize_for_model(np.zeros((*shape, 3), np.uint8), 480)
    h, w = out.shape[:2]
    assert h % 16 == 0 and w % 16 == 0 and min(h, w) >= 32
    assert abs(max(h, w) - 480) <= 8
    if min(shape) * 480 / max(shape) >= 32:
        assert abs(w / h - shape[1] / shape[0]) < 0.1 * shape[1] / shape[0] + 16 / min(h, w)


def test_a_huge_jpeg_is_decoded_downscaled_within_the_pixel_budget(tmp_path):
    """Item 19 of issue 21: a 12000×9000 JPEG was decoded at full size and `pair` peaked at 4.5 GB."""
    import subprocess
    import sys

    from PIL import Image

    from segswap.io.images import DECODE_PIXELS

    path = tmp_path / "huge.jpg"
    Image.new("RGB", (12000, 9000), (120, 30, 200)).save(path, quality=70)
    # VmHWM: this process's own peak (ru_maxrss would count the parent's pages at fork, in a large pytest)
    probe = ("import re, sys; from segswap.io import load_image; rgb = load_image(sys.argv[1]); "
             "peak = re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1); "
             "print(rgb.shape[1], rgb.shape[0], int(peak) // 1024)")
    r = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True, text=True, timeout=120)
    width, height, peak_mb = map(int, r.stdout.split())
    assert width * height <= DECODE_PIXELS and abs(width / height - 12000 / 9000) < 0.01
    assert peak_mb < 800, f"peak {peak_mb} MB"
    png = tmp_path / "big.png"
    Image.new("L", (7000, 5000), 90).save(png)
    assert load_image(png).shape[0] * load_image(png).shape[1] <= DECODE_PIXELS
