"""The drift-budget search: the fewest node groups kept in full precision so the worst-sample drift is within a budget.

1. **Step 0**: the low-precision model of the default recipe (every group in low precision). If
   its worst drift on the evaluation crops is within the budget, that is the answer: no search.
2. **Sensitivities**: each group alone in low precision, every other node in full precision, on
   :data:`SENSITIVITY_CROPS` crops spread over the evaluation set; ranked by mean drift. One group
   at a time (rather than all but one) measures each group's own error, a signal well above the
   noise, where leaving one group out of a fully quantized model changes the worst sample by a
   small difference of two large numbers. Cached (:mod:`.sensitivities`): a new budget reuses them.
3. **Every group in full precision**: the most accurate candidate. If even it is over the budget,
   the budget cannot be met: the closest result is reported and the search ends.
4. **Greedy selection**: the most sensitive groups are kept in full precision one more at a time,
   each step measured on the whole evaluation set, until the worst drift is within the budget.

Each step's drift, nodes per precision and (for CPU engines) throughput make the curve. A
deadline (``--search-timeout``) stops the search after the candidate in progress, with the best
result so far. The caller builds the artifact from the chosen model and checks it once more.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arcface_trt.budget.candidates import Candidates
from arcface_trt.budget.evaluate import Evaluator, Measurement
from arcface_trt.budget.groups import NodeGroup
from arcface_trt.budget.sensitivities import Sensitivity, SensitivityCache
from arcface_trt.records import Record

log = logging.getLogger("arcface_trt")

Status = Callable[[str], None]

#: How a search ended.
WITHIN_BUDGET = "within-budget"
NO_SPEEDUP = "no-speedup"
IMPOSSIBLE = "impossible"
TIMEOUT = "timeout"
#: Crops of the evaluation set each group's sensitivity is measured on (evenly spread over the set).
SENSITIVITY_CROPS = 16


@dataclass(frozen=True)
class Step(Record):
    """One candidate of the curve: which groups were kept in full precision and what that measured."""

    kept_groups: tuple[int, ...]
    #: Candidate nodes kept in full precision (the always-kept head not counted).
    nodes_kept: int
    #: Nodes each precision computes (candidates and the always-kept head).
    nodes_by_precision: dict[str, int]
    max_drift: float
    mean_drift: float
    #: Images/s of this candidate and of fp32, timed round-robin together (CPU engines only).
    throughput: float | None
    fp32_throughput: float | None
    within_budget: bool

    @property
    def speedup(self) -> float | None:
        """Throughput over fp32's, timed together (None when not timed)."""
        return self.throughput / self.fp32_throughput if self.throughput and self.fp32_throughput else None


@dataclass
class SearchResult(Record):
    """What a search found: the curve, the chosen step, and why it ended."""

    budget: float
    precision: str
    #: How candidates ran: ``cpu-engine`` (the engine itself) or ``onnxruntime-proxy`` (of a TensorRT engine).
    evaluation_mode: str
    status: str
    message: str
    evaluation_crops: int
    always_kept: list[str]
    groups: list[NodeGroup]
    #: Most sensitive first (empty when step 0 was within the budget).
    sensitivities: list[Sensitivity]
    sensitivities_from_cache: bool
    steps: list[Step]
    #: Index of the chosen step in ``steps`` (None when nothing is within the budget).
    chosen: int | None
    seconds: dict[str, float] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """True when the chosen step is within the budget (an all-full-precision answer included)."""
        return self.status in (WITHIN_BUDGET, NO_SPEEDUP)

    @property
    def best(self) -> Step:
        """The chosen step, else the one with the lowest worst drift (the closest result).

        After a timeout, every group in full precision is no result (it was measured to know the
        budget can be met): the closest is among the steps that still run something in low precision.
        """
        if self.chosen is not None:
            return self.steps[self.chosen]
        steps = self.steps
        if self.status == TIMEOUT:
            steps = [step for step in self.steps if len(step.kept_groups) < len(self.groups)] or self.steps
        return min(steps, key=lambda step: step.max_drift)

    def kept_nodes(self, step: Step | None = None) -> list[str]:
        """Candidate nodes ``step`` (default: :attr:`best`) keeps in full precision, in the graph's order."""
        kept = set((step or self.best).kept_groups)
        return [node for group in self.groups if group.index in kept for node in group.nodes]


class _Deadline:
    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds
        self._end = None if seconds is None else time.monotonic() + seconds

    @property
    def passed(self) -> bool:
        return self._end is not None and time.monotonic() >= self._end


def sensitivity_subset(crops: int, count: int = SENSITIVITY_CROPS) -> list[int]:
    """``count`` crop indices spread evenly over ``crops`` (all of them when there are fewer)."""
    if crops <= count:
        return list(range(crops))
    return sorted({round(i * (crops - 1) / (count - 1)) for i in range(count)})


class DriftSearch:
    """One search over ``candidates`` measured by ``evaluator``; :meth:`run` returns the :class:`SearchResult`."""

    def __init__(
        self,
        candidates: Candidates,
        evaluator: Evaluator,
        budget: float,
        sensitivity_cache: SensitivityCache,
        timeout_s: float | None = None,
        on_status: Status | None = None,
    ) -> None:
        self.candidates = candidates
        self.evaluator = evaluator
        self.budget = budget
        self.cache = sensitivity_cache
        self.deadline = _Deadline(timeout_s)
        self.status = on_status or (lambda message: log.info("%s", message))
        self.steps: list[Step] = []
        #: The model file of each step still on disk (superseded ones are removed as the search goes).
        self.files: dict[tuple[int, ...], Path] = {}
        self.seconds: dict[str, float] = {}

    @property
    def total(self) -> int:
        return len(self.candidates.groups)

    def run(self) -> SearchResult:
        """Search (see the module docstring)."""
        started = time.perf_counter()
        first = self._step(())
        if first.within_budget:
            return self._result(WITHIN_BUDGET, [], False, started)
        sensitivities, cached = self._sensitivities()
        if sensitivities is None:
            return self._result(TIMEOUT, [], False, started)
        ranking = sorted(sensitivities, key=lambda s: (-s.mean_drift, s.group))
        selection = time.perf_counter()
        everything = tuple(range(self.total))
        if self.deadline.passed:  # cached sensitivities take no time: the deadline may have passed at step 0
            return self._finish(TIMEOUT, ranking, cached, started, selection)
        if self.total and not self._step_within(everything):
            return self._finish(IMPOSSIBLE, ranking, cached, started, selection)
        for count in range(1, self.total):
            if self.deadline.passed:
                return self._finish(TIMEOUT, ranking, cached, started, selection)
            if self._step_within(tuple(sorted(s.group for s in ranking[:count]))):
                return self._finish(WITHIN_BUDGET, ranking, cached, started, selection)
        return self._finish(NO_SPEEDUP if self.total else IMPOSSIBLE, ranking, cached, started, selection)

    def chosen_file(self, result: SearchResult) -> Path:
        """The model file of the chosen step (kept on disk until the caller's work folder goes)."""
        return self.files[result.best.kept_groups]

    def _finish(
        self, status: str, ranking: list[Sensitivity], cached: bool, started: float, selection: float
    ) -> SearchResult:
        self.seconds["selection"] = round(time.perf_counter() - selection, 3)
        return self._result(status, ranking, cached, started)

    def _step_within(self, kept: tuple[int, ...]) -> bool:
        return self._step(kept).within_budget

    def _step(self, kept: tuple[int, ...]) -> Step:
        """Make and measure the model with ``kept`` groups in full precision; the file of an over-budget step goes."""
        path = self.candidates.with_kept(f"step-{len(self.steps)}", kept)
        measured = self.evaluator.measure(path)
        step = Step(
            kept_groups=kept,
            nodes_kept=len(self.candidates.kept_nodes(kept)),
            nodes_by_precision=self.candidates.nodes_by_precision(kept),
            max_drift=measured.max_drift,
            mean_drift=measured.mean_drift,
            throughput=measured.throughput,
            fp32_throughput=measured.fp32_throughput,
            within_budget=measured.max_drift <= self.budget,
        )
        self.steps.append(step)
        self.files[kept] = path
        best = min(s.max_drift for s in self.steps)
        speed = "" if step.speedup is None else f", {step.throughput:.1f} img/s ({step.speedup:.2f}x fp32)"
        self.status(
            f"step {len(self.steps) - 1}: {len(kept)} of {self.total} groups kept in full precision "
            f"({step.nodes_kept} nodes): worst drift {step.max_drift:.2e}{speed} "
            f"(budget {self.budget:g}; best so far {best:.2e})"
        )
        if not step.within_budget and kept != tuple(range(self.total)):
            path.unlink(missing_ok=True)
            del self.files[kept]
        return step

    def _sensitivities(self) -> tuple[list[Sensitivity] | None, bool]:
        """Each group's sensitivity, from the cache or measured (None when the deadline passed first)."""
        cached = self.cache.load(self.total)
        if cached is not None:
            self.status(f"sensitivities of {self.total} groups: reused from {self.cache.path}")
            return cached, True
        started = time.perf_counter()
        subset = sensitivity_subset(len(self.evaluator.reference))
        found: list[Sensitivity] = []
        for group in self.candidates.groups:
            if self.deadline.passed:
                return None, False
            path = self.candidates.with_only("sensitivity", group.index)
            measured: Measurement = self.evaluator.measure(path, subset)
            path.unlink(missing_ok=True)
            found.append(
                Sensitivity(group.index, group.label, len(group.nodes), measured.mean_drift, measured.max_drift)
            )
            top = max(found, key=lambda s: s.mean_drift)
            self.status(
                f"sensitivity {len(found)}/{self.total} ({group.label}, {len(group.nodes)} nodes): mean drift "
                f"{measured.mean_drift:.2e}; most sensitive so far: {top.label} ({top.mean_drift:.2e})"
            )
        self.seconds["sensitivities"] = round(time.perf_counter() - started, 3)
        self.cache.store(found)
        return found, False

    def _result(self, status: str, ranking: list[Sensitivity], cached: bool, started: float) -> SearchResult:
        self.seconds["total"] = round(time.perf_counter() - started, 3)
        chosen = None
        if status in (WITHIN_BUDGET, NO_SPEEDUP):
            chosen = next(i for i in range(len(self.steps) - 1, -1, -1) if self.steps[i].within_budget)
            if status == WITHIN_BUDGET and self.steps[chosen].kept_groups == tuple(range(self.total)) and self.total:
                status = NO_SPEEDUP
        result = SearchResult(
            budget=self.budget,
            precision=self.candidates.precision,
            evaluation_mode=self.evaluator.mode,
            status=status,
            message="",
            evaluation_crops=len(self.evaluator.reference),
            always_kept=list(self.candidates.always_kept),
            groups=list(self.candidates.groups),
            sensitivities=ranking,
            sensitivities_from_cache=cached,
            steps=list(self.steps),
            chosen=chosen,
            seconds=dict(self.seconds),
        )
        result.message = describe(result, self.deadline.seconds)
        return result


def describe(result: SearchResult, timeout_s: float | None = None) -> str:
    """One line: what the search found, or why it found nothing within the budget."""
    best, budget, total = result.best, result.budget, len(result.groups)
    kept = f"{len(best.kept_groups)} of {total} groups ({best.nodes_kept} nodes) kept in full precision"
    if result.status == WITHIN_BUDGET:
        return f"worst drift {best.max_drift:.2e} <= budget {budget:g} with {kept}"
    if result.status == NO_SPEEDUP:
        return (
            f"no speedup available within {budget:g}: only every group in full precision keeps the worst drift "
            f"within it ({best.max_drift:.2e})"
        )
    if result.status == IMPOSSIBLE:
        return (
            f"drift budget {budget:g} cannot be met: the closest result, {kept}, has worst drift {best.max_drift:.2e}"
        )
    limit = f"--search-timeout {timeout_s:g} s" if timeout_s is not None else "the search timeout"
    only_full = any(step.within_budget for step in result.steps)
    return (
        f"{limit} reached after {len(result.steps)} step(s): best so far {kept}, worst drift "
        f"{best.max_drift:.2e}, over the budget {budget:g}"
        + ("; only every group in full precision was within it (no speedup)" if only_full else "")
    )


def curve(result: SearchResult) -> list[dict[str, Any]]:
    """The curve as rows (drift vs nodes kept vs speed), in the order the steps were measured."""
    return [
        {
            "step": index,
            "groups_kept": len(step.kept_groups),
            "nodes_kept": step.nodes_kept,
            "nodes_by_precision": step.nodes_by_precision,
            "max_drift": step.max_drift,
            "mean_drift": step.mean_drift,
            "throughput": step.throughput,
            "fp32_throughput": step.fp32_throughput,
            "speedup": step.speedup,
            "within_budget": step.within_budget,
            "chosen": index == result.chosen,
        }
        for index, step in enumerate(result.steps)
    ]
