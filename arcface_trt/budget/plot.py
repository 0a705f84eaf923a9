"""The curve of a drift-budget search as a PNG: worst drift, and speed (CPU engines), against nodes kept."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from arcface_trt.charts import png_figure


def plot_curve(record: dict[str, Any], path: str | Path) -> Path:
    """Draw a search record's curve (its ``drift_budget`` record) into the PNG ``path`` (atomic write).

    Left: worst-sample drift against the nodes kept in full precision (log scale), the budget as a
    line, the chosen step marked. Right: throughput relative to fp32 for a CPU engine; for a
    TensorRT proxy, the nodes each precision computes (timing needs a GPU).
    """
    rows = sorted(record["curve"], key=lambda row: row["nodes_kept"])
    kept = [row["nodes_kept"] for row in rows]
    timed = any(row["speedup"] is not None for row in rows)
    with png_figure(path, columns=2, size=(11.0, 4.5)) as (figure, (drift_axis, speed_axis)):
        drift_axis.plot(kept, [max(row["max_drift"], 1e-9) for row in rows], "o-", label="worst sample")
        drift_axis.plot(kept, [max(row["mean_drift"], 1e-9) for row in rows], "s--", alpha=0.6, label="mean")
        drift_axis.axhline(record["budget"], color="red", linestyle=":", label=f"budget {record['budget']:g}")
        drift_axis.set_yscale("log")
        drift_axis.set_xlabel("nodes kept in full precision")
        drift_axis.set_ylabel("drift (1 - cosine to fp32)")
        chosen = [row for row in rows if row["chosen"]]
        if chosen:
            drift_axis.plot(
                [chosen[0]["nodes_kept"]], [max(chosen[0]["max_drift"], 1e-9)], "*", markersize=16, label="chosen"
            )
        drift_axis.grid(True, which="both", alpha=0.3)
        drift_axis.legend(loc="upper right", fontsize=8)
        if timed:
            speed_axis.plot(kept, [row["speedup"] for row in rows], "o-")
            speed_axis.axhline(1.0, color="gray", linestyle=":")
            speed_axis.set_ylabel("throughput / fp32 (during evaluation)")
        else:
            precisions = sorted({name for row in rows for name in row["nodes_by_precision"]})
            for name in precisions:
                speed_axis.plot(kept, [row["nodes_by_precision"].get(name, 0) for row in rows], "o-", label=name)
            speed_axis.set_ylabel("nodes per precision (speed needs a GPU)")
            speed_axis.legend(fontsize=8)
        speed_axis.set_xlabel("nodes kept in full precision")
        speed_axis.grid(True, alpha=0.3)
        figure.suptitle(
            f"drift-budget search ({record['evaluation_mode']}): {record['status']}, "
            f"{len(record['kept_fp32_nodes'])} nodes kept in full precision",
            fontsize=10,
        )
    return Path(path)
