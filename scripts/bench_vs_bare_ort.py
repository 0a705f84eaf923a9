#!/usr/bin/env python3
"""Check that ``arcface-trt benchmark`` adds no overhead: its onnxruntime figure vs a bare ``session.run`` loop.

Both run in this one process on the same preprocessed batch of sample faces, interleaved
(A, B, A, B, ...) so that other load on the machine hits both equally:

- A: the exact code path of ``arcface-trt benchmark --backend onnxruntime`` ("inference" mode):
  the backend from ``get_embedding_backend`` and the benchmark's timing loop.
- B: a bare ``onnxruntime.InferenceSession(model).run`` loop timed with ``perf_counter`` around
  the whole loop (default session options unless ``--bare-threads`` is given).

Prints both throughputs (images/s) and their ratio. Default model: the built-in r50.

    python scripts/bench_vs_bare_ort.py [--onnx-path M.onnx] [--batch-size 32] [--rounds 4] [--iterations 3]
"""

from __future__ import annotations

import argparse
import json
import os
import time


def main() -> None:
    """Run the interleaved comparison and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--onnx-path", default=None, help="model (default: the built-in r50 in the cache)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=4, help="A/B rounds, interleaved")
    parser.add_argument("--iterations", type=int, default=3, help="timed batches per side per round")
    parser.add_argument("--bare-threads", type=int, default=None, help="intra-op threads of the bare session")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    args = parser.parse_args()

    import onnxruntime as ort

    from arcface_trt.backends import get_embedding_backend
    from arcface_trt.bench.runner import timed_functions
    from arcface_trt.bench.stats import throughput
    from arcface_trt.bench.timing import TimingPlan, run_timed
    from arcface_trt.faces import sample_faces
    from arcface_trt.model.default import resolve_model_path

    model_path = str(resolve_model_path(args.onnx_path, "r50", 0))
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

    # warm both once (first runs allocate)
    harness_fn()
    bare.run(None, feed)

    plan = TimingPlan(iterations=args.iterations, warmup_s=0.0)
    harness_ms: list[float] = []
    bare_seconds, bare_batches = 0.0, 0
    rounds = []
    for _ in range(args.rounds):
        samples = run_timed(harness_fn, plan)
        harness_ms += samples.host_ms
        start = time.perf_counter()
        for _ in range(args.iterations):
            bare.run(None, feed)
        elapsed = time.perf_counter() - start
        bare_seconds += elapsed
        bare_batches += args.iterations
        rounds.append(
            {
                "benchmark_fps": throughput(args.batch_size, samples.host_ms),
                "bare_fps": args.batch_size * args.iterations / elapsed,
            }
        )
    result = {
        "model": model_path,
        "batch_size": args.batch_size,
        "rounds": args.rounds,
        "iterations_per_round": args.iterations,
        "machine": f"{os.cpu_count()} logical CPU cores",
        "harness_intra_op_threads": embedder.session.get_session_options().intra_op_num_threads,
        "bare_intra_op_threads": args.bare_threads or "onnxruntime default",
        "benchmark_fps": throughput(args.batch_size, harness_ms),
        "bare_fps": args.batch_size * bare_batches / bare_seconds,
        "per_round": rounds,
    }
    result["ratio_benchmark_over_bare"] = result["benchmark_fps"] / result["bare_fps"]
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(f"model {model_path}, batch {args.batch_size}, {args.rounds} rounds x {args.iterations} batches, interleaved")
    for i, r in enumerate(rounds, 1):
        print(f"  round {i}: benchmark {r['benchmark_fps']:.2f} img/s | bare {r['bare_fps']:.2f} img/s")
    print(f"arcface-trt benchmark (onnxruntime, inference): {result['benchmark_fps']:.2f} img/s")
    print(f"bare InferenceSession.run loop:                  {result['bare_fps']:.2f} img/s")
    print(f"ratio benchmark / bare: {result['ratio_benchmark_over_bare']:.4f}")


if __name__ == "__main__":
    main()
