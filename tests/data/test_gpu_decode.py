"""Device decode and resize (wsol.data.gpu_decode), run on the CPU against the CPU loader."""

from __future__ import annotations

import io

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from torchvision.io import ImageReadMode
from torchvision.io import decode_image as tv_decode_image

from wsol.data.decode import DecodeError, decode_image
from wsol.data.gpu_decode import (
    DecodedImage,
    apply_orientation,
    area_weights,
    decode_jpegs,
    jpeg_info,
    resize_on_device,
)
from wsol.data.loader import resize

# torchvision.io's decoders are deprecated in favour of TorchCodec (0.29); they still work.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def _photo(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A smooth ``uint8 [h, w, 3]`` picture with some edges (BGR for cv2)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.stack([np.sin(6 * xx + c) * np.cos(4 * yy - c) for c in range(3)], -1)
    img = (img + 1) * 110 + rng.normal(0, 4, (h, w, 3))
    img[h // 4 : h // 2, w // 3 : w // 2] = (20, 200, 90)
    return img.clip(0, 255).astype(np.uint8)


def _write_jpeg(path, pixels: np.ndarray, quality: int = 90):
    assert cv2.imwrite(str(path), pixels, [cv2.IMWRITE_JPEG_QUALITY, quality])
    return path


def _pil_jpeg(path, rgb: np.ndarray, **save):
    Image.fromarray(rgb).save(path, "JPEG", quality=90, **save)
    return path


@pytest.fixture
def jpegs(tmp_path):
    return [
        _write_jpeg(tmp_path / "a.jpg", _photo(75, 100, 0)),
        _write_jpeg(tmp_path / "b.jpg", _photo(37, 51, 1)),  # odd sizes, chroma padding
        _write_jpeg(tmp_path / "gray.jpg", cv2.cvtColor(_photo(40, 30, 2), cv2.COLOR_BGR2GRAY)),
        _pil_jpeg(tmp_path / "prog.jpg", _photo(64, 48, 3), progressive=True),
    ]


def test_cpu_decode_matches_torchvision_and_cpu_loader(jpegs):
    results = decode_jpegs(jpegs, "cpu")
    assert len(results) == len(jpegs)
    for path, res in zip(jpegs, results, strict=True):
        assert isinstance(res, DecodedImage), res
        assert res.decoder == "libjpeg" and res.pixels.dtype == torch.uint8
        assert res.pixels.shape[0] == 3
        ref = tv_decode_image(str(path), mode=ImageReadMode.RGB)
        assert torch.equal(res.pixels, ref)
        pil, orig = decode_image(path)  # the CPU loader's decoder
        assert res.orig_size == orig
        np.testing.assert_array_equal(res.pixels.permute(1, 2, 0).numpy(), pil)


def test_bytes_and_paths_decode_alike(jpegs):
    by_path = decode_jpegs(jpegs, "cpu")
    by_bytes = decode_jpegs([p.read_bytes() for p in jpegs], "cpu")
    for a, b in zip(by_path, by_bytes, strict=True):
        assert torch.equal(a.pixels, b.pixels) and a.orig_size == b.orig_size


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_matches_cpu_loader(tmp_path, orientation):
    rgb = _photo(30, 52, orientation)
    exif = Image.Exif()
    exif[0x0112] = orientation
    path = _pil_jpeg(tmp_path / "o.jpg", rgb, exif=exif.tobytes())
    info = jpeg_info(path.read_bytes())
    assert info is not None and info.orientation == orientation
    assert (info.height, info.width) == (30, 52)
    (res,) = decode_jpegs([path], "cpu")
    pil, orig = decode_image(path)
    assert res.decoder == "libjpeg" and res.orig_size == orig
    np.testing.assert_array_equal(res.pixels.permute(1, 2, 0).numpy(), pil)
    (stored,) = decode_jpegs([path], "cpu", apply_exif=False)
    assert stored.pixels.shape[1:] == (30, 52)


def test_apply_orientation_is_identity_for_1():
    x = torch.arange(6).view(1, 2, 3)
    assert apply_orientation(x, 1) is x
    assert apply_orientation(x, 6).tolist() == [[[3, 0], [4, 1], [5, 2]]]  # clockwise


def test_png_and_cmyk_fall_back_to_cpu_decoder(tmp_path):
    png = tmp_path / "x.png"
    cv2.imwrite(str(png), _photo(20, 24, 4))
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(_photo(16, 20, 5)).convert("CMYK").save(cmyk, "JPEG")
    assert jpeg_info(png.read_bytes()) is None
    assert not jpeg_info(cmyk.read_bytes()).gpu_ok
    for path in (png, cmyk):
        (res,) = decode_jpegs([path], "cpu")
        assert isinstance(res, DecodedImage) and res.decoder == "pil"
        pil, orig = decode_image(path)
        assert res.orig_size == orig
        np.testing.assert_array_equal(res.pixels.permute(1, 2, 0).numpy(), pil)


def test_failures_are_reported_in_place(tmp_path, jpegs):
    good = jpegs[0].read_bytes()
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(b"\xff\xd8\xff\xe0 this is not a jpeg at all")
    truncated = tmp_path / "truncated.jpg"
    truncated.write_bytes(good[: len(good) // 2])
    items = [jpegs[0], corrupt, tmp_path / "missing.jpg", truncated, b"", jpegs[1]]
    results = decode_jpegs(items, "cpu")
    assert isinstance(results[0], DecodedImage) and isinstance(results[5], DecodedImage)
    for k in (1, 2, 3, 4):
        assert isinstance(results[k], DecodeError), k
    assert "file not found" in str(results[2])
    assert "cannot decode image" in str(results[1])
    assert not jpeg_info(truncated.read_bytes()).gpu_ok  # no end-of-image marker
    with pytest.raises(DecodeError):  # the CPU loader refuses it too
        decode_image(truncated)


def test_huge_jpeg_is_drafted_by_cpu_decoder(tmp_path):
    path = _write_jpeg(tmp_path / "big.jpg", _photo(300, 400, 6))
    (res,) = decode_jpegs([path], "cpu", max_side=50, max_gpu_pixels=1000)
    pil, orig = decode_image(path, max_side=50)
    assert res.decoder == "pil" and res.orig_size == orig == (300, 400)
    assert res.pixels.shape[1:] == pil.shape[:2] == (150, 200)
    np.testing.assert_array_equal(res.pixels.permute(1, 2, 0).numpy(), pil)


def test_resize_keeps_same_size_and_batches_mixed_sizes():
    a = torch.from_numpy(_photo(20, 30, 7)).permute(2, 0, 1).contiguous()
    b = torch.from_numpy(_photo(40, 10, 8)).permute(2, 0, 1).contiguous()
    out = resize_on_device([a, b, a], (20, 30))
    assert out.shape == (3, 3, 20, 30) and out.dtype == torch.uint8
    assert torch.equal(out[0], a) and torch.equal(out[2], a)
    assert resize_on_device([], (5, 6)).shape == (0, 3, 5, 6)


@pytest.mark.parametrize(
    ("src", "dst", "mean_tol", "max_tol"),
    [
        ((75, 100), (150, 220), 0.5, 1),  # enlarge: cv2 INTER_LINEAR
        ((75, 100), (100, 60), 0.5, 2),  # mixed: INTER_LINEAR as well
        ((375, 500), (224, 224), 0.05, 1),  # shrink: cv2 INTER_AREA, by area weights
        ((400, 600), (200, 300), 0.05, 1),  # shrink by a whole factor (cv2's fast path)
        ((500, 333), (520, 300), 0.5, 2),  # mixed: INTER_LINEAR
    ],
)
def test_resize_is_close_to_cpu_loader(src, dst, mean_tol, max_tol):
    pixels = _photo(*src, seed=9)
    ref = resize(pixels, dst).astype(np.int64)
    x = torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
    got = resize_on_device([x], dst)[0].permute(1, 2, 0).numpy().astype(np.int64)
    diff = np.abs(got - ref)
    assert diff.mean() <= mean_tol and diff.max() <= max_tol, (diff.mean(), diff.max())


def test_area_weights_average_the_input_under_each_output_pixel():
    w = area_weights(5, 2)  # each output pixel covers 2.5 input pixels
    torch.testing.assert_close(w, torch.tensor([[0.4, 0.4, 0.2, 0, 0], [0, 0, 0.2, 0.4, 0.4]]))
    torch.testing.assert_close(area_weights(6, 3).sum(1), torch.ones(3))


def test_resize_shrink_on_real_photos_is_the_cpu_loaders(voc_root):
    from wsol.data.decode import decode_image

    for path in sorted((voc_root / "JPEGImages").glob("*.jpg"))[:8]:
        pixels, _ = decode_image(path)
        for dst in [(224, 224), (260, 260), (112, 160)]:
            ref = resize(pixels, dst).astype(np.int64)
            x = torch.from_numpy(pixels).permute(2, 0, 1).contiguous()
            got = resize_on_device([x], dst)[0].permute(1, 2, 0).numpy().astype(np.int64)
            assert np.abs(got - ref).max() <= 1, (path.name, dst)


def test_resize_shrink_is_closer_to_area_than_plain_bilinear():
    pixels = _photo(375, 500, seed=10)
    pixels[::2] = 255 - pixels[::2]  # fine stripes: aliasing shows without a filter
    ref = resize(pixels, (100, 120)).astype(np.float64)
    x = torch.from_numpy(pixels).permute(2, 0, 1)[None].float()
    plain = torch.nn.functional.interpolate(x, size=(100, 120), mode="bilinear")
    got = resize_on_device([x[0].to(torch.uint8)], (100, 120))[0]
    err = np.abs(got.permute(1, 2, 0).numpy() - ref).mean()
    err_plain = np.abs(plain[0].round().permute(1, 2, 0).numpy() - ref).mean()
    assert err < err_plain / 3, (err, err_plain)


def test_jpeg_info_reads_header(jpegs):
    info = jpeg_info(jpegs[1].read_bytes())
    assert (info.height, info.width, info.components, info.precision) == (37, 51, 3, 8)
    assert info.orientation == 1 and info.complete and info.gpu_ok
    assert jpeg_info(jpegs[2].read_bytes()).components == 1
    assert jpeg_info(jpegs[3].read_bytes()).sof == 0xC2  # progressive
    assert jpeg_info(b"\x89PNG\r\n") is None
    buf = io.BytesIO()
    Image.new("RGB", (4, 4)).save(buf, "JPEG")
    assert jpeg_info(buf.getvalue()[:10]) is None  # header cut short
