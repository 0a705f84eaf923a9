"""The search's logic on stand-in candidates whose drift is known: step 0, sensitivities, selection, endings."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.artifacts.cache import ArtifactCache
from arcface_trt.budget import search as search_module
from arcface_trt.budget.evaluate import Measurement
from arcface_trt.budget.groups import NodeGroup
from arcface_trt.budget.search import (
    IMPOSSIBLE,
    NO_SPEEDUP,
    TIMEOUT,
    WITHIN_BUDGET,
    DriftSearch,
    curve,
    sensitivity_subset,
)
from arcface_trt.budget.sensitivities import SensitivityCache

#: Each group's share of the drift when it is in low precision (group 2 matters most, then 0).
CONTRIBUTIONS = [0.003, 0.0005, 0.006, 0.001]


class FakeCandidates:
    """Four groups of two nodes; a model file records which groups are in low precision."""

    precision = "int8"

    def __init__(self, work: Path) -> None:
        self.work = work
        self.always_kept = ["head"]
        self.groups = [NodeGroup(i, f"g{i}", (f"conv{i}a", f"conv{i}b")) for i in range(len(CONTRIBUTIONS))]
        self.only_calls: list[int] = []

    def kept_nodes(self, kept_groups) -> list[str]:
        return [n for g in self.groups if g.index in set(kept_groups) for n in g.nodes]

    def nodes_by_precision(self, kept_groups) -> dict[str, int]:
        kept = len(self.kept_nodes(kept_groups))
        return {"int8": 8 - kept, "fp32": kept + 1}

    def _write(self, name: str, low: list[int]) -> Path:
        path = self.work / f"{name}.json"
        path.write_text(json.dumps(low))
        return path

    def with_kept(self, name: str, kept_groups) -> Path:
        return self._write(name, [g.index for g in self.groups if g.index not in kept_groups])

    def with_only(self, name: str, group: int) -> Path:
        self.only_calls.append(group)
        return self._write(name, [group])


class FakeEvaluator:
    """Drift of a model = the sum of its low-precision groups' contributions (plus a tiny floor)."""

    mode = "cpu-engine"

    def __init__(self, crops: int = 60) -> None:
        self.reference = np.zeros((crops, 4))
        self.subsets: list[list[int] | None] = []

    def measure(self, path: Path, subset=None) -> Measurement:
        self.subsets.append(None if subset is None else list(subset))
        low = json.loads(path.read_text())
        drift = 1e-7 + sum(CONTRIBUTIONS[g] for g in low)
        return Measurement(drift, drift / 2, 60, throughput=10.0 + len(low), fp32_throughput=10.0)


def _search(tmp_path: Path, budget: float, timeout_s: float | None = None, cache_parts: dict | None = None):
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    candidates, evaluator = FakeCandidates(work), FakeEvaluator()
    cache = SensitivityCache(ArtifactCache(tmp_path / "cache"), "m", "int8", "cpu-engine", cache_parts or {"k": 1})
    messages: list[str] = []
    search = DriftSearch(candidates, evaluator, budget, cache, timeout_s, messages.append)
    return search, search.run(), candidates, evaluator, messages


def test_a_budget_the_full_low_precision_model_meets_needs_no_search(tmp_path: Path) -> None:
    search, result, candidates, _, _ = _search(tmp_path, budget=0.02)
    assert result.status == WITHIN_BUDGET and result.passed
    assert result.chosen == 0 and result.best.kept_groups == () and result.kept_nodes() == []
    assert candidates.only_calls == [] and result.sensitivities == []  # no sensitivity measured
    assert search.chosen_file(result).exists()


def test_the_most_sensitive_groups_are_kept_first_until_the_budget_holds(tmp_path: Path) -> None:
    search, result, candidates, evaluator, messages = _search(tmp_path, budget=0.002)
    # Every group's sensitivity, one at a time, on a spread subset of the evaluation crops.
    assert candidates.only_calls == [0, 1, 2, 3]
    assert evaluator.subsets[1] == sensitivity_subset(60) and len(sensitivity_subset(60)) == 16
    assert [s.group for s in result.sensitivities] == [2, 0, 3, 1]
    # Step 0 (0.0105), every group kept (1e-7), then group 2 (0.0045), then 2 and 0 (0.0015 <= 0.002).
    assert [step.kept_groups for step in result.steps] == [(), (0, 1, 2, 3), (2,), (0, 2)]
    assert result.status == WITHIN_BUDGET and result.chosen == 3
    assert result.kept_nodes() == ["conv0a", "conv0b", "conv2a", "conv2b"]
    assert result.best.max_drift == pytest.approx(1e-7 + 0.0005 + 0.001)
    # Files of over-budget steps are gone; the chosen one stays for the artifact.
    assert search.chosen_file(result).exists()
    assert sorted(p.name for p in (tmp_path / "work").iterdir()) == ["step-1.json", "step-3.json"]
    rows = curve(result)
    assert [row["chosen"] for row in rows] == [False, False, False, True]
    assert rows[3]["nodes_kept"] == 4 and rows[3]["nodes_by_precision"] == {"int8": 4, "fp32": 5}
    assert rows[0]["speedup"] == pytest.approx(1.4)  # 14 img/s against fp32's 10, timed together
    # Progress: groups tried and the best so far.
    assert any("sensitivity 4/4" in m and "most sensitive so far: g2" in m for m in messages)
    assert "best so far 1.00e-07" in messages[-1]
    assert result.message.startswith("worst drift 1.50e-03 <= budget 0.002 with 2 of 4 groups (4 nodes)")


def test_a_new_budget_reuses_the_cached_sensitivities(tmp_path: Path) -> None:
    _search(tmp_path, budget=0.002)
    _, again, candidates, _, messages = _search(tmp_path, budget=0.004)
    assert candidates.only_calls == [] and again.sensitivities_from_cache
    assert again.status == WITHIN_BUDGET and again.best.kept_groups == (0, 2)  # group 2 alone leaves 0.0045
    assert any("reused from" in m for m in messages)
    # Other inputs (another key) measure again.
    _, other, candidates, _, _ = _search(tmp_path, budget=0.004, cache_parts={"k": 2})
    assert candidates.only_calls == [0, 1, 2, 3] and not other.sensitivities_from_cache


def test_a_damaged_sensitivity_record_is_measured_again(tmp_path: Path) -> None:
    search, _, _, _, _ = _search(tmp_path, budget=0.002)
    search.cache.path.write_text('{"format": "x", "key": "' + search.cache.key + '", "sensitivities": [{"group": 0}]}')
    _, again, candidates, _, _ = _search(tmp_path, budget=0.002)
    assert candidates.only_calls == [0, 1, 2, 3] and not again.sensitivities_from_cache


def test_an_impossible_budget_ends_with_the_closest_result(tmp_path: Path) -> None:
    _, result, _, _, _ = _search(tmp_path, budget=1e-9)
    assert result.status == IMPOSSIBLE and not result.passed and result.chosen is None
    # Only step 0 and every group kept were measured: nothing below the most accurate candidate can do better.
    assert [step.kept_groups for step in result.steps] == [(), (0, 1, 2, 3)]
    assert result.best.kept_groups == (0, 1, 2, 3)
    assert "cannot be met" in result.message and "1.00e-07" in result.message


def test_when_only_everything_in_full_precision_holds_there_is_no_speedup(tmp_path: Path) -> None:
    _, result, _, _, _ = _search(tmp_path, budget=2e-7)
    assert result.status == NO_SPEEDUP and result.passed
    assert result.best.kept_groups == (0, 1, 2, 3)
    assert result.message.startswith("no speedup available within 2e-07")


def test_the_search_timeout_stops_with_the_best_result_so_far(tmp_path: Path, monkeypatch) -> None:
    # Time runs out after the first sensitivity: the search stops and says so.
    ticks = iter([0.0, 0.0, 100.0])
    monkeypatch.setattr(search_module.time, "monotonic", lambda: next(ticks, 100.0))
    _, result, candidates, _, _ = _search(tmp_path, budget=0.002, timeout_s=5)
    assert result.status == TIMEOUT and not result.passed
    assert candidates.only_calls == [0]
    assert result.best.kept_groups == () and len(result.steps) == 1
    assert result.message.startswith("--search-timeout 5 s reached after 1 step(s): best so far 0 of 4 groups")


def test_a_timeout_after_every_group_in_full_precision_names_the_closest_speedup(tmp_path: Path, monkeypatch) -> None:
    # Cached sensitivities; time runs out after every group in full precision was measured (within the budget).
    _search(tmp_path, budget=0.002)
    ticks = iter([0.0, 0.0])  # the deadline is set, not yet passed before every group in full precision
    monkeypatch.setattr(search_module.time, "monotonic", lambda: next(ticks, 100.0))
    _, result, _, _, _ = _search(tmp_path, budget=0.002, timeout_s=5)
    assert result.status == TIMEOUT and not result.passed
    assert [step.kept_groups for step in result.steps] == [(), (0, 1, 2, 3)]
    # The closest result is step 0, not the fp32 model the search measured to know the budget can be met.
    assert result.best.kept_groups == () and result.kept_nodes() == []
    assert result.message == (
        "--search-timeout 5 s reached after 2 step(s): best so far 0 of 4 groups (0 nodes) kept in full precision, "
        "worst drift 1.05e-02, over the budget 0.002; only every group in full precision was within it (no speedup)"
    )


def test_with_cached_sensitivities_a_deadline_passed_at_step_0_stops_there(tmp_path: Path, monkeypatch) -> None:
    _search(tmp_path, budget=0.002)
    ticks = iter([0.0])  # the deadline is set; the next look at the clock, after step 0, finds it passed
    monkeypatch.setattr(search_module.time, "monotonic", lambda: next(ticks, 100.0))
    _, result, _, _, _ = _search(tmp_path, budget=0.002, timeout_s=5)
    assert result.status == TIMEOUT and [step.kept_groups for step in result.steps] == [()]
    assert result.message.startswith("--search-timeout 5 s reached after 1 step(s): best so far 0 of 4 groups")
