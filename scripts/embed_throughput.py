"""Acceptance figures for ``arcface-trt embed`` (issues 8 and 16), measured on this machine.

1. Writes N generated crops (``sample_faces``: augmented crops of the real sample faces) as image
   files into a temp folder, PNG and JPEG alternately, one sub-folder per slice of ``--slice-size``.
2. For each of ``--models`` (``ARCH`` or ``ARCH:WIDTH``, a narrow IResNet from the project's own
   generator; default ``r18`` and ``r18:8``, a slow and a fast model), ``--repeats`` times, models
   alternating: runs the whole command, ``arcface-trt embed FOLDER --out OUT --json``, as a
   subprocess, and reads from its summary the three figures it measures in the run (``stages``):
   embed's steady state (the overlapped pipeline), decode + preprocess alone, ``encode`` alone on
   the decoded crops, and embed over the slower of the two. Also prints the whole command's
   images/s (N over its wall time, start-up included). Then, as a separate pass in this process,
   ``encode`` of all N crops as decoded from the files, pre-loaded (the bare backend), and the min
   cosine of the command's output against it.
3. ``--ab`` (issue 8): on one loaded backend (``--arch``), slice by slice and in A B B A order (so
   the changing load of a shared machine hits both sides equally):
   A  the bare backend on the decoded crops, pre-loaded: ``encode(crops)`` (preprocess + forward), and with
      ``--forward-only`` also ``forward`` alone on preprocessed batches (the strictest baseline);
   B  ``embed_to_file(slice folder, out.parquet)``: listing, decoding the files in reader threads,
      preprocessing, forward, committing parts, merging; timed wall to wall.
   and prints images/s of each (all crops / summed seconds) and B's share of A.
4. ``--kill-resume``: runs ``arcface-trt embed`` on the whole folder as a subprocess, SIGKILLs it
   once half of the rows are committed, reruns with ``--resume``, checks every path is there once.
5. ``--ray`` (with ``--ab``): runs the whole folder with ``--ray`` on a local Ray instance, once per
   count of ``--ray-actors`` (``--threads-per-actor`` threads each, ``--ray-cpus`` logical CPUs),
   and compares with the single-process outputs of step 3.

Usage: python scripts/embed_throughput.py [--n 2000] [--models r18,r18:8] [--repeats 1] [--ab [--arch r18]
       [--slice-size 250]] [--kill-resume] [--ray [--ray-actors 1,2] [--threads-per-actor 1] [--ray-cpus 3]] [--json]
       (``--models ''`` skips step 2, e.g. for the Ray figures alone)
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


def _write_images(folder: Path, crops: np.ndarray, slice_size: int) -> list[Path]:
    """PNG and JPEG files (alternately) in one sub-folder per slice; the slice folders."""
    import cv2

    slices = []
    for i, crop in enumerate(crops):
        sub = folder / f"slice{i // slice_size:03d}"
        if i % slice_size == 0:
            sub.mkdir(parents=True, exist_ok=True)
            slices.append(sub)
        path = sub / f"face_{i:05d}.{'png' if i % 2 == 0 else 'jpg'}"
        if not cv2.imwrite(str(path), crop):
            raise OSError(f"cannot write {path}")
    return slices


def _decoded(folder: Path) -> np.ndarray:
    """The crops as the files hold them (JPEG is lossy): what ``encode`` is compared with, in index order."""
    from arcface_trt.inputs import read_image

    files = sorted((p for p in folder.rglob("face_*") if p.is_file()), key=lambda p: _index_of(str(p)))
    return np.stack([read_image(p) for p in files])


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


def _model_spec(spec: str) -> tuple[str, int]:
    """``r18`` or ``r18:8`` -> (arch, first-stage width)."""
    from arcface_trt.model.iresnet import DEFAULT_WIDTH

    arch, _, width = spec.partition(":")
    return arch, int(width) if width else DEFAULT_WIDTH


def _command_out(work: Path, spec: str) -> Path:
    return work / f"command-{spec.replace(':', '-w')}.parquet"


def _whole_command(args: argparse.Namespace, name: str, model: Path, folder: Path, out: Path, n: int) -> dict:
    """``arcface-trt embed`` on the folder as a user runs it (a subprocess, ``--json``): its stage figures."""
    command = ["embed", str(folder), "--out", str(out), "--onnx-path", str(model), "--backend", args.backend]
    command += ["--device", args.device, "--batch-size", str(args.batch_size), "--json", "--overwrite"]
    if args.threads:
        command += ["--threads", str(args.threads)]
    started = time.perf_counter()
    done = subprocess.run(_cli(*command), capture_output=True, text=True)
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(done.stderr)
    summary = json.loads(done.stdout)
    stages = summary["stages"]
    if summary["embedded"] != n or stages is None:
        raise RuntimeError(f"embedded {summary['embedded']} of {n}, stages {stages}")
    return {
        "model": name,
        "embed_img_s": stages["embed_img_s"],
        "decode_only_img_s": stages["decode_only_img_s"],
        "encode_only_img_s": stages["encode_only_img_s"],
        "bound_stage": stages["bound_stage"],
        "embed_vs_bound": stages["embed_vs_bound"],
        "meets_0_9": stages["embed_vs_bound"] >= 0.9,
        "reader_threads": stages["reader_threads"],
        "probe_images": stages["probe_images"],
        "pipelined_images": stages["pipelined_images"],
        "summary_images_per_s": summary["images_per_s"],
        "whole_command_img_s": n / wall,
        "wall_s": wall,
        "load_average_after": os.getloadavg()[0],
    }


def _stages(args: argparse.Namespace, crops: np.ndarray, folder: Path, work: Path) -> dict:
    """Step 2: the whole command per model (models alternating over the repeats), then a separate bare-encode pass."""
    from arcface_trt.backends import get_embedding_backend
    from arcface_trt.embed import read_embeddings
    from arcface_trt.model.iresnet import write_model

    models = {}
    for spec in args.models.split(","):
        arch, width = _model_spec(spec)
        models[spec] = write_model(work / f"arcface_{arch}_w{width}.onnx", arch, 0, width)
    runs: dict[str, list[dict]] = {spec: [] for spec in models}
    for repeat in range(args.repeats):
        for spec, model in models.items():
            run = _whole_command(args, spec, model, folder, _command_out(work, spec), len(crops))
            runs[spec].append(run)
            print(f"repeat {repeat} {spec}: {json.dumps(run)}", file=sys.stderr)
    result = {}
    for spec, model in models.items():
        embedder = get_embedding_backend(args.backend, args.device, onnx_path=model, batch_size=args.batch_size)
        embedder.encode(crops[: args.batch_size])  # warm-up
        started = time.perf_counter()
        reference = embedder.encode(crops)
        separate = len(crops) / (time.perf_counter() - started)
        keys, embeddings = read_embeddings(_command_out(work, spec))
        result[spec] = {
            "runs": runs[spec],
            "median_embed_vs_bound": statistics.median(r["embed_vs_bound"] for r in runs[spec]),
            "separate_pass_bare_encode_img_s": separate,
            "min_cosine_vs_encode": _min_cosine(keys, embeddings, reference),
        }
    return result


def main() -> None:
    """Run the measurements and print them."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--models", default="r18,r18:8", help="ARCH or ARCH:WIDTH, comma-separated; '' skips step 2")
    parser.add_argument("--repeats", type=int, default=1, help="runs of the whole command per model (step 2)")
    parser.add_argument("--arch", default="r18", help="the model of steps 3 to 5")
    parser.add_argument("--backend", default="onnxruntime")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=None, help="reader threads (default: embed's default)")
    parser.add_argument("--ab", action="store_true", help="step 3 (implied by --kill-resume and --ray)")
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

    result: dict[str, Any] = {
        "machine": f"{os.cpu_count()}-core CPU",
        "load_average_at_start": os.getloadavg()[0],
        "n": args.n,
        "backend": args.backend,
        "batch_size": args.batch_size,
    }
    with tempfile.TemporaryDirectory(prefix="embed-throughput-") as tmp:
        work = Path(tmp)
        folder = work / "crops"
        slices = _write_images(folder, sample_faces(args.n, seed=0), args.slice_size)
        crops = _decoded(folder)
        result["stages"] = _stages(args, crops, folder, work) if args.models else {}
        if args.ab or args.kill_resume or args.ray:
            model = write_model(work / f"arcface_{args.arch}.onnx", args.arch, 0)
            embedder = get_embedding_backend(args.backend, args.device, onnx_path=model, batch_size=args.batch_size)
            embedder.encode(crops[: args.batch_size])  # warm-up
            throughput = _throughput(args, embedder, crops, slices, work)
            reference = throughput.pop("reference")
            result["throughput"] = {"arch": args.arch, "providers": embedder.info().providers, **throughput}
            if args.kill_resume:
                result["kill_resume"] = _kill_resume(args, model, folder, work, args.n, reference)
            if args.ray:
                result["ray"] = _ray(args, model, folder, work, reference)
    result["load_average_at_end"] = os.getloadavg()[0]
    if args.json:
        print(json.dumps(result, indent=2))
        return
    _print(args, result)


def _print(args: argparse.Namespace, result: dict) -> None:
    print(f"machine: {result['machine']}, {args.n} crops (PNG and JPEG), batch {args.batch_size}")
    if result["stages"]:
        print("arcface-trt embed, its summary's figures (img/s): embed steady state | decode+preprocess | encode")
    for spec, figures in result["stages"].items():
        for run in figures["runs"]:
            embed, decode, encode = (run[k] for k in ("embed_img_s", "decode_only_img_s", "encode_only_img_s"))
            print(
                f"  {spec:8s} {embed:8.1f} | {decode:8.1f} | {encode:8.1f}"
                f"  embed / {run['bound_stage']} alone = {run['embed_vs_bound']:.3f}"
                f"  (whole command {run['whole_command_img_s']:.1f} img/s, load {run['load_average_after']:.1f})"
            )
        separate = figures["separate_pass_bare_encode_img_s"]
        print(
            f"  {spec:8s} separate pass, bare encode of pre-loaded crops: {separate:.1f} img/s;"
            f" min cosine embed vs encode {figures['min_cosine_vs_encode']:.7f}"
        )
    if "throughput" in result:
        tp = result["throughput"]
        print(f"A/B, model {tp['arch']}:")
        print(f"bare backend, encode(pre-loaded crops):   {tp['encode_img_s']:.1f} img/s")
        if args.forward_only:
            print(f"bare backend, forward(pre-processed):     {tp['forward_only_img_s']:.1f} img/s")
        print(f"arcface-trt embed (folder -> parquet):     {tp['embed_img_s']:.1f} img/s (wall to wall)")
        slices = json.dumps(tp["slice_ratio_embed_vs_encode"])
        print(f"embed / encode: {tp['embed_vs_encode']:.1%} (per slice: {slices})")
        if args.forward_only:
            print(f"embed / forward only: {tp['embed_vs_forward_only']:.1%}")
        print(f"min cosine embed vs encode: {tp['min_cosine_vs_encode']:.7f}")
    for key in ("kill_resume", "ray"):
        if key in result:
            print(f"{key}: {json.dumps(result[key])}")


if __name__ == "__main__":
    main()
