"""Throughput and latency against batch size, one line per backend, as a PNG.

matplotlib is optional (``pip install 'arcface-trt[plot]'``); it is imported only
here, with the Agg backend so no display is needed.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from arcface_trt.errors import InputError
from arcface_trt.fileio import write_bytes_atomic
from arcface_trt.lazy import lazy_import

matplotlib = lazy_import("matplotlib")
pyplot = lazy_import("matplotlib.pyplot")


def _series(report: dict[str, Any]) -> dict[str, list[tuple[int, float, float]]]:
    """backend label -> [(batch, end-to-end img/s, mean latency ms)] sorted by batch."""
    out: dict[str, list[tuple[int, float, float]]] = {}
    for row in report["results"]:
        label = row["backend"] if row["backend"] != "tensorrt" else f"tensorrt ({row['precision']})"
        mode = row["modes"]["end_to_end"]
        out.setdefault(label, []).append((row["batch_size"], mode["throughput_fps"], mode["latency_ms"]["mean"]))
    return {label: sorted(points) for label, points in out.items()}


def check_png_path(path: str | Path) -> Path:
    """InputError unless ``path`` can name a PNG file (checked before a long run, not after)."""
    path = Path(path)
    if path.is_dir():
        raise InputError(f"--plot is a folder, give a file path: {path}")
    if path.suffix.lower() != ".png":
        raise InputError(f"--plot writes a PNG; give a file name ending in .png, got {path}")
    return path


def require_matplotlib() -> None:
    """Select matplotlib's Agg backend (no display needed), or BackendUnavailableError naming the ``plot`` extra."""
    matplotlib.use("Agg", force=True)


def plot_report(report: dict[str, Any], path: str | Path) -> Path:
    """Draw the report's throughput and latency against batch size into the PNG ``path`` (atomic write)."""
    path = check_png_path(path)
    require_matplotlib()

    figure, (left, right) = pyplot.subplots(1, 2, figsize=(11, 4.2))
    try:
        for label, points in _series(report).items():
            batches = [p[0] for p in points]
            left.plot(batches, [p[1] for p in points], marker="o", label=label)
            right.plot(batches, [p[2] for p in points], marker="o", label=label)
        for axis, ylabel in ((left, "throughput (images/s)"), (right, "latency per batch, mean (ms)")):
            axis.set_xlabel("batch size")
            axis.set_ylabel(ylabel)
            axis.set_xscale("log", base=2)
            axis.set_xticks(report["batch_sizes"], [str(b) for b in report["batch_sizes"]])
            axis.grid(True, alpha=0.3)
            axis.legend()
        cpu = report.get("environment", {}).get("cpu", {}).get("model") or "unknown CPU"
        figure.suptitle(f"{report['model']['name']}: end-to-end (preprocessing included) on {cpu}", fontsize=10)
        figure.tight_layout()
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100)
    finally:
        pyplot.close(figure)
    try:
        write_bytes_atomic(path, buffer.getvalue())
    except OSError as exc:
        raise InputError(f"cannot write the chart to {path}: {exc.strerror or exc}") from None
    return path
