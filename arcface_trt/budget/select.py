"""Selecting a budget's engine for ``compare`` and ``benchmark``: from the cache, else built by a search.

An engine made for the budget serves whatever crops it was searched on (``build --drift-budget ...
--eval-images`` made it on purpose); only when none is cached (or in the store, for TensorRT) does a
search run, on the default crop sets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from arcface_trt.backends.spec import BackendSpec
from arcface_trt.budget.cpu import build_budgeted_cpu_engine
from arcface_trt.budget.request import DriftBudgetRequest
from arcface_trt.budget.search import Status
from arcface_trt.budget.tensorrt import build_budgeted_plan
from arcface_trt.engine.build import BuildRequest, find_engine
from arcface_trt.errors import InputError
from arcface_trt.precision.cpu_engine import resolve_cpu_engine


@dataclass(frozen=True)
class BudgetSelection:
    """The search record of the selected engine, and whether a search ran for it now."""

    record: dict[str, Any]
    searched: bool
    #: False when a search ran and found no engine within the budget.
    found: bool


def ensure_budgeted_engine(spec: BackendSpec, on_status: Status | None = None) -> BudgetSelection:
    """Make sure the engine ``spec`` names (``spec.drift_budget`` set) is in the cache: find it, else search for it."""
    if spec.drift_budget is None:
        raise InputError("no drift budget to select an engine for")
    model = spec.model_file()
    cache_dir = spec.tensorrt.tensorrt.cache_dir
    if spec.backend == "onnxruntime":
        precision = spec.precision or ""
        resolved = resolve_cpu_engine(
            model, precision, cache_dir=cache_dir, inputs=spec.inputs, drift_budget=spec.drift_budget
        )
        lookup = resolved.lookup()
        if lookup.hit:
            return BudgetSelection(lookup.manifest.drift_budget or {}, searched=False, found=True)
        engine = build_budgeted_cpu_engine(
            model,
            DriftBudgetRequest(spec.drift_budget, precision),
            keep_fp32_nodes=spec.keep_fp32_nodes,
            cache_dir=cache_dir,
            inputs=spec.inputs,
            on_status=on_status,
        )
        return BudgetSelection(engine.search, engine.searched, engine.passed)
    if spec.backend != "tensorrt":
        raise InputError(f"a drift budget selects an onnxruntime CPU engine or a TensorRT plan, not {spec.backend}")
    settings = spec.tensorrt.tensorrt
    request = BuildRequest(onnx_path=model, settings=settings, keep_fp32_nodes=spec.keep_fp32_nodes, inputs=spec.inputs)
    found = find_engine(replace(request, drift_budget=spec.drift_budget), on_status)
    if found is not None:
        return BudgetSelection(found.manifest.drift_budget or {}, searched=False, found=True)
    plan = build_budgeted_plan(request, DriftBudgetRequest(spec.drift_budget, settings.precision), on_status)
    return BudgetSelection(plan.search, plan.searched, plan.build is not None)
