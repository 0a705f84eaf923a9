"""Acceptance figures for ``arcface-trt embed`` (issue 8), measured side by side on this machine.

1. Writes N generated crops (``sample_faces``) as PNG files into a temp folder.
2. Interleaves, round after round, on one loaded backend:
   A  the bare backend on pre-loaded arrays: ``encode(crops)`` (preprocess + forward), and with
      ``--forward-only`` also ``forward`` alone on preprocessed batches (the strictest baseline);
   B  ``embed_to_file(folder, out.parquet)``: listing, decoding the PNGs in reader threads,
      preprocessing, forward, committing parts, merging; timed wall to wall.
   and prints images/s of each and B's share of A.
3. Checks that B's embeddings equal ``encode`` on the same crops (min cosine).
4. ``--kill-resume``: runs ``arcface-trt embed`` as a subprocess, SIGKILLs it once about half of
   the rows are committed, reruns with ``--resume`` and checks every path is there exactly once.
5. ``--ray``: runs the same job with ``--ray`` on a local Ray instance and compares with B.

Usage: python scripts/embed_throughput.py [--n 2000] [--arch r18] [--rounds 2] [--kill-resume] [--ray] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np


def _write_pngs(folder: Path, crops: np.ndarray) -> None:
    import cv2

    for i, crop in enumerate(crops):
        path = folder / f"group{i // 500:02d}" / f"face_{i:05d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        if not cv2.imwrite(str(path), crop):
            raise OSError(f"cannot write {path}")


def _index_of(key: str) -> int:
    return int(Path(key).stem.split("_")[1])


def _min_cosine(keys: list[str], embeddings: np.ndarray, reference: np.ndarray) -> float:
    expected = reference[[_index_of(k) for k in keys]]
    return float(np.sum(expected.astype(np.float64) * embeddings.astype(np.float64), axis=1).min())


def _throughput_rounds(args: argparse.Namespace, embedder: Any, crops: np.ndarray, folder: Path, work: Path) -> dict:
    from arcface_trt.embed import embed_to_file, read_embeddings

    n = len(crops)
    batches = []
    if args.forward_only:
        batches = [embedder.preprocess(crops[s : s + args.batch_size]) for s in range(0, n, args.batch_size)]
    rows: list[dict[str, float]] = []
    reference = None
    min_cos = None
    for r in range(args.rounds):
        started = time.perf_counter()
        encoded = embedder.encode(crops)
        encode_ips = n / (time.perf_counter() - started)
        reference = encoded if reference is None else reference

        out = work / f"round{r}.parquet"
        started = time.perf_counter()
        summary = embed_to_file(folder, out, embedder=embedder, batch_size=args.batch_size, threads=args.threads)
        embed_wall_ips = n / (time.perf_counter() - started)
        if summary.embedded != n:
            raise RuntimeError(f"embedded {summary.embedded} of {n}")
        keys, embeddings = read_embeddings(out)
        cos = _min_cosine(keys, embeddings, reference)
        min_cos = cos if min_cos is None else min(min_cos, cos)

        row = {
            "encode_img_s": encode_ips,
            "embed_wall_img_s": embed_wall_ips,
            "embed_summary_img_s": summary.images_per_s,
        }
        if args.forward_only:
            started = time.perf_counter()
            for batch in batches:
                embedder.forward(batch)
            row["forward_only_img_s"] = n / (time.perf_counter() - started)
        rows.append(row)
        print(f"round {r}: " + ", ".join(f"{k} {v:.1f}" for k, v in row.items()), file=sys.stderr, flush=True)
    medians = {k: statistics.median(row[k] for row in rows) for k in rows[0]}
    return {
        "rounds": rows,
        "median": medians,
        "embed_vs_encode": medians["embed_wall_img_s"] / medians["encode_img_s"],
        "embed_vs_forward_only": (
            medians["embed_wall_img_s"] / medians["forward_only_img_s"] if args.forward_only else None
        ),
        "min_cosine_vs_encode": min_cos,
        "reference": reference,
    }


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "arcface_trt", *args]


def _kill_resume(
    args: argparse.Namespace, model: Path, folder: Path, work: Path, n: int, reference: np.ndarray
) -> dict:
    from arcface_trt.embed import read_embeddings

    out = work / "killed.parquet"
    parts = work / "killed.parquet.parts"
    common = ["embed", str(folder), "--out", str(out), "--onnx-path", str(model), "--backend", args.backend]
    common += ["--device", args.device, "--batch-size", str(args.batch_size), "--chunk-size", "128", "--json"]
    process = subprocess.Popen(_cli(*common), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def committed() -> int:
        import pyarrow.parquet as pq

        files = sorted(parts.glob("part-*.parquet")) if parts.is_dir() else []
        return sum(pq.ParquetFile(p).metadata.num_rows for p in files)

    while committed() < n // 2 and process.poll() is None:
        time.sleep(0.05)
    if process.poll() is not None:
        raise RuntimeError("the run finished before it could be killed")
    os.kill(process.pid, signal.SIGKILL)
    process.communicate()
    rows_at_kill = committed()
    resumed = subprocess.run(_cli(*common, "--resume"), capture_output=True, text=True)
    if resumed.returncode != 0:
        raise RuntimeError(resumed.stderr)
    summary = json.loads(resumed.stdout)
    keys, embeddings = read_embeddings(out)
    return {
        "rows_committed_at_kill": rows_at_kill,
        "killed_returncode": process.returncode,
        "resume_skipped": summary["skipped_existing"],
        "resume_embedded": summary["embedded"],
        "rows": len(keys),
        "unique_paths": len(set(keys)),
        "every_path_exactly_once": len(keys) == len(set(keys)) == n,
        "min_cosine_vs_encode": _min_cosine(keys, embeddings, reference),
    }


def _ray(args: argparse.Namespace, model: Path, folder: Path, work: Path, single: Path) -> dict:
    from arcface_trt.embed import embed_to_file, read_embeddings

    started = time.perf_counter()
    summary = embed_to_file(
        folder,
        work / "ray.parquet",
        backend=args.backend,
        onnx_path=model,
        device=args.device,
        batch_size=args.batch_size,
        ray=True,
        ray_num_cpus=os.cpu_count(),
    )
    wall = time.perf_counter() - started
    keys_ray, emb_ray = read_embeddings(work / "ray.parquet")
    keys_one, emb_one = read_embeddings(single)
    by_key = {k: i for i, k in enumerate(keys_one)}
    other = emb_one[[by_key[k] for k in keys_ray]]
    cosine = np.sum(other.astype(np.float64) * emb_ray.astype(np.float64), axis=1)
    return {
        "rows": len(keys_ray),
        "same_paths": sorted(keys_ray) == sorted(keys_one),
        "same_order": keys_ray == keys_one,
        "min_cosine_vs_single_process": float(cosine.min()),
        "wall_s_with_ray_start": wall,
        "summary_img_s": summary.images_per_s,
    }


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--arch", default="r18")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="reader threads (default: embed's default)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--forward-only", action="store_true", help="also time forward() on preprocessed batches")
    parser.add_argument("--kill-resume", action="store_true")
    parser.add_argument("--ray", action="store_true")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    from arcface_trt.backends import get_embedding_backend
    from arcface_trt.faces import sample_faces
    from arcface_trt.model.iresnet import write_model

    with tempfile.TemporaryDirectory(prefix="embed-throughput-") as tmp:
        work = Path(tmp)
        model = write_model(work / f"arcface_{args.arch}.onnx", args.arch, 0)
        crops = sample_faces(args.n, seed=0)
        folder = work / "crops"
        _write_pngs(folder, crops)
        embedder = get_embedding_backend(args.backend, args.device, onnx_path=model, batch_size=args.batch_size)
        embedder.encode(crops[: args.batch_size])  # warm-up
        result: dict[str, Any] = {
            "machine": f"{os.cpu_count()}-core CPU",
            "n": args.n,
            "arch": args.arch,
            "backend": embedder.info().backend,
            "providers": embedder.info().providers,
            "batch_size": args.batch_size,
        }
        rounds = _throughput_rounds(args, embedder, crops, folder, work)
        reference = rounds.pop("reference")
        result["throughput"] = rounds
        if args.kill_resume:
            result["kill_resume"] = _kill_resume(args, model, folder, work, args.n, reference)
        if args.ray:
            result["ray"] = _ray(args, model, folder, work, work / "round0.parquet")
    if args.json:
        print(json.dumps(result, indent=2))
        return
    med = result["throughput"]["median"]
    print(f"machine: {result['machine']}, model {args.arch}, {args.n} crops, batch {args.batch_size}")
    print(f"bare backend, encode(pre-loaded crops):   {med['encode_img_s']:.1f} img/s")
    if args.forward_only:
        print(f"bare backend, forward(pre-processed):     {med['forward_only_img_s']:.1f} img/s")
    print(f"arcface-trt embed (PNG folder -> parquet): {med['embed_wall_img_s']:.1f} img/s (wall to wall)")
    print(f"embed / encode: {result['throughput']['embed_vs_encode']:.1%}")
    if args.forward_only:
        print(f"embed / forward only: {result['throughput']['embed_vs_forward_only']:.1%}")
    print(f"min cosine embed vs encode: {result['throughput']['min_cosine_vs_encode']:.7f}")
    for key in ("kill_resume", "ray"):
        if key in result:
            print(f"{key}: {json.dumps(result[key])}")


if __name__ == "__main__":
    main()
