"""The decode cache: keys that follow the file, LRU within a byte budget, loaders that
take what an earlier pass decoded and give the same batches."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image

import wsol.data.loader as loader_module
from wsol.data.base import Sample
from wsol.data.cache import DecodeCache, Decoded, cache_key
from wsol.data.loader import make_loader


def _write(path, value: int, size=(40, 60)) -> None:
    arr = np.full((*size, 3), value, np.uint8)
    arr[5:15, 10:30] = 255 - value
    Image.fromarray(arr).save(path)


def _samples(folder, n=5) -> list[Sample]:
    out = []
    for i in range(n):
        p = folder / f"im{i}.png"
        _write(p, 20 * i + 10, size=(40 + i, 60))
        out.append(Sample(image_id=i, path=str(p), file_name=p.name, height=40 + i, width=60))
    out.append(Sample(image_id=n, path=str(folder / "missing.png"), file_name="missing.png"))
    return out


@pytest.fixture
def decodes(monkeypatch):
    """How many times the loader really decoded a file."""
    calls = []
    real = loader_module.decode_image

    def counting(path, *args, **kwargs):
        calls.append(str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(loader_module, "decode_image", counting)
    return calls


def _batches(samples, cache, size=(32, 48), policy="stretch"):
    fill = (1, 2, 3)
    return list(make_loader(samples, size, 2, 0, policy, fill, cache=cache))


def _same(a, b) -> None:
    assert len(a) == len(b)
    for x, y in zip(a, b, strict=True):
        assert torch.equal(x.images, y.images) and x.indices == y.indices
        assert x.orig_sizes == y.orig_sizes and x.regions == y.regions
        assert [f.to_dict() for f in x.failures] == [f.to_dict() for f in y.failures]


def test_a_second_pass_at_the_same_size_decodes_nothing(tmp_path, decodes):
    samples = _samples(tmp_path)
    plain = _batches(samples, None)
    assert len(decodes) == 6  # five images and the missing file
    cache = DecodeCache()
    first = _batches(samples, cache)
    assert len(decodes) == 12 and (cache.hits, cache.misses, len(cache)) == (0, 5, 5)
    second = _batches(samples, cache)
    # Only the missing file is tried again (a failure is not kept): it fails the same way.
    assert decodes[12:] == [samples[5].path] and (cache.hits, cache.misses) == (5, 5)
    _same(plain, first)
    _same(plain, second)
    assert second[2].failures[0].reason == plain[2].failures[0].reason
    assert any(f.from_cache for f in second) and not any(any(f.from_cache) for f in first)


def test_another_size_or_policy_is_another_view(tmp_path, decodes):
    samples = _samples(tmp_path, 3)[:3]
    cache = DecodeCache()
    _batches(samples, cache)
    _batches(samples, cache, size=(24, 24))
    boxed = _batches(samples, cache, size=(24, 24), policy="letterbox")
    assert len(decodes) == 9 and len(cache) == 9
    _same(boxed, _batches(samples, None, size=(24, 24), policy="letterbox"))
    _batches(samples, cache, size=(24, 24), policy="letterbox")
    assert len(decodes) == 12  # 9 through the cache, 3 without it: none for the last pass


def test_an_edited_file_is_decoded_again(tmp_path, decodes):
    samples = _samples(tmp_path, 2)[:2]
    cache = DecodeCache()
    _batches(samples, cache)
    st = os.stat(samples[0].path)
    _write(samples[0].path, 200, size=(40, 60))
    os.utime(samples[0].path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    again = _batches(samples, cache)
    assert decodes[2:] == [samples[0].path]
    _same(again, _batches(samples, None))


def test_a_file_over_the_size_limit_is_not_served_from_the_cache(tmp_path):
    samples = _samples(tmp_path, 1)[:1]
    cache = DecodeCache()
    _batches(samples, cache)
    small = list(make_loader(samples, (32, 48), 2, 0, max_bytes=10, cache=cache))
    assert small[0].failures and "data.max_file_mb" in small[0].failures[0].reason
    assert cache_key(samples[0].path, (32, 48), "stretch", (0, 0, 0), max_bytes=10) is None


def _view(value: int, side: int = 10) -> Decoded:
    return Decoded(torch.full((3, side, side), value, dtype=torch.uint8), (side, side), (1, 1))


def test_least_recently_used_views_go_first_within_the_budget():
    cache = DecodeCache(max_bytes=3 * 300)  # three 3x10x10 views
    keys = [("/x", i, 0, (10, 10), "stretch", (0, 0, 0)) for i in range(5)]
    for i in range(3):
        cache.put(keys[i], _view(i))
    assert cache.get(keys[0]).pixels[0, 0, 0] == 0  # 0 is now the most recent
    cache.put(keys[3], _view(3))  # drops 1, the least recently used
    assert keys[1] not in cache and all(k in cache for k in (keys[0], keys[2], keys[3]))
    assert cache.nbytes == 900 and len(cache) == 3
    cache.put(keys[4], _view(4, side=20))  # larger than the whole budget: not kept
    assert keys[4] not in cache and cache.nbytes == 900
    cache.put(keys[0], _view(9))  # replaced, not counted twice
    assert cache.nbytes == 900 and cache.get(keys[0]).pixels[0, 0, 0] == 9
    with pytest.raises(ValueError, match="max_bytes"):
        DecodeCache(-1)


def test_a_pickled_cache_is_empty():
    cache = DecodeCache(max_bytes=1000)
    cache.put(("/x", 1, 0, (10, 10), "stretch", (0, 0, 0)), _view(1))
    copy = pickle.loads(pickle.dumps(cache))
    assert len(copy) == 0 and copy.max_bytes == 1000 and len(cache) == 1


@pytest.mark.e2e
def test_decoding_workers_read_the_cache_and_the_owner_fills_it(tmp_path):
    samples = _samples(tmp_path)
    cache = DecodeCache()
    plain = list(make_loader(samples, (32, 48), 2, 2))
    first = list(make_loader(samples, (32, 48), 2, 2, cache=cache))
    assert (cache.hits, cache.misses, len(cache)) == (0, 5, 5)
    second = list(make_loader(samples, (32, 48), 2, 2, cache=cache))
    assert (cache.hits, cache.misses) == (5, 5)
    _same(plain, first)
    _same(plain, second)
