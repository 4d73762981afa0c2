"""The steps of tools/gpu_check.sh, each a subprocess with a time limit, and gpu_check.json.

    python tools/gpu_check.py --out DIR [--deadline 330] [--device cuda] [--images 2048]
                              [--batch 256] [--voc DIR]

Run it through tools/gpu_check.sh on a GPU machine (it installs the carried wheels
first). ``--smoke`` runs every step on the CPU with tiny sizes (ResNet-18 at 64 px, 8 images of
the VOC runs, one round): a test of the script itself, whose numbers mean nothing.

gpu_check.json holds, per step, its command, exit status, seconds and what it measured,
then ``targets``: each target of the issue with its value, the bar and whether it was met
(null where the step did not run).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SHARED_VOC = REPO.parent / "shared" / "data" / "voc2012_sample" / "VOCdevkit" / "VOC2012"
CARRIED_VOC = REPO / "runs" / "gpu_check" / "voc" / "VOC2012"


def versions() -> dict:
    """What the machine runs: Python, torch, CUDA, the GPU, and the libraries wsol uses."""
    out = {"python": platform.python_version(), "cpus": os.cpu_count()}
    for mod in ("torch", "torchvision", "cupy", "numba", "cv2", "timm", "scipy", "numpy"):
        try:
            out[mod] = __import__(mod).__version__
        except Exception as e:  # missing or broken: say so, go on
            out[mod] = f"unavailable ({type(e).__name__})"
    for mod in ("pycocotools", "albumentations", "pytorch_grad_cam", "captum"):
        try:
            __import__(mod)
            out[mod] = "installed"
        except Exception as e:
            out[mod] = f"unavailable ({type(e).__name__})"
    try:
        import torch

        if torch.cuda.is_available():
            out["gpu"] = torch.cuda.get_device_name(0)
            out["cuda"] = torch.version.cuda
            out["cudnn"] = torch.backends.cudnn.version()
            out["gpu_memory_gib"] = round(torch.cuda.get_device_properties(0).total_memory / 2**30)
    except Exception as e:
        out["gpu"] = f"unavailable ({type(e).__name__}: {e})"
    smi = shutil.which("nvidia-smi")
    if smi:
        q = subprocess.run(
            [smi, "--query-gpu=name,driver_version,clocks.max.sm", "--format=csv,noheader"],
            capture_output=True,
            text=True,
        )
        out["nvidia_smi"] = q.stdout.strip() or q.stderr.strip()
    return out


def expand_voc(src: Path, dst: Path, count: int) -> str:
    """``count`` images in VOC layout at ``dst``: the sample's images and annotations
    repeated under new names (hard links where possible), listed in split ``check``."""
    ids = sorted(p.stem for p in (src / "Annotations").glob("*.xml"))
    if (dst / "ImageSets" / "Main" / "check.txt").exists():
        return "check"
    for sub in ("JPEGImages", "Annotations", "ImageSets/Main"):
        (dst / sub).mkdir(parents=True, exist_ok=True)
    names = []
    for i in range(count):
        stem = ids[i % len(ids)]
        name = f"{stem}_r{i // len(ids):02d}"
        jpg = dst / "JPEGImages" / f"{name}.jpg"
        if not jpg.exists():
            try:
                os.link(src / "JPEGImages" / f"{stem}.jpg", jpg)
            except OSError:
                shutil.copyfile(src / "JPEGImages" / f"{stem}.jpg", jpg)
        xml = (src / "Annotations" / f"{stem}.xml").read_text()
        xml = re.sub(r"<filename>[^<]*</filename>", f"<filename>{name}.jpg</filename>", xml)
        (dst / "Annotations" / f"{name}.xml").write_text(xml)
        names.append(name)
    (dst / "ImageSets" / "Main" / "check.txt").write_text("\n".join(names) + "\n")
    return "check"


class Steps:
    """Runs steps as subprocesses within a deadline, logging each to ``out/logs``."""

    def __init__(self, out: Path, deadline: float):
        self.out, self.logs = out, out / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.end = time.monotonic() + deadline
        self.results: dict[str, dict] = {}

    def left(self) -> float:
        return self.end - time.monotonic()

    def run(self, name: str, cmd: list[str], limit: float, minimum: float = 20) -> dict:
        budget = min(limit, self.left())
        if budget < minimum:
            res = {"skipped": f"out of time ({self.left():.0f} s left of the deadline)"}
            self.results[name] = res
            print(f"[{name}] skipped: {res['skipped']}", flush=True)
            return res
        print(f"[{name}] {' '.join(cmd)}  (limit {budget:.0f} s)", flush=True)
        start = time.monotonic()
        try:
            p = subprocess.run(cmd, capture_output=True, text=True, timeout=budget, cwd=REPO)
            rc, text = p.returncode, p.stdout + p.stderr
        except subprocess.TimeoutExpired as e:
            rc = "timeout"
            text = (e.stdout or b"").decode(errors="replace") + (e.stderr or b"").decode(
                errors="replace"
            )
        seconds = round(time.monotonic() - start, 1)
        (self.logs / f"{name}.log").write_text(f"$ {' '.join(cmd)}\n{text}")
        res = {"command": " ".join(cmd), "rc": rc, "seconds": seconds, "tail": text[-1500:]}
        self.results[name] = res
        print(f"[{name}] rc {rc} in {seconds} s", flush=True)
        print(text[-2500:], flush=True)
        return res


def read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def run_summary(out: Path) -> dict | None:
    """The numbers a run's metrics.json gives about speed and boxes."""
    m = read_json(out / "metrics.json")
    if m is None:
        return None
    keys = (
        "num_images",
        "num_boxes_found",
        "images_per_second",
        "seconds",
        "maxboxacc",
        "maxboxacc_v2",
        "corloc",
        "gt_known_loc",
        "stage_seconds",
    )
    return {k: m[k] for k in keys if k in m}


def pytest_counts(text: str) -> dict:
    counts = {}
    for n, what in re.findall(
        r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)", text
    ):
        counts[what.rstrip("s") if what.startswith("error") else what] = int(n)
    return counts


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=Path("/tmp/wsol_gpu_check"))
    ap.add_argument("--deadline", type=float, default=330.0)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--images", type=int, default=2048)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--voc", type=Path, default=None, help="the VOC sample (VOC2012 folder)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU (see above)")
    ap.add_argument(
        "--full-suite",
        action="store_true",
        help="after the steps, the whole test suite with pytest-xdist (-n 8), as time allows",
    )
    args = ap.parse_args(argv)
    if args.smoke:
        args.device, args.images, args.batch = "cpu", 16, 4
    out, py, dev, n, b = args.out, sys.executable, args.device, args.images, args.batch
    arch, size = ("resnet18", "64") if args.smoke else ("resnet50", "224")
    small = ["data.limit=8", "cam.scales=[0.5]"] if args.smoke else []
    rounds, repeats = ("1", "1") if args.smoke else ("2", "10")
    out.mkdir(parents=True, exist_ok=True)
    steps = Steps(out, args.deadline)
    t0 = time.monotonic()
    report: dict = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "settings": vars(args)}
    report["settings"] = {k: str(v) for k, v in vars(args).items()}
    report["versions"] = versions()
    print(json.dumps(report["versions"], indent=1), flush=True)
    wsol = [py, "-m", "wsol", "-q"]
    gpu = dev != "cpu"

    voc = args.voc or (CARRIED_VOC if CARRIED_VOC.exists() else SHARED_VOC)
    voc_many = out / "voc_many" / "VOC2012"
    split = expand_voc(voc, voc_many, n) if voc.exists() else None
    report["data"] = {"voc_sample": str(voc), "voc_repeated": str(voc_many), "images": n}

    # 1. the tests that need CUDA
    res = steps.run(
        "pytest_gpu", [py, "-m", "pytest", "-m", "gpu", "-q", "-rs", "-p", "no:cacheprovider"], 120
    )
    if "tail" in res:
        res["counts"] = pytest_counts(res["tail"])

    # 2. the device components against the host's, ties at the cut included
    if gpu:
        steps.run(
            "device_components", [py, "tools/gpu_check_device_boxes.py", "--batch", str(b)], 60
        )

    # 3. wsol bench: the floor, the device stage, files to JSON, the glue
    bench_out = out / "bench"
    res = steps.run(
        "bench",
        [
            *wsol,
            "bench",
            "--device",
            dev,
            "--precision",
            "bf16",
            "--arch",
            arch,
            "--size",
            size,
            "--batch-size",
            str(b),
            "--images",
            str(n),
            "--repeats",
            repeats,
            "--rounds",
            rounds,
            "--out",
            str(bench_out),
            *(["data.decode=device"] if gpu else []),
        ],
        150,
    )
    bench = read_json(bench_out / "bench.json")
    if bench:
        res["rows"] = bench["rows"]
        res["ratios"] = bench["ratios"]
        res["stage_seconds"] = bench.get("stage_seconds")

    voc_keys = [f"data.root={voc_many}", f"data.split={split}", "report.enabled=false"]
    fast = ["model.precision=bf16", *(["data.decode=device"] if gpu else [])]
    # 4. a scored ResNet-50 run (random weights: the speed, not the boxes)
    if split:
        r50 = [
            f"model.arch={arch}",
            "model.weights=none",
            "cam.method=gradcam",
            "cam.scales=[1.0]",
            f"cam.batch_size={b}",
        ]
        steps.run(
            "scored_resnet50_warmup",
            [
                *wsol,
                "run",
                "configs/voc.yaml",
                *voc_keys,
                *fast,
                *r50,
                f"data.limit={b}",
                f"out={out / 'r50_warm'}",
                "--overwrite",
            ],
            60,
        )
        res = steps.run(
            "scored_resnet50",
            [
                *wsol,
                "run",
                "configs/voc.yaml",
                *voc_keys,
                *fast,
                *r50,
                f"out={out / 'r50'}",
                "--overwrite",
            ],
            60,
        )
        res["run"] = run_summary(out / "r50")

    # 5. configs/voc.yaml unscored against its own bf16 forward floor
    if split:
        voc_batch = max(1, b // 2)
        cfg_out = out / "voc_bench"
        res = steps.run(
            "voc_vs_floor",
            [
                *wsol,
                "bench",
                "--config",
                "configs/voc.yaml",
                "--repeats",
                repeats,
                "--rounds",
                rounds,
                "--out",
                str(cfg_out),
                *voc_keys,
                *fast,
                *small,
                f"cam.batch_size={voc_batch}",
            ],
            90,
        )
        cb = read_json(cfg_out / "bench.json")
        if cb:
            res["rows"], res["ratios"] = cb["rows"], cb["ratios"]

    # 6. configs/voc.yaml scored: bf16 on the repeated sample, bf16 and fp32 on the sample
    if split:
        for name, keys, limit in [
            ("voc_bf16_repeated", [*voc_keys, *fast, f"cam.batch_size={max(1, b // 2)}"], 90),
            (
                "voc_sample_bf16",
                [
                    f"data.root={voc}",
                    "data.split=sample",
                    "report.enabled=false",
                    "model.precision=bf16",
                    "cam.batch_size=64",
                ],
                60,
            ),
            (
                "voc_sample_fp32",
                [
                    f"data.root={voc}",
                    "data.split=sample",
                    "report.enabled=false",
                    "model.precision=fp32",
                    "cam.batch_size=64",
                ],
                60,
            ),
        ]:
            res = steps.run(
                name,
                [
                    *wsol,
                    "run",
                    "configs/voc.yaml",
                    *keys,
                    *small,
                    f"out={out / name}",
                    "--overwrite",
                ],
                limit,
            )
            res["run"] = run_summary(out / name)

    # 7. where the device stage's time goes, per operator
    prof = out / "profile.json"
    res = steps.run(
        "profile",
        [
            py,
            "tools/profile_device_stage.py",
            "--device",
            dev,
            "--precision",
            "bf16",
            "--batch",
            str(b),
            "--arch",
            arch,
            "--size",
            size,
            "--sweep",
            "--json",
            str(prof),
        ],
        60,
    )
    res["table"] = read_json(prof)

    # 8. optionally, the whole suite: tests not marked gpu run on the CPU there, as on CI
    if args.full_suite:
        res = steps.run(
            "pytest_all",
            [py, "-m", "pytest", "-q", "-rs", "-n", "8", "-p", "no:cacheprovider"],
            600,
            minimum=60,
        )
        if "tail" in res:
            res["counts"] = pytest_counts(res["tail"])

    report["steps"] = steps.results
    report["targets"] = targets(steps.results)
    report["seconds"] = round(time.monotonic() - t0, 1)
    (out / "gpu_check.json").write_text(json.dumps(report, indent=1, default=str))
    print(json.dumps(report["targets"], indent=1), flush=True)
    print(f"gpu_check: {report['seconds']} s; {out / 'gpu_check.json'}", flush=True)
    return 0


def _row(res: dict, prefix: str) -> dict | None:
    for name, row in (res.get("rows") or {}).items():
        if name.startswith(prefix):
            return row
    return None


def targets(r: dict) -> dict:
    """Each target of the issue: its value, the bar, and whether it was met."""

    def bar(value, minimum, what):
        met = None if value is None else bool(value >= minimum)
        return {"value": value, "at_least": minimum, "met": met, "what": what}

    bench = r.get("bench", {})
    floor = _row(bench, "forward")
    device = _row(bench, "wsol gradcam, uint8")
    e2e = _row(bench, "wsol gradcam, JPEG")
    glue = _row(bench, "glue")
    loop = e2e.get("loop_images_per_second") if e2e else None
    out = {
        "resnet50_files_to_json_img_s": bar(
            loop, 5000, "wsol bench: files to COCO JSON, the run's loop (whole call in bench)"
        ),
        "resnet50_vs_glue": bar(
            loop / glue["images_per_second"] if loop and glue else None,
            10,
            "the run's loop against the glue's whole call, same files and card",
        ),
        "device_stage_of_floor": bar(
            device["images_per_second"] / floor["images_per_second"] if device and floor else None,
            1 / 3,
            "Localizer.maps + boxes_for (uint8 on the device) against the bf16 forward floor",
        ),
    }
    vb = r.get("voc_vs_floor", {})
    vfloor, vloop = _row(vb, "forward"), _row(vb, "wsol run, its loop")
    out["voc_yaml_of_own_floor"] = bar(
        vloop["images_per_second"] / vfloor["images_per_second"] if vloop and vfloor else None,
        1 / 3,
        "configs/voc.yaml unscored, its loop against its own bf16 forward floor",
    )
    scored = (r.get("scored_resnet50", {}).get("run") or {}).get("images_per_second")
    out["scored_resnet50_img_s"] = bar(scored, 1000, "a scored ResNet-50 run, its loop")
    counts = r.get("pytest_gpu", {}).get("counts") or {}
    out["pytest_gpu"] = {
        "counts": counts,
        "met": (r.get("pytest_gpu", {}).get("rc") == 0 and not counts.get("failed"))
        if counts
        else None,
    }
    bf16 = r.get("voc_sample_bf16", {}).get("run") or {}
    fp32 = r.get("voc_sample_fp32", {}).get("run") or {}
    diffs = {
        k: abs(bf16[k] - fp32[k]) for k in ("maxboxacc_v2", "corloc") if k in bf16 and k in fp32
    }
    out["bf16_vs_fp32"] = {
        "bf16": {k: bf16.get(k) for k in ("maxboxacc_v2", "corloc")},
        "fp32": {k: fp32.get(k) for k in ("maxboxacc_v2", "corloc")},
        "at_most": 0.02,
        "met": all(d <= 0.02 for d in diffs.values()) if diffs else None,
    }
    return out


if __name__ == "__main__":
    sys.exit(main())
