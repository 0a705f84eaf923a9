"""``arcface-trt benchmark`` through CliRunner and as a subprocess, on the r18 model with tiny counts."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.support.cli import invoke, run_cli

TINY = ["--iterations", "1", "--warmup", "0"]
LATENCY_KEYS = {"n", "mean", "p50", "p90", "p95", "p99", "min", "max", "std"}


def _bench(*args: str):
    return invoke("benchmark", *args)


def test_json_report_output_file_and_plot(r18_model: Path, tmp_path: Path) -> None:
    out, png = tmp_path / "report.json", tmp_path / "chart.png"
    result = _bench(
        "--onnx-path", str(r18_model), "--batch-sizes", "1,2", *TINY, "--json", "--output", str(out), "--plot", str(png)
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)  # stdout holds only the JSON
    assert report["backends"] == ["onnxruntime"] and report["batch_sizes"] == [1, 2]
    assert report["reference"] is None  # insightface was not run: no speedup
    assert {"end_to_end", "inference", "peak_rss_mb"} <= set(report["notes"])
    rows = report["results"]
    assert [r["batch_size"] for r in rows] == [1, 2]
    for row in rows:
        assert row["backend"] == row["requested_backend"] == "onnxruntime"
        assert row["providers"] == ["CPUExecutionProvider"]
        assert set(row["modes"]) == {"end_to_end", "inference"}
        for mode in row["modes"].values():
            assert set(mode["latency_ms"]) == LATENCY_KEYS
            assert mode["iterations"] == 1 and mode["warmup_iterations"] == 1
            # one timed batch: throughput is exactly batch / latency
            assert mode["throughput_fps"] == pytest.approx(row["batch_size"] * 1000 / mode["latency_ms"]["mean"])
        assert row["throughput_fps"] == row["modes"]["end_to_end"]["throughput_fps"]
        assert row["memory"]["peak_rss_mb"] > 50
        assert "engine_device_memory_mb" not in row["memory"]  # CPU backend: RSS only
        assert row["speedup_vs_reference"] == {"end_to_end": None, "inference": None}
    env = report["environment"]
    assert env["cpu"]["logical_cores"] >= 1 and env["cpu"]["model"]
    assert env["packages"]["onnxruntime"] and env["packages"]["insightface"] and env["packages"]["numpy"]
    assert "CPUExecutionProvider" in env["onnxruntime"]["providers_available"]
    assert env["tool_version"] and "tensorrt" in env and "gpu" in env
    assert json.loads(out.read_text()) == report
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 5000


def test_two_backends_side_by_side_with_speedup_column(r18_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    args = ["--onnx-path", str(r18_model), "--backend", "pytorch", "--backend", "onnxruntime", "--batch-sizes", "2"]
    result = _bench(*args, *TINY, "--output", str(out))
    assert result.exit_code == 0, result.output
    table = result.stdout
    assert "insightface" in table and "onnxruntime" in table
    assert "x e2e" in table and "x infer" in table and "speedup" in table
    # the precision that ran stands beside every backend
    ref_line = next(line for line in table.splitlines() if line.strip().startswith("insightface (fp32)"))
    assert ref_line.split()[8:10] == ["1.00", "1.00"]  # the reference against itself
    report = json.loads(out.read_text())
    assert report["reference"] == "insightface" and report["backends"] == ["insightface", "onnxruntime"]
    ref, ort = report["results"]
    assert ort["speedup_vs_reference"]["end_to_end"] == pytest.approx(ort["throughput_fps"] / ref["throughput_fps"])
    assert ort["speedup_vs_reference"]["inference"] == pytest.approx(
        ort["inference_throughput_fps"] / ref["inference_throughput_fps"]
    )
    ort_line = next(line for line in table.splitlines() if line.strip().startswith("onnxruntime (fp32)"))
    assert ort_line.split()[8] == f"{ort['speedup_vs_reference']['end_to_end']:.2f}"
    # each backend's own memory: what loading it and one batch added, not the process's peak, even in this
    # long-lived process (freed heap is returned first, so reused pages do not hide it)
    assert ref["memory"]["rss_added_mb"] != ort["memory"]["rss_added_mb"]
    assert all(1 < r["memory"]["rss_added_mb"] < r["memory"]["peak_rss_mb"] for r in (ref, ort))
    assert ort_line.split()[-2:] == [f"+{ort['memory']['rss_added_mb']:.0f}", "RSS"]


def test_subprocess_json(r18_model: Path) -> None:
    backends = ["--backend", "pytorch", "--backend", "onnxruntime"]
    proc = run_cli(
        "benchmark", "--onnx-path", str(r18_model), *backends, "--batch-sizes", "1", *TINY, "--json", timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    ref, ort = json.loads(proc.stdout)["results"]
    assert ref["throughput_fps"] > 0 and ort["throughput_fps"] > 0
    assert proc.stderr.count("Traceback") == 0
    # each backend's own memory: what loading it and one batch added, not the process's peak
    assert ref["memory"]["rss_added_mb"] != ort["memory"]["rss_added_mb"]
    assert all(0 < r["memory"]["rss_added_mb"] < r["memory"]["peak_rss_mb"] for r in (ref, ort))


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--iterations", "2", "--duration", "1"], "not both"),
        (["--batch-sizes", "1,x"], "--batch-sizes"),
        (["--batch-sizes", "0"], "--batch-sizes"),
        (["--iterations", "0"], "--iterations"),
        (["--plot", "chart.jpg"], "PNG"),
        (["--backend", "caffe"], "unknown backend"),
    ],
)
def test_bad_options_are_one_line_errors(r18_model: Path, args: list[str], words: str) -> None:
    result = _bench("--onnx-path", str(r18_model), *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ") and words in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.output


def test_unavailable_backend_is_an_error_not_a_silent_fallback(r18_model: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = _bench("--onnx-path", str(r18_model), "--backend", "tensorrt", *TINY, "--output", str(out))
    assert result.exit_code == 2
    assert "tensorrt" in result.stderr.lower()
    assert not out.exists()


def test_output_that_is_a_folder_fails_before_running(r18_model: Path, tmp_path: Path) -> None:
    result = _bench("--onnx-path", str(r18_model), "--output", str(tmp_path), *TINY)
    assert result.exit_code == 2 and "folder" in result.stderr


def test_plot_without_matplotlib_names_the_install(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from arcface_trt.bench.plot import plot_report
    from arcface_trt.errors import BackendUnavailableError

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    report = {"results": [], "batch_sizes": [1], "model": {"name": "m"}}
    with pytest.raises(BackendUnavailableError, match=r"arcface-trt\[plot\]"):
        plot_report(report, tmp_path / "chart.png")
    assert not (tmp_path / "chart.png").exists()
    # the command says so before timing anything
    result = _bench(
        "--plot", str(tmp_path / "chart.png"), "--backend", "onnxruntime", "--onnx-path", "/nonexistent.onnx"
    )
    assert result.exit_code == 2 and "arcface-trt[plot]" in result.stderr


def test_precision_runs_the_cpu_engine(r18_model: Path) -> None:
    args = ["--onnx-path", str(r18_model), "--backend", "onnxruntime", "--precision", "fp16", "--batch-sizes", "2"]
    result = _bench(*args, *TINY, "--json")
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout)["results"][0]
    assert row["precision"] == "fp16" and row["engine_path"].endswith("-fp16-cpu.onnx")
    bad = _bench(*args[:-4], "--precision", "fp8", *TINY)
    assert bad.exit_code == 2 and "precision" in bad.stderr


def test_precisions_time_one_engine_each_side_by_side_with_a_ratio(r18_model: Path) -> None:
    args = ["--onnx-path", str(r18_model), "--backend", "pytorch", "--backend", "onnxruntime"]
    result = _bench(*args, "--precisions", "fp32,int8", "--batch-sizes", "2", *TINY, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["precisions"] == ["fp32", "int8"] and report["precision_applies_to"] == ["onnxruntime"]
    ref, fp32, int8 = report["results"]
    # the reference takes no precision: it runs once, without a ratio
    assert (ref["backend"], ref["vs_first_precision"]) == ("insightface", {"end_to_end": None, "inference": None})
    assert [(r["backend"], r["precision"]) for r in (fp32, int8)] == [("onnxruntime", "fp32"), ("onnxruntime", "int8")]
    assert fp32["engine_path"].endswith("-fp32-cpu.onnx") and int8["engine_path"].endswith("-int8-cpu.onnx")
    assert fp32["vs_first_precision"] == {"end_to_end": 1.0, "inference": 1.0}
    ratio = int8["vs_first_precision"]
    assert ratio["end_to_end"] == pytest.approx(int8["throughput_fps"] / fp32["throughput_fps"])
    assert ratio["inference"] == pytest.approx(int8["inference_throughput_fps"] / fp32["inference_throughput_fps"])
    # the int8 engine's weights are a quarter of fp32's: its own memory differs
    assert int8["memory"]["rss_added_mb"] != fp32["memory"]["rss_added_mb"]


def test_precisions_table_has_the_ratio_column_and_says_where_precisions_apply(r18_model: Path) -> None:
    args = ["--onnx-path", str(r18_model), "--backend", "insightface", "--backend", "onnxruntime"]
    result = _bench(*args, "--precisions", "fp32,fp16", "--batch-sizes", "1", *TINY)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    words = " ".join(result.stdout.split())
    assert "xfp32" in words and "precisions fp32,fp16 apply to onnxruntime" in words
    assert "timed round-robin (interleaved)" in words
    fp32 = next(line for line in lines if line.strip().startswith("onnxruntime (fp32)"))
    fp16 = next(line for line in lines if line.strip().startswith("onnxruntime (fp16)"))
    assert fp32.split()[10:12] == ["1.00", "1.00"]
    assert fp16.split()[10] != "-"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--precision", "fp8"], "error: unknown precision fp8 in --precision (choose fp32, fp16, int8)"),
        (["--precisions", "fp32,fp8"], "error: unknown precision fp8 in --precisions (choose fp32, fp16, int8)"),
        (["--precisions", "fp32,fp32"], "error: --precisions names a precision twice: fp32,fp32"),
        (
            ["--precision", "fp16", "--precisions", "fp32,fp16"],
            "error: give either --precision or --precisions, not both",
        ),
        (
            ["--backend", "pytorch", "--precisions", "fp32,int8"],
            "error: a precision applies to onnxruntime and tensorrt, and no --backend given takes one",
        ),
    ],
)
def test_precision_messages_name_the_option_given(r18_model: Path, args: list[str], message: str) -> None:
    for debug in ((), ("--debug",)):
        result = invoke(*debug, "benchmark", "--onnx-path", str(r18_model), *args, *TINY)
        assert result.exit_code == 2, result.output  # --debug adds the traceback, not another exit code
    assert result.stderr.strip().splitlines()[-1].endswith(message.split("error: ")[1])
    plain = _bench("--onnx-path", str(r18_model), *args, *TINY)
    assert plain.stderr.startswith(message) and len(plain.stderr.strip().splitlines()) == 1
