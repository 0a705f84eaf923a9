"""The TensorRT plan of a drift budget: searched on ONNX Runtime as a proxy, then built like any plan.

The plan's name carries the budget (``{model}-{precision}-budget-{recipe8}-sm{arch}.plan``). The
cache and the store are asked first; on a miss the search runs in the ``onnxruntime-proxy`` mode
(graph optimisations off, so no CPU kernel steers it) on the model's dynamic-batch form, and the
build gets its answer as data (:class:`~arcface_trt.engine.build.SearchedSource`): for int8 the QDQ
model it quantized (symmetric int8 activations, float biases, 8-bit weights: TensorRT's QDQ rules),
for fp16 the nodes to keep in fp32 in the mixed-precision ONNX, built strongly typed on TensorRT 10
and 11 alike. Drift figures are ONNX Runtime's, a proxy of the engine's; speed needs a GPU, so the
curve records the nodes per precision instead. An answer with every group in full precision builds
nothing: the fp32 plan is the answer (an int8 or fp16 label on it would be a mislabel).
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from arcface_trt.budget.evaluate import MODE_PROXY
from arcface_trt.budget.request import DriftBudgetRequest
from arcface_trt.budget.run import CropSets, match_record, propose
from arcface_trt.budget.search import Status
from arcface_trt.budget.sensitivities import cache_key
from arcface_trt.engine.build import (
    BuildRequest,
    BuildResult,
    PlanSource,
    SearchedSource,
    build_engine,
    engine_cache,
    find_engine,
)
from arcface_trt.engine.progress import OnProgress
from arcface_trt.fileio import copy_file_atomic
from arcface_trt.model.dynamic_batch import ensure_dynamic_batch
from arcface_trt.model.inspect import inspect_model
from arcface_trt.precision.int8 import CalibrationSettings


def tensorrt_calibration(settings: CalibrationSettings) -> CalibrationSettings:
    """``settings`` as TensorRT's explicit quantization needs them: int8 activations, 8-bit weights, float biases."""
    return replace(settings, activation_type="int8", reduce_range=False, quantize_bias=False)


@dataclass
class BudgetedPlan:
    """The plan of a budget (None when the search found no speedup within it, or nothing) and its search record."""

    build: BuildResult | None
    search: dict[str, Any]
    #: False when the cached (or stored) plan served: no search ran.
    searched: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record: the build (as ``build --json`` prints it) and the search."""
        return {
            **(self.build.to_dict() if self.build else {"plan_path": None, "from_cache": False}),
            "searched": self.searched,
            "drift_budget": self.search,
        }


def build_budgeted_plan(
    request: BuildRequest,
    budget: DriftBudgetRequest,
    on_status: Status | None = None,
    on_progress: OnProgress | None = None,
    fetcher: PlanSource | None = None,
) -> BudgetedPlan:
    """The cached, fetched or searched-and-built plan of ``budget`` (see the module docstring)."""
    budget = replace(budget, calibration=tensorrt_calibration(budget.calibration))
    sets = CropSets.load(budget)
    match = match_record(budget, MODE_PROXY, sets)
    request = replace(request, drift_budget=budget.budget, budget_match=match)
    found = find_engine(request, on_status, fetcher)
    if found is not None:
        return BudgetedPlan(found, found.manifest.drift_budget or {}, searched=False)
    model = inspect_model(request.onnx_path, request.inputs)
    cache = engine_cache(request.settings, request.cache_dir)
    work_dir = cache.root / "onnx"
    source = ensure_dynamic_batch(model, work_dir)
    with tempfile.TemporaryDirectory(prefix="arcface-trt-budget-") as tmp:
        proposal = propose(model, source, budget, sets, cache, Path(tmp), request.inputs, on_status)
        if proposal.model is None:
            return BudgetedPlan(None, proposal.record, searched=True)
        qdq = None
        if budget.precision == "int8":
            qdq = work_dir / f"{model.name}-int8-budget-{cache_key({**match, 'model': model.sha256})[:16]}.onnx"
            copy_file_atomic(proposal.model, qdq)
        keep = tuple(proposal.kept_fp32_nodes) if budget.precision == "fp16" else None
        searched = SearchedSource(qdq, keep, proposal.record)
        built = build_engine(replace(request, searched=searched), on_status, None, on_progress)
    return BudgetedPlan(built, proposal.record, searched=True)
