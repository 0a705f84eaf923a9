"""Does an engine carry the precision it is labelled with? The layer summary and the mislabel gate.

:func:`summarize` counts an engine's layers per precision (from :mod:`.inspection`), the
convolution/matrix layers among them, and which of those run in the requested precision,
leaving out the layers of nodes kept in fp32 on purpose (the precision plan's list).
:func:`judge` applies the gate:

- fp16: at least ``min_fp16_share`` (``tensorrt.min_fp16_share``, default 0.8; 0 turns the check
  off) of the counted convolution/matrix layers run in fp16;
- int8: at least one convolution/matrix layer runs in int8 (the Q/DQ nodes quantized something);
- fp32: no counted convolution/matrix layer runs in a lower precision.

An engine whose layers show no precision (built without detailed profiling verbosity, or
formats hidden) cannot prove its label and fails. :func:`failure_message` says why in one line.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field

from arcface_trt.engine.inspection import EngineLayers
from arcface_trt.precision.plan import PATH_FP16_FLAG, TRANSFORM_FP16, PrecisionPlan
from arcface_trt.records import Record

#: Precisions below fp32 (a layer in one of them makes an "fp32" engine a mislabelled one).
_REDUCED = ("fp16", "bf16", "int8", "fp8", "int4", "fp4")
#: How many layer names a one-line message lists.
_NAMES_SHOWN = 5


@dataclass(frozen=True)
class PrecisionSummary(Record):
    """What precision an engine's layers really have (recorded in the manifest)."""

    requested: str
    #: The inspector gave per-layer records (not only names).
    detailed: bool
    layers: int
    #: Every layer per precision (``unknown``: the engine did not show it).
    by_precision: dict[str, int]
    #: Convolution / matrix-multiplication layers, and theirs per precision.
    compute_layers: int
    compute_by_precision: dict[str, int]
    #: Node names kept in fp32 on purpose, and the compute layers left out of the share for them.
    kept_fp32_nodes: list[str]
    kept_layers: list[str]
    #: Compute layers counted, and how many of them run in the requested precision.
    counted: int
    in_requested: int
    #: ``in_requested / counted`` (None when nothing is counted).
    share: float | None
    #: Layers computing in fp32 (reformats and copies left out), by name.
    fp32_layers: list[str] = field(default_factory=list)


def _count(precisions: list[str | None]) -> dict[str, int]:
    return dict(sorted(Counter(p or "unknown" for p in precisions).items()))


def summarize(engine: EngineLayers, requested: str, kept_fp32_nodes: Sequence[str] = ()) -> PrecisionSummary:
    """Summarise ``engine``'s layers for an engine labelled ``requested``."""
    kept = set(kept_fp32_nodes)
    compute = [layer for layer in engine.layers if layer.is_compute]
    kept_layers = [layer for layer in compute if kept.intersection(layer.nodes)]
    counted = [layer for layer in compute if layer not in kept_layers]
    if requested == "fp32":
        matching = [layer for layer in counted if layer.precision is not None and layer.precision not in _REDUCED]
    else:
        matching = [layer for layer in counted if layer.precision == requested]
    return PrecisionSummary(
        requested=requested,
        detailed=engine.detailed,
        layers=len(engine.layers),
        by_precision=_count([layer.precision for layer in engine.layers]),
        compute_layers=len(compute),
        compute_by_precision=_count([layer.precision for layer in compute]),
        kept_fp32_nodes=sorted(kept),
        kept_layers=[layer.name for layer in kept_layers],
        counted=len(counted),
        in_requested=len(matching),
        share=round(len(matching) / len(counted), 4) if counted else None,
        fp32_layers=[layer.name for layer in engine.layers if layer.precision == "fp32" and not layer.moves_data],
    )


@dataclass(frozen=True)
class PrecisionVerdict(Record):
    """The gate's answer for one engine (recorded in the manifest)."""

    passed: bool
    #: ``min_fp16_share`` for fp16 engines, None otherwise.
    threshold: float | None
    reason: str


def rule(requested: str, min_fp16_share: float) -> str:
    """The gate an engine labelled ``requested`` must pass, in words (dry runs print it)."""
    if requested == "fp16":
        if min_fp16_share <= 0:
            return "off (tensorrt.min_fp16_share is 0)"
        return (
            f"at least {min_fp16_share:.0%} of the convolution/matrix layers run in fp16 (kept fp32 nodes not counted)"
        )
    if requested == "int8":
        return "at least one convolution/matrix layer runs in int8"
    return "no convolution/matrix layer runs below fp32"


def judge(summary: PrecisionSummary, min_fp16_share: float) -> PrecisionVerdict:
    """Apply the gate of the module docstring to ``summary``."""
    requested = summary.requested
    threshold = min_fp16_share if requested == "fp16" else None
    if requested == "fp16" and min_fp16_share <= 0:
        return PrecisionVerdict(True, threshold, "check off (tensorrt.min_fp16_share is 0)")
    if not summary.detailed:
        return PrecisionVerdict(False, threshold, "the engine's layer information holds names only, no precisions")
    if summary.compute_layers and not summary.counted:
        return PrecisionVerdict(False, threshold, "every convolution/matrix layer is kept in fp32")
    if not summary.counted:
        return PrecisionVerdict(False, threshold, "the engine has no convolution/matrix layer")
    done = f"{summary.in_requested} of {summary.counted} convolution/matrix layers run in {requested}"
    if requested == "int8":
        return PrecisionVerdict(summary.in_requested > 0, threshold, done)
    if requested == "fp32":
        return PrecisionVerdict(summary.in_requested == summary.counted, threshold, done)
    share = summary.share or 0.0
    passed = share >= min_fp16_share
    return PrecisionVerdict(passed, threshold, f"{done} ({share:.0%}; at least {min_fp16_share:.0%} required)")


def _names(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_NAMES_SHOWN])
    return shown + (f" and {len(names) - _NAMES_SHOWN} more" if len(names) > _NAMES_SHOWN else "")


def failure_message(summary: PrecisionSummary, verdict: PrecisionVerdict, advice: str) -> str:
    """One line (no final full stop): what the engine is, against its label, and ``advice`` (what to change)."""
    requested = summary.requested
    found = ", ".join(f"{count} {precision}" for precision, count in summary.compute_by_precision.items())
    line = f"the engine labelled {requested} is not {requested}: {verdict.reason}"
    if found:
        line += f" (convolution/matrix layers: {found})"
    off_label = [name for name in summary.fp32_layers if name not in summary.kept_layers]
    if requested != "fp32" and off_label:
        line += f"; in fp32: {_names(off_label)}"
    return f"{line}. {advice}" if advice else line


def advice(plan: PrecisionPlan, summary: PrecisionSummary, head_nodes: Sequence[str]) -> str:
    """What to change so that a build of ``plan`` carries its precision (``head_nodes``: the model's embedding head)."""
    if not summary.detailed:
        return (
            "TensorRT described the layers by name only (the build sets ProfilingVerbosity.DETAILED: "
            "is this TensorRT version's engine inspector different?)"
        )
    if plan.precision == "int8":
        return (
            "TensorRT runs a convolution in int8 only when both its input and its weights come through "
            "QuantizeLinear/DequantizeLinear: make the model with 'arcface-trt quantize'"
        )
    if plan.precision != "fp16":
        return ""
    if plan.path == PATH_FP16_FLAG:
        head = ", ".join(head_nodes) or "the nodes to keep"
        return (
            "Under TensorRT 10's FP16 builder flag the builder may keep fp32 tactics where it finds them faster; "
            "build from a mixed-precision ONNX instead, where the graph fixes each layer's type: set "
            f"precision.keep_fp32_nodes in embedding.yaml (e.g. [{head}], the embedding head), which selects "
            "the strongly typed fp16-mixed-precision-onnx path on TensorRT 10 too, or lower tensorrt.min_fp16_share"
        )
    if plan.transform == TRANSFORM_FP16:
        return (
            "The network is strongly typed, so each layer runs in the type its ONNX input has: the ONNX given to "
            "TensorRT was not converted to fp16 where it counts (check precision.keep_fp32_nodes)"
        )
    return ""
