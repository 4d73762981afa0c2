"""Runs that share a DecodeCache: the second method at the same view size decodes
nothing, and gives the same outputs as without the cache."""

from __future__ import annotations

import json

import pytest

import wsol.data.loader as loader_module
from tests.helpers import method_config
from wsol.data.cache import DecodeCache
from wsol.run.calibration import calibrate_config
from wsol.run.pipeline import run_config

pytestmark = pytest.mark.e2e

TIMING = ("images_per_second", "stage_seconds")


def _metrics(out) -> dict:
    m = json.loads((out / "metrics.json").read_text())
    return {k: v for k, v in m.items() if k not in TIMING}


def test_runs_of_two_methods_at_one_size_decode_each_image_once(shapes_root, tmp_path, monkeypatch):
    decodes = []
    real = loader_module.decode_image

    def counting(path, *args, **kwargs):
        decodes.append(path)
        return real(path, *args, **kwargs)

    monkeypatch.setattr(loader_module, "decode_image", counting)
    cache = DecodeCache()
    # The first run decodes in a worker process, as a run on this machine does.
    first = run_config(
        method_config(shapes_root, tmp_path / "gradcam", "gradcam"), decode_cache=cache
    )
    n = first.metrics["num_images"]
    # Its report's 2 pictures are taken from what the run itself decoded.
    assert n == 4 and (cache.hits, cache.misses, len(cache)) == (2, n, n)
    # The second decodes in this process: counted here, and none of its images is decoded.
    one_process = ["data.num_workers=0"]
    cfg = method_config(shapes_root, tmp_path / "cam", "cam", *one_process)
    second = run_config(cfg, decode_cache=cache)
    assert decodes == [] and cache.misses == n
    assert cache.hits == 2 + n + 2  # its 4 images, and its report's 2 pictures
    # ... and it is the run it would be without the cache, to the byte.
    plain = run_config(method_config(shapes_root, tmp_path / "plain", "cam", *one_process))
    assert len(decodes) == n + 2  # (the plain run decodes them all)
    assert (second.out_dir / "pseudo_labels.json").read_bytes() == (
        plain.out_dir / "pseudo_labels.json"
    ).read_bytes()
    assert _metrics(second.out_dir) == _metrics(plain.out_dir)
    # Calibrating at the same size takes the views from the cache as well.
    calibrate_config(
        method_config(shapes_root, tmp_path / "cal", "gradcam", *one_process), decode_cache=cache
    )
    assert len(decodes) == n + 2 and cache.misses == n
