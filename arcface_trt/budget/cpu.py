"""The CPU engine of a drift budget: ``cpu/{model}-{precision}-budget-{recipe8}-cpu.onnx``, searched on a miss.

The cache is looked up first (same model, precision, budget, input spec, calibration and
evaluation crops): a hit serves the engine with its recorded search and runs nothing. On a miss
the search runs in the ``cpu-engine`` mode (the candidates run as the engine will), the chosen
model is optimised into the engine, the engine is measured once more on every evaluation crop
(the final check), and engine and manifest are stored. A search that finds nothing within the
budget stores nothing.
"""

from __future__ import annotations

import dataclasses
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from arcface_trt.budget.evaluate import MODE_ENGINE
from arcface_trt.budget.request import DriftBudgetRequest
from arcface_trt.budget.run import CropSets, final_check, manifest_record, match_record, run_search
from arcface_trt.budget.search import Status
from arcface_trt.errors import CheckFailedError
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.precision.cpu_engine import CpuEngine, engine_bytes, resolve_cpu_engine


@dataclass
class BudgetedCpuEngine:
    """The engine of a budget (None when the search found nothing within it) and its search record."""

    engine: CpuEngine | None
    #: The manifest's ``drift_budget`` record (read back from the manifest on a cache hit).
    search: dict[str, Any]
    #: False when the cached engine served (no search ran).
    searched: bool

    @property
    def passed(self) -> bool:
        """True when an engine within the budget exists."""
        return self.engine is not None

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record: the engine (as ``build --target cpu --json`` prints it) and the search."""
        return {
            **(self.engine.to_dict() if self.engine else {"path": None, "built": False}),
            "searched": self.searched,
            "drift_budget": self.search,
        }


def build_budgeted_cpu_engine(
    onnx_path: str | Path,
    request: DriftBudgetRequest,
    *,
    keep_fp32_nodes: Sequence[str] | None = None,
    cache_dir: str | Path | None = None,
    force: bool = False,
    inputs: InputSettings | None = None,
    on_status: Status | None = None,
) -> BudgetedCpuEngine:
    """The cached CPU engine of ``request``, else the search's engine (see the module docstring).

    ``keep_fp32_nodes`` (the config's) may not be given with an fp16 budget: the search chooses them.
    """
    sets = CropSets.load(request)
    resolved = resolve_cpu_engine(
        onnx_path,
        request.precision,
        calibration=sets.calibration_settings,
        keep_fp32_nodes=keep_fp32_nodes,
        cache_dir=cache_dir,
        inputs=inputs,
        drift_budget=request.budget,
    )
    match = match_record(request, MODE_ENGINE, sets)
    resolved = dataclasses.replace(resolved, required={**resolved.required, "drift_budget": match})
    source = Path(onnx_path)

    def search_and_store(reasons: list[str]) -> BudgetedCpuEngine:
        started = time.perf_counter()
        with tempfile.TemporaryDirectory(prefix="arcface-trt-budget-") as tmp:
            work = Path(tmp)
            outcome = run_search(
                resolved.info, source, request, MODE_ENGINE, sets, resolved.cache, work, inputs, on_status
            )
            result = outcome.result
            kept = [*result.always_kept, *result.kept_nodes()]
            if outcome.chosen is None:
                return BudgetedCpuEngine(None, manifest_record(match, outcome, None, kept), searched=True)
            data = engine_bytes(outcome.chosen, work / "engine.onnx", source)
            final = final_check(outcome, work / "engine.onnx")
            record = manifest_record(match, outcome, final, kept)
            if final.max_drift > request.budget:
                raise CheckFailedError(
                    f"final check: the {request.precision} CPU engine made from the chosen candidate has worst drift "
                    f"{final.max_drift:.2e} on the evaluation crops, over the budget {request.budget:g}; nothing stored"
                )
            fp16 = request.precision == "fp16"
            engine = resolved.store(
                data,
                time.perf_counter() - started,
                reasons,
                plan=resolved.plan.with_kept_nodes(kept) if fp16 else None,
                drift_budget=record,
                keep_fp32_nodes=kept if fp16 else None,
            )
        return BudgetedCpuEngine(engine, record, searched=True)

    found = resolved.obtain(search_and_store, force)
    if isinstance(found, CpuEngine):
        return BudgetedCpuEngine(found, found.manifest.drift_budget or {}, searched=False)
    return found
