"""Every command, as a real subprocess, against a table of bad inputs.

For each case: exit code 2, exactly one line on stderr naming the problem, no
``Traceback``, and no file left behind (the working folder and the cache folder are
unchanged). Cases run a few at a time: each is a fresh Python process.
"""

from __future__ import annotations

import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.support.cli import run_cli
from tests.support.tiny_models import write_tiny_model


@dataclass
class Case:
    """One command line and the words its error line must contain."""

    name: str
    args: list[str]
    words: str
    env: dict[str, str] = field(default_factory=dict)


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory, r18_model: Path) -> dict[str, Path]:
    """Bad inputs, made once: text named .onnx, wrong shapes, a truncated model, NaNs, non-images, bad configs."""
    root = tmp_path_factory.mktemp("sweep")
    paths = {"root": root, "model": r18_model}
    (root / "text.onnx").write_text("this is not an ONNX model\n")
    paths["text"] = root / "text.onnx"
    paths["small"] = write_tiny_model(root / "small.onnx", input_shape=["N", 3, 112, 96])  # not square
    paths["fourd"] = write_tiny_model(root / "fourd.onnx", feature_map_output=True)
    data = r18_model.read_bytes()
    (root / "truncated.onnx").write_bytes(data[: len(data) // 3])
    paths["truncated"] = root / "truncated.onnx"
    from arcface_trt.faces import sample_faces

    np.save(root / "faces.npy", sample_faces(3))
    paths["faces"] = root / "faces.npy"
    np.save(root / "nan.npy", np.full((2, 112, 112, 3), np.nan, dtype=np.float32))
    paths["nan"] = root / "nan.npy"
    (root / "notimages").mkdir()
    (root / "notimages" / "a.png").write_text("not a png")
    (root / "notimages" / "b.jpg").write_bytes(b"\x00" * 100)
    paths["notimages"] = root / "notimages"
    (root / "empty").mkdir()
    paths["empty"] = root / "empty"
    (root / "unknown_key.yaml").write_text("embedding:\n  colour: red\n")
    paths["unknown_key"] = root / "unknown_key.yaml"
    (root / "wrong_type.yaml").write_text("validation:\n  max_drift_cosine: high\n")
    paths["wrong_type"] = root / "wrong_type.yaml"
    (root / "a_file").write_text("a file, so nothing can be created below it\n")
    paths["unwritable"] = root / "a_file" / "cache"
    plan = root / "plans" / "m-fp16-sm90.plan"
    plan.parent.mkdir()
    plan.write_bytes(b"not a real plan")
    paths["plan"] = plan
    return paths


def _cases(p: dict[str, Path]) -> list[Case]:
    model, root = str(p["model"]), p["root"]
    unreachable = ["--bucket", "b", "--endpoint-url", "http://127.0.0.1:9"]
    out = str(root / "out.parquet")
    cpu_fp32 = ["--target", "cpu", "--precision", "fp32", "--onnx-path", model]
    cases = [
        # missing and unreadable files
        Case("compare missing model", ["compare", "--onnx-path", str(root / "absent.onnx")], "ONNX model not found"),
        Case("build missing model", ["build", "--onnx-path", str(root / "absent.onnx")], "ONNX model not found"),
        Case("benchmark missing model", ["benchmark", "--onnx-path", str(root / "absent.onnx")], "not found"),
        Case(
            "quantize missing model",
            ["quantize", "--onnx-path", str(root / "absent.onnx"), "--out", str(root / "q.onnx")],
            "not found",
        ),
        Case(
            "embed missing input", ["embed", str(root / "absent_dir"), "--out", out, "--onnx-path", model], "absent_dir"
        ),
        Case(
            "export-triton missing model",
            ["export-triton", "--onnx-path", str(root / "absent.onnx"), "--model-repository", str(root / "repo")],
            "ONNX model not found",
        ),
        Case("push missing plan", ["push-engine", str(root / "absent.plan"), *unreachable], "absent.plan"),
        Case("inspect missing plan", ["inspect", str(root / "absent.plan")], "plan not found"),
        Case("inspect a folder", ["inspect", str(p["empty"])], "plan not found"),
        Case(
            "inspect uncached key",
            ["inspect", "--model", "m", "--arch", "90", "--trt-version", "10.16"],
            "no cached plan trt10.16/m-fp16-sm90.plan",
        ),
        Case("inspect plan and key", ["inspect", str(p["plan"]), "--precision", "fp16"], "not both"),
        Case("inspect bad arch", ["inspect", "--model", "m", "--arch", "ninety", "--trt-version", "10.16"], "ninety"),
        Case("push plan without manifest", ["push-engine", str(p["plan"]), *unreachable], "manifest"),
        # a text file named .onnx, wrong shapes, truncated
        Case("compare text .onnx", ["compare", "--onnx-path", str(p["text"])], "not a valid ONNX model"),
        Case("build text .onnx", ["build", "--onnx-path", str(p["text"]), "--dry-run"], "not a valid ONNX model"),
        Case("benchmark text .onnx", ["benchmark", "--onnx-path", str(p["text"])], "not a valid ONNX model"),
        Case(
            "embed text .onnx",
            ["embed", str(p["notimages"]), "--out", out, "--onnx-path", str(p["text"])],
            "not a valid ONNX model",
        ),
        Case(
            "export-triton text .onnx",
            ["export-triton", "--onnx-path", str(p["text"]), "--model-repository", str(root / "repo")],
            "not a valid ONNX model",
        ),
        Case(
            "export-triton repository is a file",
            ["export-triton", *cpu_fp32, "--model-repository", str(root / "a_file")],
            "is not a folder",
        ),
        Case("compare wrong input shape", ["compare", "--onnx-path", str(p["small"])], "[N, 3, S, S]"),
        Case("build wrong output shape", ["build", "--onnx-path", str(p["fourd"]), "--dry-run"], "[N, D]"),
        Case(
            "quantize wrong shape",
            ["quantize", "--onnx-path", str(p["small"]), "--out", str(root / "q.onnx")],
            "[N, 3, S, S]",
        ),
        Case("compare truncated", ["compare", "--onnx-path", str(p["truncated"])], "not a valid ONNX model"),
        Case(
            "build cpu truncated",
            ["build", "--target", "cpu", "--precision", "fp32", "--onnx-path", str(p["truncated"])],
            "not a valid ONNX model",
        ),
        # NaN-filled npy, images that are not images, empty folders
        Case("compare NaN npy", ["compare", "--onnx-path", model, "--npy", str(p["nan"])], "NaN"),
        Case("embed NaN npy", ["embed", str(p["nan"]), "--out", out, "--onnx-path", model], "NaN"),
        Case(
            "compare non-images",
            ["compare", "--onnx-path", model, "--images", str(p["notimages"])],
            "not a readable image",
        ),
        Case("compare empty folder", ["compare", "--onnx-path", model, "--images", str(p["empty"])], "no images"),
        Case(
            "quantize non-image calibration",
            ["quantize", "--onnx-path", model, "--out", str(root / "q.onnx"), "--calib-images", str(p["notimages"])],
            "readable image",
        ),
        Case(
            "build cpu empty calibration",
            [
                "build",
                "--target",
                "cpu",
                "--precision",
                "int8",
                "--onnx-path",
                model,
                "--calib-images",
                str(p["empty"]),
            ],
            "no images",
        ),
        # negative or zero sizes
        Case("compare zero samples", ["compare", "--onnx-path", model, "--n-samples", "0"], "n_samples"),
        Case("compare negative samples", ["compare", "--onnx-path", model, "--n-samples", "-3"], "n_samples"),
        Case("benchmark zero batch", ["benchmark", "--onnx-path", model, "--batch-sizes", "0"], "batch"),
        Case("benchmark zero iterations", ["benchmark", "--onnx-path", model, "--iterations", "0"], "iterations"),
        Case(
            "build zero max batch", ["build", "--onnx-path", model, "--max-batch", "0", "--dry-run"], "max_batch_size"
        ),
        Case(
            "build zero workspace",
            ["build", "--onnx-path", model, "--workspace-mb", "0", "--dry-run"],
            "workspace_size_mb",
        ),
        Case(
            "embed zero batch",
            ["embed", str(p["empty"]), "--out", out, "--onnx-path", model, "--batch-size", "0"],
            "batch",
        ),
        Case(
            "quantize zero calibration",
            ["quantize", "--onnx-path", model, "--out", str(root / "q.onnx"), "--calib-samples", "0"],
            "calib-samples",
        ),
        Case("make-model negative seed", ["make-model", "--out", str(root / "m.onnx"), "--seed", "-1"], "seed"),
        # unknown precision
        Case(
            "build unknown precision", ["build", "--onnx-path", model, "--precision", "fp8", "--dry-run"], "precision"
        ),
        Case("compare unknown precision", ["compare", "--onnx-path", model, "--precision", "fp8"], "precision"),
        Case("benchmark unknown precision", ["benchmark", "--onnx-path", model, "--precision", "fp8"], "precision"),
        Case(
            "fetch unknown precision",
            [
                "fetch-engine",
                "--model",
                "m",
                "--precision",
                "fp8",
                "--arch",
                "90",
                "--trt-version",
                "10.16",
                *unreachable,
            ],
            "precision",
        ),
        # unwritable cache folder
        Case(
            "compare unwritable cache",
            ["compare", "--n-samples", "2"],
            "cache",
            {"ARCFACE_TRT_CACHE_DIR": str(p["unwritable"])},
        ),
        Case(
            "build unwritable cache",
            ["build", *cpu_fp32, "--cache-dir", str(p["unwritable"])],
            "a_file",
        ),
        Case(
            "fetch unwritable cache",
            [
                "fetch-engine",
                "--model",
                "m",
                "--arch",
                "90",
                "--trt-version",
                "10.16",
                "--cache-dir",
                str(p["unwritable"]),
                *unreachable,
            ],
            "127.0.0.1:9",
        ),
        Case(
            "embed unwritable output",
            ["embed", str(p["faces"]), "--out", str(p["unwritable"] / "e.parquet"), "--onnx-path", model],
            "a_file",
        ),
        # configs with unknown keys and wrong types
        *[
            Case(
                f"{cmd} unknown config key",
                [cmd, *extra, "--config", str(p["unknown_key"])],
                "unknown key 'embedding.colour'",
            )
            for cmd, extra in [
                ("compare", []),
                ("build", ["--dry-run"]),
                ("benchmark", []),
                ("diagnose", []),
                ("embed", [str(p["faces"]), "--out", out]),
                ("quantize", ["--out", str(root / "q.onnx")]),
                ("fetch-engine", ["--arch", "90", "--trt-version", "10.16"]),
                ("list-engines", []),
                ("push-engine", [str(p["plan"])]),
                ("export-triton", ["--model-repository", str(root / "repo")]),
                ("inspect", ["--arch", "90", "--trt-version", "10.16"]),
            ]
        ],
        Case(
            "compare wrong config type",
            ["compare", "--config", str(p["wrong_type"])],
            "max_drift_cosine' must be float",
        ),
        Case(
            "diagnose wrong config type",
            ["diagnose", "--config", str(p["wrong_type"])],
            "max_drift_cosine' must be float",
        ),
        # unreachable S3 endpoint
        Case(
            "fetch unreachable",
            ["fetch-engine", "--model", "m", "--arch", "90", "--trt-version", "10.16", *unreachable],
            "127.0.0.1:9",
        ),
        Case("list unreachable", ["list-engines", *unreachable], "127.0.0.1:9"),
    ]
    return cases


def _snapshot(*folders: Path) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    for folder in folders:
        if folder.exists():
            for path in folder.rglob("*"):
                found.add((str(path), path.stat().st_size if path.is_file() else -1))
    return found


def _run(case: Case, cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    env = {"ARCFACE_TRT_CACHE_DIR": str(cache), "AWS_ACCESS_KEY_ID": "sweep", "AWS_SECRET_ACCESS_KEY": "sweep"}
    return run_cli(*case.args, cwd=cwd, env={**env, **case.env, "ARCFACE_TRT_CONFIG": None}, timeout=240)


def test_every_command_rejects_bad_input_cleanly(work: dict[str, Path], tmp_path: Path) -> None:
    cases = _cases(work)
    cache = tmp_path / "cache"
    cache.mkdir()
    cwd = tmp_path / "cwd"  # no ./config here: built-in defaults
    cwd.mkdir()
    before = _snapshot(work["root"], cache, cwd)
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda c: _run(c, cwd, cache), cases))
    failures = []
    for case, result in zip(cases, results, strict=True):
        lines = result.stderr.strip().splitlines()
        problems = []
        if result.returncode != 2:
            problems.append(f"exit {result.returncode}")
        if "Traceback" in result.stderr + result.stdout:
            problems.append("traceback")
        if len(lines) != 1:
            problems.append(f"{len(lines)} stderr lines")
        elif not lines[0].startswith("error: ") or case.words not in lines[0]:
            problems.append(f"message lacks {case.words!r}")
        if problems:
            failures.append(f"{case.name}: {', '.join(problems)}: {result.stderr.strip()[-300:]!r}")
    after = _snapshot(work["root"], cache, cwd)
    assert not failures, "\n".join(failures)
    assert after == before, f"files left behind: {sorted(after - before)}"
