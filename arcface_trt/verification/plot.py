"""Both backends' ROC curves on one chart, FAR on a log axis, as a PNG."""

from __future__ import annotations

from pathlib import Path

from arcface_trt.charts import png_figure
from arcface_trt.verification.job import VerificationResult


def _label(side: str, backend: dict[str, object], auc: float) -> str:
    return f"{side}: {backend['backend']} {backend['precision']} (AUC {auc:.5f})"


def plot_roc(result: VerificationResult, path: str | Path) -> Path:
    """Draw A's and B's ROC (TAR against FAR) into the PNG ``path`` (atomic write)."""
    verification = result.verification
    with png_figure(path, size=(6.4, 4.8)) as (figure, axis):
        for side, backend, metrics, style in (
            ("A", result.backend_a, verification.a, "-"),
            ("B", result.backend_b, verification.b, "--"),
        ):
            axis.step(
                metrics.roc["far"], metrics.roc["tar"], style, where="post", label=_label(side, backend, metrics.auc)
            )
        axis.set_xscale("log")
        axis.set_xlabel("false accept rate (different-person pairs accepted)")
        axis.set_ylabel("true accept rate (same-person pairs accepted)")
        axis.grid(True, which="both", alpha=0.3)
        axis.legend(loc="lower right")
        source = Path(result.pair_set["source"]).name
        figure.suptitle(
            f"ROC on {source}: {verification.a.same_pairs} same / {verification.a.different_pairs} different pairs",
            fontsize=10,
        )
    return Path(path)
