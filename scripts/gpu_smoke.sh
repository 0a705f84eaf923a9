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
# one JSON document on stdout (progress goes to stderr). Plans that travel: it builds a weight-stripped
# fp16 plan, inspects it (refit from the model first) and compares it (the backend refits it at load),
# reporting both plan sizes; on an Ampere or newer GPU it builds an sm80+ plan into an empty cache and
# checks that the backend takes it (hardware-compatible) and, with moto installed, that fetch-engine
# takes it from a local S3 server. It exits non-zero when any step fails, any parity check fails, a
# plan is mislabelled or backend B was not TensorRT.
#
# Environment: MODEL_ARCH (r50), MODEL_WIDTH (64, the built-in width; 8 or 16 for a quick run), N_SAMPLES (100),
# BATCH (32: the profile's opt and max batch),
# BENCH_SECONDS (3), REPORT_DIR (a folder that receives every step's JSON and stderr, pass or fail),
# KEEP_WORK=1 to keep the work folder, ARCFACE_TRT (command to run, default "python -m arcface_trt").
set -uo pipefail

MODEL_ARCH=${MODEL_ARCH:-r50}
MODEL_WIDTH=${MODEL_WIDTH:-64}
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

step make-model "$WORK/model.json" "${CLI[@]}" make-model --out "$WORK/model.onnx" --arch "$MODEL_ARCH" --width "$MODEL_WIDTH" --json

write_configs() {  # write_configs NAME PRECISION [tensorrt: lines...]: $WORK/embedding-NAME.yaml + its TensorRT config
  local name=$1 precision=$2
  shift 2
  {
    printf 'arcface_tensorrt:\n  enabled: true\ntensorrt:\n  precision: %s\n' "$precision"
    printf '  min_batch_size: 1\n  opt_batch_size: %s\n  max_batch_size: %s\n' "$BATCH" "$BATCH"
    for line in "$@"; do printf '  %s\n' "$line"; done
  } > "$WORK/trt-$name.yaml"
  cat > "$WORK/embedding-$name.yaml" <<EOF
embedding:
  backend: tensorrt
  # auto: TensorRT on the GPU; the InsightFace reference on CUDA when onnxruntime-gpu is there, else the CPU.
  device: auto
  allow_cpu_fallback: false
  tensorrt_config: $WORK/trt-$name.yaml
  model_path: $WORK/model.onnx
  batch_size: $BATCH
EOF
}

for precision in fp32 fp16; do
  write_configs "$precision" "$precision"
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

# Plans that travel. A weight-stripped plan: built, inspected (refit from the model first), compared (refit at load).
write_configs stripped fp16 "strip_weights: true"
step build-stripped "$WORK/build-stripped.json" "${CLI[@]}" build --config "$WORK/embedding-stripped.yaml" --json
step inspect-stripped "$WORK/inspect-stripped.json" \
  "${CLI[@]}" inspect --config "$WORK/embedding-stripped.yaml" --json
step compare-stripped "$WORK/compare-stripped.json" \
  "${CLI[@]}" compare --backend-a insightface --backend-b tensorrt --no-cpu-fallback \
  --config "$WORK/embedding-stripped.yaml" --n-samples "$N_SAMPLES" --json
step tensorrt-ran-stripped "$WORK/tensorrt-ran-stripped.txt" \
  "$PYTHON" "$HERE/check_tensorrt_report.py" "$WORK/compare-stripped.json"

# A hardware-compatible plan (Ampere or newer only), alone in an empty cache: the backend with the default
# settings must take it; with moto installed, fetch-engine must take it from a local S3 server.
"${CLI[@]}" build --config "$WORK/embedding-fp16.yaml" --dry-run --json > "$WORK/gpu.json" 2> /dev/null
arch=$("$PYTHON" -c "import json, sys; print(json.load(open(sys.argv[1]))['sm_arch'] or '')" "$WORK/gpu.json" 2> /dev/null)
if [[ "${arch#sm}" =~ ^[0-9]+$ ]] && (( ${arch#sm} >= 80 )); then
  write_configs portable fp16 "hardware_compatibility: ampere_plus" "cache_dir: $WORK/portable-cache"
  write_configs taker fp16 "cache_dir: $WORK/portable-cache"
  step build-portable "$WORK/build-portable.json" "${CLI[@]}" build --config "$WORK/embedding-portable.yaml" --json
  step compare-portable "$WORK/compare-portable.json" \
    "${CLI[@]}" compare --backend-a insightface --backend-b tensorrt --no-cpu-fallback \
    --config "$WORK/embedding-taker.yaml" --n-samples "$N_SAMPLES" --json
  step tensorrt-ran-portable "$WORK/tensorrt-ran-portable.txt" \
    "$PYTHON" "$HERE/check_tensorrt_report.py" "$WORK/compare-portable.json"
  if "$PYTHON" -c "import moto" 2> /dev/null; then
    port=$("$PYTHON" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
    "$PYTHON" -m moto.server -H 127.0.0.1 -p "$port" > "$WORK/moto.log" 2>&1 &
    moto=$!
    export AWS_ACCESS_KEY_ID=smoke AWS_SECRET_ACCESS_KEY=smoke AWS_DEFAULT_REGION=us-east-1
    store=(--bucket smoke --endpoint-url "http://127.0.0.1:$port")
    sleep 3
    "$PYTHON" -c "import boto3, sys; boto3.client('s3', endpoint_url=sys.argv[1]).create_bucket(Bucket='smoke')" \
      "http://127.0.0.1:$port" 2> "$WORK/bucket.err" || failed+=("store-bucket")
    portable_plan=$("$PYTHON" -c "import json, sys; print(json.load(open(sys.argv[1]))['plan_path'])" \
      "$WORK/build-portable.json" 2> /dev/null)
    step push-portable "$WORK/push-portable.txt" "${CLI[@]}" push-engine "$portable_plan" "${store[@]}"
    step fetch-portable "$WORK/fetch-portable.json" "${CLI[@]}" fetch-engine --config "$WORK/embedding-fp16.yaml" \
      --model model --cache-dir "$WORK/fetched-cache" "${store[@]}" --json
    kill "$moto"
  fi
fi

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
stripped, inspected = load("compare-stripped"), load("inspect-stripped")
report["stripped"] = {
    "plan_bytes": load("build-stripped").get("plan_bytes"),
    "full_plan_bytes": load("build-fp16").get("plan_bytes"),
    "refit_then_inspected": bool(inspected.get("engine")),
    "inspect_problem": inspected.get("engine_problem"),
    "compare": {k: stripped.get(k) for k in ("passed", "cosine", "max_drift", "tolerance_key", "backend_b", "error")},
    "tensorrt_ran": lines("tensorrt-ran-stripped"),
}
if not report["stripped"]["refit_then_inspected"]:
    failed.append("inspect-stripped-not-refit")
if (stripped.get("backend_b") or {}).get("backend") != "tensorrt" or stripped.get("passed") is not True:
    failed.append("compare-stripped")
if (work / "build-portable.json").exists():
    taker = load("compare-portable")
    engine = str((taker.get("backend_b") or {}).get("engine_path"))
    report["portable"] = {"engine_taken": engine, "compare_passed": taker.get("passed")}
    if not engine.endswith("-sm80+.plan"):
        failed.append("backend-did-not-take-the-sm80+-plan")
    if (work / "fetch-portable.json").exists():
        fetched = load("fetch-portable")
        report["portable"]["fetch"] = {k: fetched.get(k) for k in ("engine_name", "match", "match_note", "error")}
        if fetched.get("match") != "hardware-compatible":
            failed.append("fetch-did-not-take-the-sm80+-plan")
else:
    report["portable"] = "skipped: not an Ampere or newer GPU (or its arch is unknown)"
report["failed_steps"] = sorted(set(failed))
report["passed"] = not failed
json.dump(report, sys.stdout, indent=2, default=str)
sys.stdout.write("\n")
sys.exit(0 if report["passed"] else 1)
EOF
