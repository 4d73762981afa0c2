from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from wsol.data.base import Sample
from wsol.data.loader import DecodeError, ImageDataset, collate, decode_image, make_loader


def _jpeg_bytes(arr: np.ndarray, **kw) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=95, **kw)
    return buf.getvalue()


def _scene(h=60, w=90) -> np.ndarray:
    """Dark image with a bright square whose top-left pixel is at (row 10, col 50)."""
    img = np.full((h, w, 3), 20, np.uint8)
    img[10:30, 50:70] = 240
    return img


def test_truncated_zero_byte_missing_and_text(tmp_path):
    full = _jpeg_bytes(_scene())
    (tmp_path / "trunc.jpg").write_bytes(full[: len(full) // 2])
    (tmp_path / "zero.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("this is not an image\n")
    cases = {
        "trunc.jpg": "(?i)truncated",
        "zero.jpg": "empty",
        "missing.jpg": "not found",
        "text.jpg": "cannot decode",
    }
    for name, fragment in cases.items():
        with pytest.raises(DecodeError, match=fragment):
            decode_image(tmp_path / name)


def test_cmyk_jpeg_decodes_to_rgb(tmp_path):
    rgb = _scene()
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", quality=95)
    assert Image.open(tmp_path / "cmyk.jpg").mode == "CMYK"
    pixels, size = decode_image(tmp_path / "cmyk.jpg")
    assert size == (60, 90) and pixels.shape == (60, 90, 3)
    assert abs(int(pixels[20, 60].mean()) - 240) < 12  # bright square stays bright
    assert abs(int(pixels[50, 10].mean()) - 20) < 12


def test_exif_rotation_gives_displayed_orientation(tmp_path):
    upright = _scene()
    # Orientation 6 means: rotate the stored pixels 90 degrees clockwise to display them,
    # so store them rotated 90 degrees counter-clockwise.
    stored = np.ascontiguousarray(np.rot90(upright, 1))
    exif = Image.Exif()
    exif[0x0112] = 6
    (tmp_path / "rot.jpg").write_bytes(_jpeg_bytes(stored, exif=exif.tobytes()))
    pixels, size = decode_image(tmp_path / "rot.jpg")
    assert size == (60, 90) and pixels.shape == (60, 90, 3)
    assert pixels[20, 60].mean() > 200 and pixels[20, 20].mean() < 60


@pytest.mark.parametrize("mode", ["L", "P", "RGBA", "I;16", "LA"])
def test_unusual_modes(tmp_path, mode):
    base = Image.fromarray(_scene())
    if mode == "I;16":
        arr = np.asarray(base.convert("L"), np.uint16) * 257
        im = Image.fromarray(arr)
        assert im.mode.startswith("I")
    elif mode == "RGBA":
        im = base.convert("RGBA")
    else:
        im = base.convert(mode)
    im.save(tmp_path / "x.png")
    pixels, size = decode_image(tmp_path / "x.png")
    assert size == (60, 90)
    assert pixels.dtype == np.uint8 and pixels.shape == (60, 90, 3)
    assert pixels[20, 60].mean() > 200 and pixels[50, 10].mean() < 60


@pytest.mark.parametrize(("white", "grey"), [(1.0, 0.5), (255.0, 127.5), (65535.0, 32767.5)])
def test_float_tiffs_are_scaled_by_their_range(tmp_path, white, grey):
    arr = np.zeros((60, 90), np.float32)
    arr[10:30, 50:70] = white
    arr[40:, :20] = grey
    Image.fromarray(arr, mode="F").save(tmp_path / "x.tif")
    pixels, size = decode_image(tmp_path / "x.tif")
    assert size == (60, 90) and pixels.dtype == np.uint8
    assert pixels[20, 60].min() == 255 and pixels[50, 10].max() in (127, 128)
    assert pixels[0, 0].max() == 0


@pytest.mark.parametrize(("value", "why"), [(float("nan"), "NaN"), (-2.0, "values in")])
def test_float_tiffs_no_scale_fits_are_failures(tmp_path, value, why):
    arr = np.full((8, 8), 0.5, np.float32)
    arr[0, 0] = value
    Image.fromarray(arr, mode="F").save(tmp_path / "x.tif")
    with pytest.raises(DecodeError, match=why):
        decode_image(tmp_path / "x.tif")


def test_a_file_that_is_no_image_says_so_without_python_internals(tmp_path):
    (tmp_path / "x.jpg").write_text("hello")
    with pytest.raises(DecodeError, match="not an image format") as e:
        decode_image(tmp_path / "x.jpg")
    assert "BytesIO" not in str(e.value) and "0x" not in str(e.value)


def test_large_jpeg_is_drafted_but_reports_full_size(tmp_path):
    big = np.zeros((3000, 4000, 3), np.uint8)
    big[1000:2000, 2000:3000] = 255
    (tmp_path / "big.jpg").write_bytes(_jpeg_bytes(big))
    pixels, size = decode_image(tmp_path / "big.jpg", max_side=224)
    assert size == (3000, 4000)
    assert max(pixels.shape[:2]) < 1200  # decoded at reduced scale, not 4000 wide


def test_loader_records_failures_and_keeps_going(tmp_path):
    good = tmp_path / "good.jpg"
    good.write_bytes(_jpeg_bytes(_scene()))
    (tmp_path / "zero.jpg").write_bytes(b"")
    samples = [
        Sample(1, str(good), "good.jpg"),
        Sample(2, str(tmp_path / "zero.jpg"), "zero.jpg"),
        Sample(3, str(tmp_path / "nope.jpg"), "nope.jpg"),
        Sample(4, str(good), "g2.jpg"),
    ]
    batches = list(make_loader(samples, (32, 48), batch_size=3))
    assert [b.indices for b in batches] == [[0], [3]]
    fails = [f for b in batches for f in b.failures]
    assert [(f.image_id, f.stage) for f in fails] == [(2, "decode"), (3, "decode")]
    assert batches[0].images.shape == (1, 3, 32, 48)
    assert batches[0].images.dtype == torch.uint8
    assert batches[0].orig_sizes == [(60, 90)]


def test_size_mismatch_is_a_warning(tmp_path):
    good = tmp_path / "good.jpg"
    good.write_bytes(_jpeg_bytes(_scene()))
    item = ImageDataset([Sample(1, str(good), "good.jpg", height=10, width=10)], (8, 8))[0]
    assert "annotation says 10x10" in item["warning"]
    assert collate([item]).warnings == [item["warning"]]


def test_letterbox_keeps_aspect_and_reports_region():
    from wsol.data.loader import letterbox

    canvas, region = letterbox(_scene(), (48, 48), fill=(124, 116, 104))
    assert canvas.shape == (48, 48, 3)
    assert region == (32 / 48, 1.0)  # 60x90 -> 32x48 at the top left
    assert (canvas[32:] == (124, 116, 104)).all()
    assert canvas[10, 30].mean() > 200  # the bright square, scaled by 48/90


def test_a_signal_while_the_workers_start_leaves_no_half_built_iterator(monkeypatch):
    """SIGTERM lands inside torch's DataLoader iterator set-up (as it makes its result
    queue): the iterator is finished and shut down cleanly, then Terminated is raised.
    Raised half-way, the iterator's finalizer fails ("Exception ignored ... '_shutdown'")."""
    import gc
    import os
    import signal
    import sys

    import torch

    from wsol.cli import Terminated, _terminate
    from wsol.data.loader import start_batches
    from wsol.fileio import deferring

    real_queue = torch.multiprocessing.Queue

    def queue_then_signal(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        return real_queue(*args, **kwargs)

    monkeypatch.setattr(torch.multiprocessing, "Queue", queue_then_signal)
    unraisable = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    loader = torch.utils.data.DataLoader(list(range(4)), batch_size=2, num_workers=1)
    previous = signal.signal(signal.SIGTERM, deferring(_terminate))
    try:
        with pytest.raises(Terminated):
            start_batches(loader)
        gc.collect()
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert [u.exc_value for u in unraisable] == []
