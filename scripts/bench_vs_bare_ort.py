#!/usr/bin/env python3
"""Check that ``arcface-trt benchmark`` adds no overhead: its onnxruntime figure vs a bare ``session.run`` loop.

Both run in this one process on the same preprocessed batch of sample faces, interleaved
(A B, B A, A B, ...) so that other load on the machine hits both equally:

- A: the exact code path of ``arcface-trt benchmark --backend onnxruntime`` ("inference" mode):
  the backend from ``get_embedding_backend`` and the benchmark's timing loop.
- B: a bare ``onnxruntime.InferenceSession(model).run`` call timed with ``perf_counter``
  (default session options unless ``--bare-threads`` is given).

Prints both throughputs (images/s: total images over total time, and from the median batch,
which a load burst moves less) and their ratios. Default model: the built-in r50.

    python scripts/bench_vs_bare_ort.py [--onnx-path M.onnx] [--batch-size 32] [--rounds 10] [--iterations 1]
"""

from __future__ import annotations

import argparse
import json
import os
import time

import numpy as np


def main() -> None:
    """Run the interleaved comparison and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx-path", default=None, help="model (default: the built-in r50 in the cache)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=10, help="rounds, each side once per round, ABBA order")
    parser.add_argument("--iterations", type=int, default=1, help="timed batches per side per round")
    parser.add_argument("--bare-threads", type=int, default=None, help="intra-op threads of the bare session")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    import onnxruntime as ort

    from arcface_trt.backends import get_embedding_backend
    from arcface_trt.bench.runner import timed_functions
    from arcface_trt.bench.stats import throughput
    from arcface_trt.bench.timing import TimingPlan, run_timed
    from arcface_trt.faces import sample_faces
    from arcface_trt.model.default import ensure_default_model

    model_path = args.onnx_path or str(ensure_default_model("r50", 0))
    embedder = get_embedding_backend(
        "onnxruntime", device="cpu", allow_cpu_fallback=False, onnx_path=model_path, batch_size=args.batch_size
    )
    crops = sample_faces(args.batch_size, seed=0)
    harness_fn, _ = timed_functions(embedder, crops)["inference"]
    batch = embedder.preprocess(crops)  # the same preprocessed input for both sides

    options = ort.SessionOptions()
    if args.bare_threads:
        options.intra_op_num_threads = args.bare_threads
    bare = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    feed = {bare.get_inputs()[0].name: batch}

    def bare_call() -> float:
        start = time.perf_counter()
        bare.run(None, feed)
        return (time.perf_counter() - start) * 1000.0

    # Rounds in A B B A order cancel a load that drifts within a round. Each side makes one
    # untimed call before its timed ones (the benchmark's warm-up; the bare side matches it).
    plan = TimingPlan(iterations=args.iterations, warmup_s=0.0)
    harness_ms: list[float] = []
    bare_ms: list[float] = []
    for index in range(args.rounds):
        for side in "AB" if index % 2 == 0 else "BA":
            if side == "A":
                harness_ms += run_timed(harness_fn, plan).host_ms
            else:
                bare_call()
                bare_ms += [bare_call() for _ in range(args.iterations)]
    median_a, median_b = float(np.median(harness_ms)), float(np.median(bare_ms))
    result = {
        "model": model_path,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "timed_batches_per_side": len(harness_ms),
        "machine": f"{os.cpu_count()} logical CPU cores",
        "harness_intra_op_threads": embedder.session.get_session_options().intra_op_num_threads,
        "bare_intra_op_threads": args.bare_threads or "onnxruntime default",
        "benchmark_fps": throughput(args.batch_size, harness_ms),
        "bare_fps": throughput(args.batch_size, bare_ms),
        "benchmark_fps_from_median": args.batch_size * 1000.0 / median_a,
        "bare_fps_from_median": args.batch_size * 1000.0 / median_b,
        "benchmark_ms": [round(v, 1) for v in harness_ms],
        "bare_ms": [round(v, 1) for v in bare_ms],
    }
    result["ratio_benchmark_over_bare"] = result["benchmark_fps"] / result["bare_fps"]
    result["ratio_from_medians"] = result["benchmark_fps_from_median"] / result["bare_fps_from_median"]
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"model {model_path}, batch {args.batch_size}, {len(harness_ms)} timed batches per side, interleaved ABBA")
    print(
        f"arcface-trt benchmark (onnxruntime, inference): {result['benchmark_fps']:.2f} img/s "
        f"(median batch {median_a:.0f} ms -> {result['benchmark_fps_from_median']:.2f} img/s)"
    )
    print(
        f"bare InferenceSession.run loop:                  {result['bare_fps']:.2f} img/s "
        f"(median batch {median_b:.0f} ms -> {result['bare_fps_from_median']:.2f} img/s)"
    )
    print(
        f"ratio benchmark / bare: {result['ratio_benchmark_over_bare']:.4f} (totals), "
        f"{result['ratio_from_medians']:.4f} (medians)"
    )


if __name__ == "__main__":
    main()
