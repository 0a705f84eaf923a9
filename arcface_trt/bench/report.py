"""The benchmark report: JSON on disk (written atomically) and the rows of the people's table."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arcface_trt.errors import InputError
from arcface_trt.fileio import write_text_atomic
from arcface_trt.records import json_text


def check_output_path(path: str | Path) -> Path:
    """InputError when ``path`` is a folder (checked before a long run, not after)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--output is a folder, give a file path: {path}")
    return path


def write_report(path: str | Path, report: dict[str, Any]) -> Path:
    """Write ``report`` to ``path`` atomically; InputError when the path is a folder or cannot be written."""
    path = check_output_path(path)
    try:
        write_text_atomic(path, json_text(report))
    except OSError as exc:
        raise InputError(f"cannot write the report to {path}: {exc.strerror or exc}") from None
    return path


def _fmt(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def backend_label(row: dict[str, Any]) -> str:
    """A result row's backend with the precision it ran at: ``onnxruntime (int8)``."""
    return f"{row['backend']} ({row['precision']})" if row.get("precision") else row["backend"]


def _ratio_cells(ratio: dict[str, float | None]) -> list[str]:
    return [_fmt(ratio["end_to_end"], ".2f"), _fmt(ratio["inference"], ".2f")]


def table_rows(report: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Column names and text rows for the side-by-side table.

    Speedup columns only with the reference backend; ratio columns only with several precisions.
    """
    with_reference = report.get("reference") is not None
    with_precisions = len(report.get("precisions", ())) > 1
    columns = ["backend", "batch", "img/s e2e", "img/s infer", "ms mean", "ms p50", "ms p99"]
    if with_reference:
        columns += ["x e2e", "x infer"]
    if with_precisions:
        columns += [f"x{report['precisions'][0]} e2e", f"x{report['precisions'][0]} infer"]
    columns += ["MiB"]
    rows = []
    for row in report["results"]:
        latency = row["modes"]["end_to_end"]["latency_ms"]
        cells = [
            backend_label(row),
            str(row["batch_size"]),
            _fmt(row["throughput_fps"], ".1f"),
            _fmt(row["inference_throughput_fps"], ".1f"),
            _fmt(latency["mean"], ".1f"),
            _fmt(latency["p50"], ".1f"),
            _fmt(latency["p99"], ".1f"),
        ]
        if with_reference:
            cells += _ratio_cells(row["speedup_vs_reference"])
        if with_precisions:
            cells += _ratio_cells(row["vs_first_precision"])
        cells.append(memory_text(row["memory"]))
        rows.append(cells)
    return columns, rows


def memory_text(memory: dict[str, Any]) -> str:
    """Short memory cell: GPU figures when present, else the RSS this backend added (its own memory)."""
    if "engine_device_memory_mb" in memory:
        engine = _fmt(memory.get("engine_device_memory_mb"), ".0f")
        peak = _fmt(memory.get("gpu_peak_mb"), ".0f")
        return f"{peak} GPU ({engine} engine)"
    return f"+{_fmt(memory.get('rss_added_mb'), '.0f')} RSS"
