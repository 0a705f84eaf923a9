"""Acceptance figures for ``arcface-trt embed`` (issue 8), measured side by side on this machine.

1. Writes N generated crops (``sample_faces``) as PNG files into a temp folder, one sub-folder per
   slice of ``--slice-size`` crops.
2. On one loaded backend, slice by slice and in A B B A order (so the changing load of a shared
   machine hits both sides equally):
   A  the bare backend on pre-loaded arrays: ``encode(crops)`` (preprocess + forward), and with
      ``--forward-only`` also ``forward`` alone on preprocessed batches (the strictest baseline);
   B  ``embed_to_file(slice folder, out.parquet)``: listing, decoding the PNGs in reader threads,
      preprocessing, forward, committing parts, merging; timed wall to wall.
   and prints images/s of each (all crops / summed seconds) and B's share of A.
3. Checks that B's embeddings equal ``encode`` on the same crops (min cosine).
4. ``--kill-resume``: runs ``arcface-trt embed`` on the whole folder as a subprocess, SIGKILLs it
   once half of the rows are committed, reruns with ``--resume``, checks every path is there once.
5. ``--ray``: runs the whole folder with ``--ray`` on a local Ray instance, once per count of
   ``--ray-actors`` (``--threads-per-actor`` threads each, ``--ray-cpus`` logical CPUs), and
   compares with the single-process outputs of step 2.

Usage: python scripts/embed_throughput.py [--n 2000] [--arch r18] [--slice-size 250] [--kill-resume]
       [--ray [--ray-actors 1,2] [--threads-per-actor 1] [--ray-cpus 3]] [--json]
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


def _write_pngs(folder: Path, crops: np.ndarray, slice_size: int) -> list[Path]:
    """PNG files in one sub-folder per slice; the slice folders."""
    import cv2

    slices = []
    for i, crop in enumerate(crops):
        sub = folder / f"slice{i // slice_size:03d}"
        if i % slice_size == 0:
            sub.mkdir(parents=True, exist_ok=True)
            slices.append(sub)
        path = sub / f"face_{i:05d}.png"
        if not cv2.imwrite(str(path), crop):
            raise OSError(f"cannot write {path}")
    return slices


def _index_of(key: str) -> int:
    return int(Path(key).stem.split("_")[1])


def _min_cosine(keys: list[str], embeddings: np.ndarray, reference: np.ndarray) -> float:
    expected = reference[[_index_of(k) for k in keys]]
    return float(np.sum(expected.astype(np.float64) * embeddings.astype(np.float64), axis=1).min())


def _throughput(args: argparse.Namespace, embedder: Any, crops: np.ndarray, slices: list[Path], work: Path) -> dict:
    """A and B alternate slice by slice, in A B B A order, so changing load on a shared machine hits both."""
    from arcface_trt.embed import embed_to_file, read_embeddings

    size = args.slice_size
    seconds = {"encode": 0.0, "embed": 0.0, "forward_only": 0.0}
    ratios = []
    reference = np.zeros((len(crops), embedder.model.embedding_dim), dtype=np.float32)
    min_cos = 1.0
    for r in range(args.rounds):
        for i, folder in enumerate(slices):
            part = crops[i * size : (i + 1) * size]
            out = work / f"round{r}-slice{i:03d}.parquet"

            def run_a(part: np.ndarray = part, i: int = i) -> float:
                started = time.perf_counter()
                reference[i * size : i * size + len(part)] = embedder.encode(part)
                return time.perf_counter() - started

            def run_b(folder: Path = folder, out: Path = out, part: np.ndarray = part) -> float:
                started = time.perf_counter()
                summary = embed_to_file(
                    folder, out, embedder=embedder, batch_size=args.batch_size, threads=args.threads
                )
                took = time.perf_counter() - started
                if summary.embedded != len(part):
                    raise RuntimeError(f"embedded {summary.embedded} of {len(part)}")
                return took

            if (r * len(slices) + i) % 2 == 0:
                a, b = run_a(), run_b()
            else:
                b, a = run_b(), run_a()
            seconds["encode"] += a
            seconds["embed"] += b
            ratios.append(a / b)
            keys, embeddings = read_embeddings(out)
            min_cos = min(min_cos, _min_cosine(keys, embeddings, reference))
            if args.forward_only:
                batches = [
                    embedder.preprocess(part[s : s + args.batch_size]) for s in range(0, len(part), args.batch_size)
                ]
                started = time.perf_counter()
                for batch in batches:
                    embedder.forward(batch)
                seconds["forward_only"] += time.perf_counter() - started
            print(
                f"round {r} slice {i}: encode {len(part) / a:.1f} img/s, embed {len(part) / b:.1f} img/s",
                file=sys.stderr,
            )
    total = len(crops) * args.rounds
    ips = {k: (total / v if v else None) for k, v in seconds.items()}
    return {
        "encode_img_s": ips["encode"],
        "embed_img_s": ips["embed"],
        "forward_only_img_s": ips["forward_only"],
        "embed_vs_encode": ips["embed"] / ips["encode"],
        "embed_vs_forward_only": ips["embed"] / ips["forward_only"] if args.forward_only else None,
        "slice_ratio_embed_vs_encode": {
            "median": statistics.median(ratios),
            "min": min(ratios),
            "max": max(ratios),
        },
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
    common += [
        "--device",
        args.device,
        "--batch-size",
        str(args.batch_size),
        "--chunk-size",
        str(max(4, n // 16)),
        "--json",
    ]
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


def _ray(args: argparse.Namespace, model: Path, folder: Path, work: Path, reference: np.ndarray) -> dict:
    """The whole folder with --ray on a local instance, once per ``--ray-actors`` count, against the slice outputs.

    Each run starts its own local instance with ``--ray-cpus`` logical CPUs; ``images_per_s`` is the
    summary's (reading, embedding and committing, after the actors have started), ``wall_s`` the
    whole call (Ray's start and the actors' start-up included).
    """
    from arcface_trt.backends.spec import BackendSpec
    from arcface_trt.embed import embed_to_file, read_embeddings

    single: dict[str, np.ndarray] = {}
    for out in sorted(work.glob("round0-slice*.parquet")):
        keys, embeddings = read_embeddings(out)
        single.update(zip(keys, embeddings, strict=True))
    runs = []
    for actors in (int(a) for a in args.ray_actors.split(",")):
        out = work / f"ray-{actors}.parquet"
        started = time.perf_counter()
        summary = embed_to_file(
            folder,
            out,
            spec=BackendSpec.resolve(args.backend, args.device, onnx_path=model, batch_size=args.batch_size),
            ray=True,
            ray_num_cpus=args.ray_cpus,
            ray_actors=actors,
            ray_threads_per_actor=args.threads_per_actor,
        )
        wall = time.perf_counter() - started
        keys_ray, emb_ray = read_embeddings(out)
        other = np.stack([single[k] for k in keys_ray])
        cosine = np.sum(other.astype(np.float64) * emb_ray.astype(np.float64), axis=1)
        runs.append(
            {
                "actors": summary.ray_actors,
                "ray_cpus": args.ray_cpus,
                "images_per_s": summary.images_per_s,
                "first_batch_s": summary.first_batch_s,
                "wall_s": wall,
                "rows": len(keys_ray),
                "same_paths_as_single_process": sorted(keys_ray) == sorted(single),
                "min_cosine_vs_single_process": float(cosine.min()),
                "min_cosine_vs_encode": _min_cosine(keys_ray, emb_ray, reference),
                "load_average_after": os.getloadavg()[0],
            }
        )
    return {"runs": runs}


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--arch", default="r18")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="reader threads (default: embed's default)")
    parser.add_argument("--rounds", type=int, default=1, help="passes over all slices")
    parser.add_argument("--slice-size", type=int, default=250, help="crops per A/B pair")
    parser.add_argument("--forward-only", action="store_true", help="also time forward() on preprocessed batches")
    parser.add_argument("--kill-resume", action="store_true")
    parser.add_argument("--ray", action="store_true")
    parser.add_argument("--ray-actors", default="1,2", help="actor counts to measure, one run each")
    parser.add_argument("--threads-per-actor", type=int, default=1)
    parser.add_argument("--ray-cpus", type=int, default=3, help="logical CPUs of the local Ray instance")
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
        slices = _write_pngs(folder, crops, args.slice_size)
        embedder = get_embedding_backend(args.backend, args.device, onnx_path=model, batch_size=args.batch_size)
        embedder.encode(crops[: args.batch_size])  # warm-up
        result: dict[str, Any] = {
            "machine": f"{os.cpu_count()}-core CPU",
            "load_average_at_start": os.getloadavg()[0],
            "n": args.n,
            "arch": args.arch,
            "backend": embedder.info().backend,
            "providers": embedder.info().providers,
            "batch_size": args.batch_size,
        }
        throughput = _throughput(args, embedder, crops, slices, work)
        reference = throughput.pop("reference")
        result["throughput"] = throughput
        if args.kill_resume:
            result["kill_resume"] = _kill_resume(args, model, folder, work, args.n, reference)
        if args.ray:
            result["ray"] = _ray(args, model, folder, work, reference)
    if args.json:
        print(json.dumps(result, indent=2))
        return
    tp = result["throughput"]
    print(f"machine: {result['machine']}, model {args.arch}, {args.n} crops, batch {args.batch_size}")
    print(f"bare backend, encode(pre-loaded crops):   {tp['encode_img_s']:.1f} img/s")
    if args.forward_only:
        print(f"bare backend, forward(pre-processed):     {tp['forward_only_img_s']:.1f} img/s")
    print(f"arcface-trt embed (PNG folder -> parquet): {tp['embed_img_s']:.1f} img/s (wall to wall)")
    print(f"embed / encode: {tp['embed_vs_encode']:.1%} (per slice: {json.dumps(tp['slice_ratio_embed_vs_encode'])})")
    if args.forward_only:
        print(f"embed / forward only: {tp['embed_vs_forward_only']:.1%}")
    print(f"min cosine embed vs encode: {tp['min_cosine_vs_encode']:.7f}")
    for key in ("kill_resume", "ray"):
        if key in result:
            print(f"{key}: {json.dumps(result[key])}")


if __name__ == "__main__":
    main()
