"""Throughput and latency against batch size, one line per backend, as a PNG.

matplotlib is optional (``pip install 'arcface-trt[plot]'``); :mod:`arcface_trt.charts` loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arcface_trt.bench.report import backend_label
from arcface_trt.charts import png_figure


def _series(report: dict[str, Any]) -> dict[str, list[tuple[int, float, float]]]:
    """backend (precision) -> [(batch, end-to-end img/s, mean latency ms)] sorted by batch."""
    out: dict[str, list[tuple[int, float, float]]] = {}
    for row in report["results"]:
        label = backend_label(row)
        mode = row["modes"]["end_to_end"]
        out.setdefault(label, []).append((row["batch_size"], mode["throughput_fps"], mode["latency_ms"]["mean"]))
    return {label: sorted(points) for label, points in out.items()}


def plot_report(report: dict[str, Any], path: str | Path) -> Path:
    """Draw the report's throughput and latency against batch size into the PNG ``path`` (atomic write)."""
    with png_figure(path, columns=2, size=(11, 4.2)) as (figure, (left, right)):
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
    return Path(path)
