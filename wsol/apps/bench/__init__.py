"""Throughput benchmarks behind ``wsol bench``.

- :mod:`~wsol.apps.bench.pipeline`: for one model and batch size, on the same JPEG
  files, the bare forward (the floor), wsol with the inputs already on the device, wsol
  end to end from files to COCO JSON, and the pytorch-grad-cam + cv2 glue
  (:mod:`~wsol.apps.bench.glue`), with their ratios;
- :mod:`~wsol.apps.bench.maps`: maps only, wsol against pytorch-grad-cam, and maps to
  boxes for each test-time view setting;
- :mod:`~wsol.apps.bench.demo`: the demo pipeline end to end;
- :mod:`~wsol.apps.bench.images`: the synthetic photo-sized JPEG files they read.

Speed targets live here and in ``docs/benchmarks.md``, never in timed tests.
"""

from __future__ import annotations

from wsol.apps.bench.demo import bench_demo
from wsol.apps.bench.glue import glue_pipeline
from wsol.apps.bench.images import image_folder, list_images, write_jpegs
from wsol.apps.bench.maps import VIEW_SETTINGS, bench_maps, bench_views
from wsol.apps.bench.pipeline import bench_pipeline, row_names
from wsol.apps.bench.timing import machine_info

__all__ = [
    "VIEW_SETTINGS",
    "bench_demo",
    "bench_maps",
    "bench_pipeline",
    "bench_views",
    "glue_pipeline",
    "image_folder",
    "list_images",
    "machine_info",
    "row_names",
    "write_jpegs",
]
