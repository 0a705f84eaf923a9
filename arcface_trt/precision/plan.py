"""The precision plan: the ONE place that decides how a precision is made, per target.

For a precision (fp32 | fp16 | int8), a target (``gpu``: a TensorRT plan, ``cpu``: an ONNX
Runtime CPU engine) and, on the GPU, what the installed TensorRT offers
(:class:`~arcface_trt.engine.trt_api.Capabilities`), :meth:`PrecisionPlan.for_target`
answers which transform runs on the ONNX, which builder flags are set or cleared,
whether the network is strongly typed, which nodes stay in fp32, and what manifests,
dry runs and reports print. The builder, the dry run, the CPU engines and the
backends ask it; none of them decides again.

The policy today:

- fp32: the ONNX as it is; on TensorRT, TF32 is cleared so that fp32 means fp32.
- fp16 on TensorRT with ``BuilderFlag.FP16`` (10.x): the flag on the fp32 network, unless
  ``precision.keep_fp32_nodes`` is set: nodes can only be kept in fp32 in a mixed-precision
  ONNX, and under the flag the builder may keep fp32 tactics anyway (the precision check's
  advice when a flag-built engine is not fp16 enough), so an explicit list takes the path below.
- fp16 without it (11.x: strongly typed networks only) and fp16 CPU engines: the ONNX is
  converted to mixed precision (fp32 inputs/outputs; the embedding head, or the
  configured nodes, kept in fp32); on TensorRT the network is STRONGLY_TYPED.
- int8 on TensorRT: only a QDQ (explicitly quantized) ONNX, built strongly typed with no
  precision flags, as NVIDIA recommends for explicit quantization.
- int8 CPU engines: the ONNX is quantized (QDQ) by static calibration on face crops.
- an already quantized (QDQ) model is its own int8 engine, on both targets; fp32 and fp16 of it
  are refused (its Q/DQ nodes compute in int8 whatever the label says).
- a drift budget (fp16 and int8): a search (:mod:`arcface_trt.budget`) chooses which nodes stay in
  full precision. fp16 then always comes from the mixed-precision ONNX, built strongly typed on
  TensorRT 10 and 11 alike (one path); int8 on TensorRT builds the QDQ model the search quantized.
  The budget names the engine (``budget`` variant); the nodes it found are a result, recorded in the
  manifest, not part of the name.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from arcface_trt.engine.trt_api import KNOWN_SHAPES, Capabilities
from arcface_trt.errors import InputError
from arcface_trt.names import check_precision, check_target

#: How each precision reaches the engine (``precision_path`` in manifests and dry runs).
PATH_FP32 = "fp32-onnx"
PATH_FP16_FLAG = "fp16-builder-flag"
PATH_FP16_ONNX = "fp16-mixed-precision-onnx"
PATH_INT8_QDQ = "int8-qdq-onnx"

#: Transforms of the ONNX before an engine is made from it.
TRANSFORM_NONE = "none"
#: Convert to mixed precision (fp32 I/O, kept nodes in fp32).
TRANSFORM_FP16 = "fp16-mixed-precision"
#: Quantize to QDQ by static calibration on face crops.
TRANSFORM_QUANTIZE = "int8-quantize"
#: No transform: the ONNX must already be QDQ (symmetric INT8).
TRANSFORM_REQUIRE_QDQ = "int8-require-qdq"


@dataclass(frozen=True)
class PrecisionPlan:
    """How one precision is made for one target; see the module docstring for the policy."""

    precision: str
    target: str
    #: ``precision_path``: how the precision gets into the engine.
    path: str
    #: One of the ``TRANSFORM_*`` values.
    transform: str
    #: ``trt.BuilderFlag`` member names to set / clear (TensorRT only).
    set_flags: tuple[str, ...] = ()
    clear_flags: tuple[str, ...] = ()
    #: The network is created STRONGLY_TYPED (its precision comes from the graph's types).
    strongly_typed: bool = False
    #: fp16 transform: node names kept in fp32; None keeps the embedding head.
    keep_fp32_nodes: tuple[str, ...] | None = None
    #: Things the user asked for that this plan does not use, and why.
    notes: tuple[str, ...] = ()
    #: Largest worst-sample drift (1 - cosine to fp32) a search keeps the engine within; None: no search.
    drift_budget: float | None = None

    @classmethod
    def for_target(
        cls,
        precision: str,
        target: str,
        capabilities: Capabilities | None = None,
        keep_fp32_nodes: Sequence[str] | None = None,
        quantized_source: str | None = None,
        drift_budget: float | None = None,
    ) -> PrecisionPlan:
        """The plan for ``precision`` on ``target``; a TensorRT fp16 plan needs the module's ``capabilities``.

        ``quantized_source``: the model's path when it is already quantized (QDQ), else None.
        ``drift_budget``: the nodes kept in full precision are searched for (fp16 and int8 only).
        """
        check_precision(precision)
        check_target(target)
        keep = None if keep_fp32_nodes is None else tuple(keep_fp32_nodes)
        gpu = target == "gpu"
        if drift_budget is not None:
            drift_budget = check_drift_budget(drift_budget)
            _check_budget(precision, keep, quantized_source)
        if quantized_source is not None:
            return cls._of_quantized(precision, target, quantized_source)
        if precision == "fp32":
            # TF32 is on by default on Ampere and newer: clear it so that fp32 means fp32.
            return cls("fp32", target, PATH_FP32, TRANSFORM_NONE, clear_flags=("TF32",) if gpu else ())
        if precision == "int8":
            if gpu:
                notes = ("drift budget: TensorRT builds the QDQ model the search quantized",) if drift_budget else ()
                return cls(
                    "int8",
                    target,
                    PATH_INT8_QDQ,
                    TRANSFORM_REQUIRE_QDQ,
                    strongly_typed=True,
                    notes=notes,
                    drift_budget=drift_budget,
                )
            return cls("int8", target, PATH_INT8_QDQ, TRANSFORM_QUANTIZE, drift_budget=drift_budget)
        if gpu and capabilities is None:
            raise InputError("the fp16 plan of a TensorRT engine depends on the installed TensorRT's capabilities")
        notes: tuple[str, ...] = ()
        if gpu and capabilities is not None and capabilities.fp16_flag:
            if keep is None and drift_budget is None:
                return cls("fp16", target, PATH_FP16_FLAG, TRANSFORM_NONE, set_flags=("FP16",))
            why = "precision.keep_fp32_nodes is set" if drift_budget is None else "a drift budget searches the nodes"
            notes = (
                f"{why}: fp16 comes from a mixed-precision ONNX built strongly typed, not from the FP16 builder flag",
            )
        return cls(
            "fp16",
            target,
            PATH_FP16_ONNX,
            TRANSFORM_FP16,
            strongly_typed=gpu,
            keep_fp32_nodes=keep,
            notes=notes,
            drift_budget=drift_budget,
        )

    def with_kept_nodes(self, nodes: Sequence[str]) -> PrecisionPlan:
        """This fp16 plan keeping ``nodes`` in fp32: what a drift-budget search found (its name stays the budget's)."""
        if self.transform != TRANSFORM_FP16:
            raise InputError(f"only the fp16 transform keeps nodes in fp32, not '{self.transform}'")
        return replace(self, keep_fp32_nodes=tuple(nodes))

    @classmethod
    def _of_quantized(cls, precision: str, target: str, source: str) -> PrecisionPlan:
        """An already quantized model: its own int8 engine; any other precision of it is an error."""
        if precision != "int8":
            raise InputError(
                f"{source} is already quantized (QDQ: QuantizeLinear/DequantizeLinear nodes), so no {precision} "
                f"engine can be made from it: ask for int8 (it is used as the int8 engine as it is), "
                f"or give the fp32 model for {precision}"
            )
        note = "the model is already quantized (QDQ): used as the int8 engine as it is"
        return cls("int8", target, PATH_INT8_QDQ, TRANSFORM_REQUIRE_QDQ, strongly_typed=target == "gpu", notes=(note,))

    @property
    def recipe(self) -> dict[str, Any]:
        """The plan's part of an engine's build recipe: what makes its engine differ from the default one.

        Its option names become the engine name's variant tags (see :class:`~arcface_trt.artifacts.key.Variant`).
        A drift budget names the engine by the budget: the nodes it keeps are the search's result.
        """
        if self.drift_budget is not None:
            return {"budget": self.drift_budget}
        if self.transform == TRANSFORM_FP16 and self.keep_fp32_nodes is not None:
            return {"keep": list(self.keep_fp32_nodes)}
        return {}

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record (manifests, dry runs)."""
        return {
            "precision": self.precision,
            "target": self.target,
            "precision_path": self.path,
            "transform": self.transform,
            "set_flags": list(self.set_flags),
            "clear_flags": list(self.clear_flags),
            "strongly_typed": self.strongly_typed,
            "keep_fp32_nodes": self._kept_description(),
            "notes": list(self.notes),
            "drift_budget": self.drift_budget,
        }

    def _kept_description(self) -> list[str] | str | None:
        if self.transform != TRANSFORM_FP16:
            return None
        if self.keep_fp32_nodes is None:
            return "embedding head" + ("" if self.drift_budget is None else " + what the drift-budget search keeps")
        return list(self.keep_fp32_nodes)


def check_drift_budget(budget: float) -> float:
    """``budget`` when it is a drift a search can aim at: a number in (0, 2) (1 - cosine lies in [0, 2])."""
    if not isinstance(budget, int | float) or not math.isfinite(budget) or not 0.0 < budget < 2.0:
        raise InputError(f"--drift-budget must be a number in (0, 2) (1 - cosine of the worst sample), got {budget}")
    return float(budget)


def _check_budget(precision: str, keep: tuple[str, ...] | None, quantized_source: str | None) -> None:
    """A drift budget searches the nodes kept in full precision of an fp16 or int8 engine made here."""
    if precision == "fp32":
        raise InputError("--drift-budget applies to fp16 and int8 (fp32 has no drift to budget)")
    if quantized_source is not None:
        raise InputError(
            f"{quantized_source} is already quantized (QDQ): a drift budget searches how to quantize an fp32 model; "
            "give the fp32 model"
        )
    if precision == "fp16" and keep is not None:
        raise InputError(
            "precision.keep_fp32_nodes and --drift-budget both choose the nodes kept in fp32: remove one of them"
        )


def plans_for_known_tensorrt(
    precision: str,
    keep_fp32_nodes: Sequence[str] | None = None,
    quantized_source: str | None = None,
    drift_budget: float | None = None,
) -> dict[str, PrecisionPlan]:
    """The TensorRT plan of ``precision`` for each known API shape (``10.x``, ``11.x``), for dry runs without one."""
    return {
        shape: PrecisionPlan.for_target(precision, "gpu", caps, keep_fp32_nodes, quantized_source, drift_budget)
        for shape, caps in KNOWN_SHAPES.items()
    }


def describe_known_paths(plans: dict[str, PrecisionPlan]) -> str:
    """``fp32-onnx`` when every shape agrees, else ``fp16-builder-flag on TensorRT 10.x; ... on 11.x``."""
    paths = {plan.path for plan in plans.values()}
    if len(paths) == 1:
        return paths.pop()
    return "; ".join(f"{plan.path} on TensorRT {shape}" for shape, plan in plans.items())
