#!/usr/bin/env bash
# The GPU benchmark of the speed issue, one command that ends in under 5 minutes:
# resnet50, 224 px, bf16, batch $BATCH, 2,048 synthetic 500x375 JPEG files (or --data DIR):
# the bf16 forward floor, wsol with the inputs on the device, wsol end to end from the
# files to COCO JSON, and the pytorch-grad-cam + cv2 glue on the same card, one table.
#
# 1. Here (pip and the internet), once:
#      tools/gpu_bench.sh --prepare
#    builds the wheelhouse runs/gpu_wheels/ (git-ignored): grad-cam and ttach, pure Python,
#    the pieces of the glue row the GPU image lacks. wsol itself needs nothing there: it
#    runs from this checkout (PYTHONPATH), and its bench path imports neither pycocotools
#    nor albumentations (scoring and the report are off).
# 2. On the GPU machine (the device tool: run it with carry=["runs/gpu_wheels"] and
#    timeout_s=330), or any CUDA machine whose python3 has torch, torchvision and opencv:
#      bash tools/gpu_bench.sh [extra wsol bench flags, e.g. --data DIR]
#    Settings by environment: IMAGES (2048), BATCH (256), WORKERS (decoding processes of
#    both end-to-end rows; default: as wsol run chooses), REPEATS (10), LIMIT (280 s for
#    wsol bench), BENCH_OUT (/tmp/wsol_gpu_bench), PYTHON (python3). Overrides of the timed
#    wsol run go last, e.g.: bash tools/gpu_bench.sh host_threads=8
#    bench.json is copied to $OUT when that is set (the device tool's result folder).
set -euo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
WHEELS="$REPO/runs/gpu_wheels"
PY=${PYTHON:-python3}

if [[ "${1:-}" == "--prepare" ]]; then
    # Pin what this machine's tests ran with, where it has them.
    pins=()
    for dist in grad-cam ttach; do
        v=$("$PY" -c "from importlib.metadata import version; print(version('$dist'))" \
            2>/dev/null || true)
        pins+=("$dist${v:+==$v}")
    done
    mkdir -p "$WHEELS"
    "$PY" -m pip wheel -q --no-deps -w "$WHEELS" "${pins[@]}"
    ls -l "$WHEELS"
    echo "now on the GPU machine: bash tools/gpu_bench.sh (carry runs/gpu_wheels)"
    exit 0
fi

start=$SECONDS
export PYTHONUNBUFFERED=1
export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv \
    || echo "gpu_bench: nvidia-smi failed"

if ! "$PY" -c "import pytorch_grad_cam" 2>/dev/null; then
    if compgen -G "$WHEELS/*.whl" >/dev/null; then
        site=/tmp/wsol_gpu_site
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$site" "$WHEELS"/*.whl
        export PYTHONPATH="$PYTHONPATH:$site"
    else
        echo "gpu_bench: pytorch-grad-cam is missing and $WHEELS holds no wheels" \
            "(tools/gpu_bench.sh --prepare): the glue row will be skipped"
    fi
fi

BENCH_OUT=${BENCH_OUT:-/tmp/wsol_gpu_bench}
set -x
timeout "${LIMIT:-280}" "$PY" -m wsol bench \
    --device cuda --precision bf16 --arch resnet50 --size 224 \
    --batch-size "${BATCH:-256}" --images "${IMAGES:-2048}" \
    ${WORKERS:+--workers "$WORKERS"} --repeats "${REPEATS:-10}" \
    --out "$BENCH_OUT" "$@"
{ set +x; } 2>/dev/null
if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then
    cp "$BENCH_OUT/bench.json" "$OUT/"
fi
echo "gpu_bench: $((SECONDS - start)) s in all"
