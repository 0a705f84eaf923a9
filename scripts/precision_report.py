#!/usr/bin/env python3
"""Acceptance figures of the precision transforms (issue 6), measured on this machine.

1. Model: ``--onnx-path`` or the built-in r50 (generated into the cache when absent).
2. Builds (or reuses) the int8 and fp16 CPU engines with ``ensure_cpu_engine``; the int8 one
   is calibrated on ``--calib-samples`` seeded face crops (seed 0).
3. Drift on ``--n-eval`` crops from another seed (``--eval-seed``): mean / min cosine of the
   int8 engine, the fp16 mixed-precision ONNX (``convert_to_fp16``, run as it is) and the fp16
   engine against the fp32 model run by the plain ``onnxruntime`` backend.
4. Throughput at ``--batch-size`` (default 32): ``forward`` on one preprocessed batch, the
   fp32 backend and the int8 (and fp16) engines interleaved round after round (A, B, C, A, B,
   C, ...) so other load on the machine hits all equally; median images/s of each.

Targets (issue 6): int8 >= 1.5x fp32 throughput, int8 mean cosine >= 0.99, fp16 >= 0.9999.

Usage: python scripts/precision_report.py [--onnx-path M.onnx] [--rounds 5] [--activation-type uint8|int8]
       [--calibration-method minmax|entropy|percentile] [--calib-samples 64] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from arcface_trt.backends import get_embedding_backend
from arcface_trt.bench.timing import TimingPlan, ignore_result, run_interleaved
from arcface_trt.config import Tolerance
from arcface_trt.faces import sample_faces
from arcface_trt.lazy import require
from arcface_trt.model.default import ensure_default_model
from arcface_trt.parity import measure, score
from arcface_trt.precision.cpu_engine import ensure_cpu_engine
from arcface_trt.precision.fp16 import convert_to_fp16
from arcface_trt.precision.int8 import CalibrationSettings


def main() -> int:
    """Measure and print the figures; exit 1 when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx-path", default=None, help="fp32 model (default: the built-in r50)")
    parser.add_argument("--arch", default="r50", help="built-in model when --onnx-path is not given")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds")
    parser.add_argument("--n-eval", type=int, default=100, help="crops for the drift figures")
    parser.add_argument("--eval-seed", type=int, default=1)
    parser.add_argument("--calib-samples", type=int, default=64)
    parser.add_argument("--calibration-method", default="minmax")
    parser.add_argument("--activation-type", default="uint8")
    parser.add_argument("--no-fp16-speed", action="store_true", help="skip timing the fp16 engine")
    parser.add_argument("--force", action="store_true", help="rebuild the CPU engines")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    def note(message: str) -> None:
        if not args.json:
            print(message, file=sys.stderr, flush=True)

    model = Path(args.onnx_path) if args.onnx_path else ensure_default_model(args.arch, 0)
    calibration = CalibrationSettings(
        samples=args.calib_samples, method=args.calibration_method, activation_type=args.activation_type
    )
    note(f"model {model}; building/reusing CPU engines ...")
    t0 = time.perf_counter()
    int8_engine = ensure_cpu_engine(model, "int8", calibration=calibration, force=args.force)
    int8_seconds = time.perf_counter() - t0
    fp16_engine = ensure_cpu_engine(model, "fp16", force=args.force)

    crops = sample_faces(args.n_eval, args.eval_seed)

    def embedder(onnx_path: Path, precision: str | None = None):
        return get_embedding_backend(
            "onnxruntime", device="cpu", onnx_path=onnx_path, batch_size=args.batch_size, precision=precision
        )

    fp32, int8, fp16 = embedder(model), embedder(model, "int8"), embedder(model, "fp16")
    with tempfile.TemporaryDirectory() as tmp:
        fp16_plain = embedder(convert_to_fp16(model, Path(tmp) / "fp16.onnx"))
        note(f"drift on {args.n_eval} crops (seed {args.eval_seed}) ...")
        reference = measure(fp32, crops, args.batch_size)
        drift = {}
        for name, candidate in (("int8_engine", int8), ("fp16_onnx", fp16_plain), ("fp16_engine", fp16)):
            # The tolerance only sets the pass flag, which the targets below replace.
            stats, _ = score(reference, measure(candidate, crops, args.batch_size), Tolerance(2.0, "none"))
            drift[name] = {"mean": stats.cosine["mean"], "min": stats.cosine["min"]}

    batch = fp32.preprocess(sample_faces(args.batch_size, args.eval_seed + 1))
    timed = {"fp32": fp32, "int8": int8}
    if not args.no_fp16_speed:
        timed["fp16"] = fp16
    note(f"timing batch {args.batch_size}, {args.rounds} interleaved rounds ...")
    # One untimed call each first (first runs allocate), then round-robin rounds: load hits all alike.
    samples = run_interleaved(
        {name: ignore_result(lambda e=e: e.forward(batch)) for name, e in timed.items()},
        TimingPlan(iterations=args.rounds, warmup_s=0.0),
    )
    seconds = {name: [ms / 1000.0 for ms in s.host_ms] for name, s in samples.items()}
    throughput = {name: args.batch_size / statistics.median(values) for name, values in seconds.items()}

    onnxruntime = require("onnxruntime")
    report = {
        "machine": {
            "cpu": platform.processor() or platform.machine(),
            "cores": os.cpu_count(),
            "onnxruntime": onnxruntime.__version__,
            "reduce_range": int8_engine.manifest.calibration["reduce_range"],
        },
        "model": str(model),
        "calibration": int8_engine.manifest.calibration,
        "int8_build_seconds": round(int8_seconds, 1),
        "int8_built_now": int8_engine.built,
        "fp16_built_now": fp16_engine.built,
        "drift": drift,
        "throughput_images_per_s": throughput,
        "per_round_seconds": seconds,
        "int8_speedup": throughput["int8"] / throughput["fp32"],
        "batch_size": args.batch_size,
        "rounds": args.rounds,
    }
    targets = {
        "int8_speedup>=1.5": report["int8_speedup"] >= 1.5,
        "int8_mean_cosine>=0.99": drift["int8_engine"]["mean"] >= 0.99,
        "fp16_mean_cosine>=0.9999": drift["fp16_onnx"]["mean"] >= 0.9999,
    }
    report["targets"] = targets
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"model: {model} | onnxruntime {onnxruntime.__version__} | {os.cpu_count()} cores")
        print(f"int8 calibration: {report['calibration']}")
        for name, values in drift.items():
            print(f"cosine vs fp32  {name:12s} mean {values['mean']:.6f}  min {values['min']:.6f}")
        for name, value in throughput.items():
            print(f"throughput      {name:12s} {value:8.2f} img/s (batch {args.batch_size}, median of {args.rounds})")
        print(f"int8 speedup over fp32: {report['int8_speedup']:.2f}x")
        for name, ok in targets.items():
            print(f"target {name}: {'met' if ok else 'MISSED'}")
    return 0 if all(targets.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
