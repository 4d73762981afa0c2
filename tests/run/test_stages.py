"""The overlapped run: thread counts, the host stage, and output equal to a sequential run."""

from __future__ import annotations

import threading
import time

import pytest

from wsol.run import run
from wsol.run.stages import STAGES, HostStage, StageClock, plan_threads


def test_thread_plan_keeps_the_model_s_cores_on_a_cpu_and_shares_them_on_a_gpu():
    assert plan_threads("cpu", cpus=2) == (1, 1)
    assert plan_threads("cpu", cpus=1) == (0, 1)
    assert plan_threads("cuda", cpus=16) == (8, 8)
    assert plan_threads("cuda", cpus=4) == (2, 2)
    assert plan_threads("cuda", workers=3, host=5, cpus=16) == (3, 5)  # explicit wins
    assert plan_threads("cpu", workers=0, cpus=8) == (0, 1)
    # decoding on the device: the workers only read files; the host stage sweeps
    assert plan_threads("cuda", cpus=16, decode="device") == (4, 11)
    assert plan_threads("cuda", cpus=2, decode="device") == (1, 1)
    assert plan_threads("cpu", cpus=2, decode="device") == (1, 1)


def test_host_stage_runs_batches_in_order_beside_the_caller_and_raises_their_errors():
    seen, main = [], threading.get_ident()

    def batch(i):
        time.sleep(0.01 * (3 - i))  # later batches are quicker: order must still hold
        seen.append((i, threading.get_ident() != main))

    with HostStage(threads=3) as host:
        for i in range(3):
            host.submit(lambda i=i: batch(i))
        assert list(host.map(lambda x: x * x, range(5))) == [0, 1, 4, 9, 16]
    assert seen == [(0, True), (1, True), (2, True)]

    def broken():
        raise ValueError("in the host stage")

    with pytest.raises(ValueError, match="in the host stage"), HostStage() as host:
        host.submit(broken)
        host.submit(lambda: None)  # the error surfaces here, in the caller


def test_stage_clock_adds_and_takes():
    clock = StageClock()
    with clock.timing("model"):
        time.sleep(0.01)
    first = clock.take()
    assert set(first) == set(STAGES) and first["model"] >= 0.01 and first["boxes"] == 0
    assert clock.take()["model"] == 0


@pytest.mark.e2e
def test_overlapped_run_writes_what_a_sequential_run_writes(tmp_path, shapes_root):
    """Decoding workers, a host thread pool and time-sized chunks change nothing in the
    files; the stage breakdown is reported."""
    common = [
        "data.format=voc",
        f"data.root={shapes_root}",
        "data.split=test",
        "model.arch=shapes_net",
        "model.weights=none",
        "cam.batch_size=5",
        "report.enabled=false",
        "export.formats=[coco, yolo]",
    ]
    plain = run(None, [*common, f"out={tmp_path / 'seq'}", "data.num_workers=0", "host_threads=1"])
    busy = run(
        None,
        [*common, f"out={tmp_path / 'ovl'}", "data.num_workers=2", "host_threads=3"],
    )
    for name in ("pseudo_labels.json", "yolo/labels/test_00003.txt"):
        assert (busy.out_dir / name).read_bytes() == (plain.out_dir / name).read_bytes()
    for key in ("corloc", "maxboxacc", "maxboxacc_v2", "pxap", "coco_ap"):
        assert busy.metrics[key] == plain.metrics[key], key
    stages = busy.metrics["stage_seconds"]
    assert set(stages) == set(STAGES) and stages["model"] > 0 and stages["score"] > 0


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["fraction", "absolute", "otsu"])
def test_boxes_found_on_the_device_are_the_hosts(tmp_path, voc_root, mode):
    """The device path (forced here: scipy labels on a CPU) writes the same
    pseudo-labels, byte for byte, as the host's cv2 path, on real photos of many sizes;
    without scoring, the maps then never leave the device."""
    common = [
        "data.format=voc",
        f"data.root={voc_root}",
        "data.split=sample",
        "data.limit=12",
        "model.arch=efficientnet_lite0",
        "model.weights=DEFAULT",
        "model.class_map=imagenet_to_voc",
        "model.skip_unmapped=true",
        "cam.targets=topk",
        "cam.topk=2",
        f"boxes.threshold_mode={mode}",
        "boxes.threshold=0.3",
        "report.enabled=false",
        "eval.enabled=false",
    ]
    host = run(None, [*common, f"out={tmp_path / 'host'}", "boxes.device_components=off"])
    device = run(None, [*common, f"out={tmp_path / 'dev'}", "boxes.device_components=on"])
    assert host.metrics["num_boxes_found"] > 12
    assert (device.out_dir / "pseudo_labels.json").read_bytes() == (
        host.out_dir / "pseudo_labels.json"
    ).read_bytes()


@pytest.mark.e2e
@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_decoding_on_the_device_gives_the_same_boxes_within_a_pixel(tmp_path, shapes_root, device):
    """data.decode=device: the loader only reads files; they are decoded and resized on
    the model's device (torchvision's libjpeg on the CPU, nvjpeg on CUDA), against the
    CPU loader with the model on the same device. nvjpeg's pixels differ from libjpeg's
    by a few grey levels, so boxes may move by a pixel; the classes are the same (ties
    in saturated probabilities go the same way on every device); a corrupt file is a
    recorded failure as with the CPU loader."""
    import json
    import shutil

    import numpy as np

    images = tmp_path / "images"
    images.mkdir()
    for p in sorted((shapes_root / "JPEGImages").glob("*.jpg"))[:6]:
        shutil.copy(p, images / p.name)
    (images / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    common = [
        "data.format=folder",
        f"data.root={images}",
        "model.arch=shapes_net",
        "model.weights=DEFAULT",
        "cam.targets=topk",
        "report.enabled=false",
        f"model.device={device}",
    ]
    cpu = run(None, [*common, f"out={tmp_path / 'cpu'}"])
    dev = run(None, [*common, f"out={tmp_path / 'dev'}", "data.decode=device"])
    assert dev.metrics["num_images"] == cpu.metrics["num_images"] == 6
    assert dev.metrics["num_failed"] == cpu.metrics["num_failed"] == 1
    failure = json.loads((dev.out_dir / "failures.jsonl").read_text())
    assert failure["stage"] == "decode" and failure["path"].endswith("broken.jpg")
    a = json.loads((cpu.out_dir / "pseudo_labels.json").read_text())["annotations"]
    b = json.loads((dev.out_dir / "pseudo_labels.json").read_text())["annotations"]
    assert [x["category_id"] for x in a] == [x["category_id"] for x in b]
    np.testing.assert_allclose([x["bbox"] for x in a], [x["bbox"] for x in b], atol=1.0)


def test_free_heap_memory_is_handed_back():
    # glibc (Linux CI): the call exists and runs; elsewhere it says it did nothing.
    import platform

    from wsol.run.memory import release_free_memory

    assert release_free_memory() is (platform.libc_ver()[0] == "glibc")


@pytest.mark.e2e
def test_model_dilate_last_gives_maps_twice_as_fine(shapes_root):
    """model.dilate_last: the last stride-2 stage dilated, pretrained weights as they are
    (EfficientNet-Lite0 at 224: 14x14 maps instead of 7x7)."""
    import torch

    from wsol.config import load_config
    from wsol.run.build import plan_run

    grids = {}
    for dilate in (False, True):
        cfg = load_config(
            None,
            [
                "data.format=folder",
                f"data.root={shapes_root / 'JPEGImages'}",
                "data.limit=1",
                "model.arch=efficientnet_lite0",
                "model.weights=none",
                "cam.targets=topk",
                f"model.dilate_last={str(dilate).lower()}",
                "out=/tmp/unused-by-plan",
            ],
        )
        loc = plan_run(cfg).localizer
        loc.keep_raw_maps = True
        images = torch.zeros(1, 3, *loc.input_size, dtype=torch.uint8)
        grids[dilate] = loc.maps(images, [(100, 100)]).raw.shape[-2:]
    assert grids == {False: (7, 7), True: (14, 14)}
