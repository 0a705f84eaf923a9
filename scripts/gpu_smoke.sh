#!/usr/bin/env bash
# GPU smoke test: the one command a user with an NVIDIA GPU, TensorRT and cuda-python runs to check the real thing.
#
#   pip install -e '.[gpu]' && bash scripts/gpu_smoke.sh
#
# It generates the built-in model, builds TensorRT engines at fp32 and fp16, inspects each plan with
# TensorRT (the engine's own account of its layers' precisions against its label and manifest),
# compares each engine with the InsightFace reference (no CPU fallback allowed), benchmarks the fp16
# engine (transfers, GPU compute, CUDA graph), and prints one JSON document on stdout (progress goes to
# stderr). It exits non-zero when any step fails, any parity check fails, or a plan is mislabelled.
#
# Environment: MODEL_ARCH (r50), N_SAMPLES (100), MAX_DRIFT_FP32 (0.001), MAX_DRIFT_FP16 (0.005),
# BATCH (32: the profile's opt and max batch), BENCH_SECONDS (3), KEEP_WORK=1 to keep the work folder,
# ARCFACE_TRT (command to run, default "python -m arcface_trt").
set -uo pipefail

MODEL_ARCH=${MODEL_ARCH:-r50}
N_SAMPLES=${N_SAMPLES:-100}
MAX_DRIFT_FP32=${MAX_DRIFT_FP32:-0.001}
MAX_DRIFT_FP16=${MAX_DRIFT_FP16:-0.005}
BATCH=${BATCH:-32}
BENCH_SECONDS=${BENCH_SECONDS:-3}
PYTHON=${PYTHON:-python}
read -r -a CLI <<< "${ARCFACE_TRT:-$PYTHON -m arcface_trt}"

WORK=$(mktemp -d -t arcface-trt-smoke.XXXXXX)
[[ "${KEEP_WORK:-0}" == 1 ]] || trap 'rm -rf "$WORK"' EXIT
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
  drift=$MAX_DRIFT_FP32
  [[ $precision == fp16 ]] && drift=$MAX_DRIFT_FP16
  step "build-$precision" "$WORK/build-$precision.json" \
    "${CLI[@]}" build --config "$WORK/embedding-$precision.yaml" --json
  step "rebuild-$precision" "$WORK/rebuild-$precision.json" \
    "${CLI[@]}" build --config "$WORK/embedding-$precision.yaml" --json
  step "inspect-$precision" "$WORK/inspect-$precision.json" \
    "${CLI[@]}" inspect --config "$WORK/embedding-$precision.yaml" --json
  step "compare-$precision" "$WORK/compare-$precision.json" \
    "${CLI[@]}" compare --backend-a insightface --backend-b tensorrt --no-cpu-fallback \
    --config "$WORK/embedding-$precision.yaml" --n-samples "$N_SAMPLES" --max-drift-cosine "$drift" --json
done

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
    report["compare"][precision] = {
        k: compare.get(k) for k in ("passed", "cosine", "max_drift", "max_drift_cosine", "nn_agreement", "backend_b", "error")
    }
    if compare.get("backend_b", {}).get("backend") != "tensorrt":
        failed.append(f"compare-{precision}-did-not-run-tensorrt")
report["failed_steps"] = sorted(set(failed))
report["passed"] = not failed
json.dump(report, sys.stdout, indent=2, default=str)
sys.stdout.write("\n")
sys.exit(0 if report["passed"] else 1)
EOF
