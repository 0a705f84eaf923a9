#!/usr/bin/env bash
# GPU smoke test: the one command a user with an NVIDIA GPU, TensorRT and cuda-python runs to check the real thing.
#
#   pip install -e '.[gpu,dev]' && bash scripts/gpu_smoke.sh        # gpu-cu13 instead of gpu on CUDA 13
#
# It generates the built-in model, builds TensorRT engines at fp32 and fp16, inspects each plan with
# TensorRT (the engine's own account of its layers' precisions against its label and manifest),
# compares each engine with the InsightFace reference (no CPU fallback allowed) against the tolerance
# of its precision (validation.max_drift_cosine, validation.max_drift_cosine_fp16: the same defaults as
# compare), checks each report shows a TensorRT engine really ran (scripts/check_tensorrt_report.py),
# runs the gpu-marked tests, benchmarks the fp16 engine (transfers, GPU compute, CUDA graph), and prints
# one JSON document on stdout (progress goes to stderr). It exits non-zero when any step fails, any
# parity check fails, a plan is mislabelled or backend B was not TensorRT.
#
# Environment: MODEL_ARCH (r50), N_SAMPLES (100), BATCH (32: the profile's opt and max batch),
# BENCH_SECONDS (3), REPORT_DIR (a folder that receives every step's JSON and stderr, pass or fail),
# KEEP_WORK=1 to keep the work folder, ARCFACE_TRT (command to run, default "python -m arcface_trt").
set -uo pipefail

MODEL_ARCH=${MODEL_ARCH:-r50}
N_SAMPLES=${N_SAMPLES:-100}
BATCH=${BATCH:-32}
BENCH_SECONDS=${BENCH_SECONDS:-3}
PYTHON=${PYTHON:-python}
read -r -a CLI <<< "${ARCFACE_TRT:-$PYTHON -m arcface_trt}"
HERE=$(cd "$(dirname "$0")" && pwd)

WORK=$(mktemp -d -t arcface-trt-smoke.XXXXXX)
finish() {  # the reports leave the work folder whatever happened
  if [[ -n "${REPORT_DIR:-}" ]]; then
    mkdir -p "$REPORT_DIR" && cp "$WORK"/*.json "$WORK"/*.txt "$WORK"/*.err "$WORK"/*.xml "$REPORT_DIR"/ 2>/dev/null
  fi
  [[ "${KEEP_WORK:-0}" == 1 ]] || rm -rf "$WORK"
}
trap finish EXIT
export ARCFACE_TRT_CACHE_DIR="$WORK/cache"
failed=()

step() {  # step NAME OUTPUT_JSON COMMAND...: run, keep its JSON, remember a failure
  local name=$1 out=$2
  shift 2
  echo "== $name" >&2
  if ! "$@" > "$out" 2> "$WORK/$name.err"; then
    failed+=("$name")
    tail -n 5 "$WORK/$name.err" >&2
  fi
}

step make-model "$WORK/model.json" "${CLI[@]}" make-model --out "$WORK/model.onnx" --arch "$MODEL_ARCH" --json

for precision in fp32 fp16; do
  cat > "$WORK/trt-$precision.yaml" <<EOF
arcface_tensorrt:
  enabled: true
tensorrt:
  precision: $precision
  min_batch_size: 1
  opt_batch_size: $BATCH
  max_batch_size: $BATCH
EOF
  cat > "$WORK/embedding-$precision.yaml" <<EOF
embedding:
  backend: tensorrt
  # auto: TensorRT on the GPU; the InsightFace reference on CUDA when onnxruntime-gpu is there, else the CPU.
  device: auto
  allow_cpu_fallback: false
  tensorrt_config: $WORK/trt-$precision.yaml
  model_path: $WORK/model.onnx
  batch_size: $BATCH
EOF
  step "build-$precision" "$WORK/build-$precision.json" \
    "${CLI[@]}" build --config "$WORK/embedding-$precision.yaml" --json
  step "rebuild-$precision" "$WORK/rebuild-$precision.json" \
    "${CLI[@]}" build --config "$WORK/embedding-$precision.yaml" --json
  step "inspect-$precision" "$WORK/inspect-$precision.json" \
    "${CLI[@]}" inspect --config "$WORK/embedding-$precision.yaml" --json
  step "compare-$precision" "$WORK/compare-$precision.json" \
    "${CLI[@]}" compare --backend-a insightface --backend-b tensorrt --no-cpu-fallback \
    --config "$WORK/embedding-$precision.yaml" --n-samples "$N_SAMPLES" --json
  step "tensorrt-ran-$precision" "$WORK/tensorrt-ran-$precision.txt" \
    "$PYTHON" "$HERE/check_tensorrt_report.py" "$WORK/compare-$precision.json"
done

step gpu-tests "$WORK/gpu-tests.txt" \
  "$PYTHON" -m pytest -q -m gpu -rs -p no:cacheprovider --junitxml="$WORK/gpu-tests.xml" "$HERE/../tests"

step benchmark "$WORK/benchmark.json" \
  "${CLI[@]}" benchmark --backend tensorrt --cuda-graph \
  --config "$WORK/embedding-fp16.yaml" --batch-sizes "1,8,$BATCH" --duration "$BENCH_SECONDS" --json

FAILED="${failed[*]:-}" WORK="$WORK" "$PYTHON" - <<'EOF'
import json
import os
import sys
from pathlib import Path

work = Path(os.environ["WORK"])


def load(name):
    path = work / f"{name}.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        err = work / f"{name}.err"
        return {"error": err.read_text().strip().splitlines()[-1:] if err.exists() else "no output"}


def lines(name):
    """What a check step printed: its ok line (stdout) and fail lines (stderr)."""
    return [line for suffix in ("txt", "err") if (work / f"{name}.{suffix}").exists()
            for line in (work / f"{name}.{suffix}").read_text().splitlines()]


failed = os.environ["FAILED"].split()
report = {"model": load("model"), "builds": {}, "inspect": {}, "compare": {}, "benchmark": load("benchmark")}
for precision in ("fp32", "fp16"):
    build, rebuild = load(f"build-{precision}"), load(f"rebuild-{precision}")
    report["builds"][precision] = build
    if rebuild.get("from_cache") is not True:
        failed.append(f"rebuild-{precision}-not-from-cache")
    inspected = load(f"inspect-{precision}")
    engine = inspected.get("engine") or {}
    report["inspect"][precision] = {
        "engine_precision": engine.get("precision_summary"),
        "engine_check": engine.get("precision_check"),
        "disagreements": inspected.get("disagreements"),
        "engine_problem": inspected.get("engine_problem"),
        "error": inspected.get("error"),
    }
    if inspected.get("mislabelled") is not False:
        failed.append(f"inspect-{precision}-mislabelled")
    if not engine:
        failed.append(f"inspect-{precision}-engine-not-loaded")
    compare = load(f"compare-{precision}")
    keys = ("passed", "cosine", "max_drift", "max_drift_cosine", "tolerance_key", "nn_agreement", "backend_b", "error")
    report["compare"][precision] = {k: compare.get(k) for k in keys}
    report["compare"][precision]["tensorrt_ran"] = lines(f"tensorrt-ran-{precision}")
report["gpu_tests"] = lines("gpu-tests")[-3:]
report["failed_steps"] = sorted(set(failed))
report["passed"] = not failed
json.dump(report, sys.stdout, indent=2, default=str)
sys.stdout.write("\n")
sys.exit(0 if report["passed"] else 1)
EOF
