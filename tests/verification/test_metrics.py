"""Verification metrics against independent computations on synthetic distances (no scikit-learn here)."""

from __future__ import annotations

import numpy as np
import pytest

from arcface_trt.errors import InputError
from arcface_trt.verification.metrics import (
    ACCURACY_THRESHOLDS,
    accuracies,
    auc,
    compare_verification,
    decision_flips,
    eer,
    fold_slices,
    kfold_accuracy,
    pair_distances,
    roc,
    tar_at_far,
    verification_metrics,
)


def insightface_kfold(dist: np.ndarray, issame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """InsightFace's calculate_roc accuracy part, written out loop by loop (KFold without shuffle, by hand)."""
    n = len(dist)
    sizes = np.full(10, n // 10)
    sizes[: n % 10] += 1
    starts = np.concatenate([[0], np.cumsum(sizes)])
    accuracy, chosen = np.zeros(10), np.zeros(10)
    for k in range(10):
        test = np.arange(starts[k], starts[k + 1])
        train = np.setdiff1d(np.arange(n), test)
        train_acc = []
        for t in ACCURACY_THRESHOLDS:
            predict = np.less(dist[train], t)
            train_acc.append(np.mean(predict == issame[train]))
        best = ACCURACY_THRESHOLDS[int(np.argmax(train_acc))]
        chosen[k] = best
        accuracy[k] = np.mean(np.less(dist[test], best) == issame[test])
    return accuracy, chosen


def mann_whitney_auc(dist: np.ndarray, issame: np.ndarray) -> float:
    """AUC by the rank-sum formula: U / (P * N), scores = -distance, tied scores get their average rank."""
    scores = -dist
    order = np.argsort(scores, kind="stable")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1  # average of ranks i+1 .. j+1
        i = j + 1
    positives, negatives = int(issame.sum()), int((~issame).sum())
    u = ranks[issame].sum() - positives * (positives + 1) / 2
    return u / (positives * negatives)


def _synthetic(n: int, seed: int, overlap: float = 0.35, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Squared L2 distances of a plausible model: same-person pairs near 0.8, different near 1.6."""
    rng = np.random.default_rng(seed)
    issame = rng.random(n) < 0.5
    dist = np.where(issame, rng.normal(0.8, overlap, n), rng.normal(1.6, overlap, n)).clip(0.0, 4.0)
    return (np.round(dist, 2) if ties else dist), issame


def test_folds_are_sklearn_kfold_without_shuffle() -> None:
    assert [s.stop - s.start for s in fold_slices(23)] == [3, 3, 3, 2, 2, 2, 2, 2, 2, 2]
    assert fold_slices(6000)[3] == slice(1800, 2400)  # LFW: 10 folds of 600, in file order
    with pytest.raises(InputError, match="needs at least 10 pairs"):
        fold_slices(9)


@pytest.mark.parametrize(("n", "seed", "ties"), [(600, 0, False), (1003, 1, True), (57, 2, False)])
def test_kfold_accuracy_equals_insightface_loop(n: int, seed: int, ties: bool) -> None:
    dist, issame = _synthetic(n, seed, ties=ties)
    expected_accuracy, expected_thresholds = insightface_kfold(dist, issame)
    accuracy, thresholds = kfold_accuracy(dist, issame)
    assert np.array_equal(thresholds, expected_thresholds)
    assert np.allclose(accuracy, expected_accuracy, rtol=0, atol=1e-12)


def test_accuracies_count_strictly_below_the_threshold() -> None:
    dist = np.array([0.5, 1.0, 1.0, 2.0])
    issame = np.array([True, True, False, False])
    # t = 1.0: only 0.5 is accepted (1.0 is not < 1.0): 1 TA + 2 TR = 3/4
    assert accuracies(np.array([0.0, 1.0, 1.01, 3.0]), dist, issame).tolist() == [0.5, 0.75, 0.75, 0.5]


def test_hand_made_folds_with_a_known_best_threshold() -> None:
    # 20 pairs, alternately same (distance 1.0) and different (1.2): any grid t in (1.0, 1.2] is perfect,
    # and the first of them, 1.01, is chosen on every training set.
    issame = np.arange(20) % 2 == 0
    dist = np.where(issame, 1.0, 1.2)
    accuracy, thresholds = kfold_accuracy(dist, issame)
    assert np.allclose(thresholds, 1.01) and accuracy.tolist() == [1.0] * 10
    # A different-person pair at 0.9 in fold 4 (pairs 8, 9): every training set still picks 1.01 (accepting it costs
    # one error, rejecting it all same-person pairs); on fold 4 it is accepted wrongly: 1 of 2 right.
    dist[9] = 0.9
    accuracy, thresholds = kfold_accuracy(dist, issame)
    assert np.allclose(thresholds, 1.01)
    assert accuracy.tolist() == [1.0] * 4 + [0.5] + [1.0] * 5
    metrics = verification_metrics(dist, issame)
    assert metrics.accuracy == pytest.approx(0.95) and metrics.accuracy_std == pytest.approx(np.std(accuracy))
    assert metrics.threshold == {"l2_squared": pytest.approx(1.01), "cosine": pytest.approx(1 - 1.01 / 2)}


@pytest.mark.parametrize(("n", "seed", "ties"), [(400, 3, False), (2001, 4, True), (31, 5, True)])
def test_auc_equals_the_rank_sum_formula(n: int, seed: int, ties: bool) -> None:
    dist, issame = _synthetic(n, seed, overlap=0.5, ties=ties)
    assert auc(roc(dist, issame)) == pytest.approx(mann_whitney_auc(dist, issame), abs=1e-12)


def test_known_auc_eer_and_tar() -> None:
    # Same-person distances 0.1 0.2 0.3 0.6, different 0.4 0.7 0.8 0.9: 15 of 16 (same, different) orderings right.
    dist = np.array([0.1, 0.2, 0.3, 0.6, 0.4, 0.7, 0.8, 0.9])
    issame = np.array([True] * 4 + [False] * 4)
    curve = roc(dist, issame)
    assert auc(curve) == pytest.approx(15 / 16)
    # Accepting up to 0.4: TAR 3/4, FAR 1/4 -> FRR 1/4 = FAR.
    assert eer(curve) == (pytest.approx(0.25), pytest.approx(0.4))
    assert tar_at_far(curve, 0.0) == (pytest.approx(0.75), pytest.approx(0.3))
    assert tar_at_far(curve, 0.25) == (pytest.approx(1.0), pytest.approx(0.6))


def test_eer_is_interpolated_between_roc_points() -> None:
    # One same-person pair at 0.5, different ones at 0.2 and 0.8: FAR jumps 0 -> 0.5 while FRR is 1, then FRR
    # drops 1 -> 0 at FAR 0.5: the curves cross at 0.5.
    curve = roc(np.array([0.5, 0.2, 0.8]), np.array([True, False, False]))
    assert eer(curve)[0] == pytest.approx(0.5)
    # Between ROC points: accepting up to 0.3 gives FAR 0.2, FRR 0.6; the tie group at 0.4 (one different, two same)
    # moves to FAR 0.4, FRR 0.2. FAR - FRR goes -0.4 -> +0.2, so the curves cross 2/3 of the way: at 1/3.
    dist = np.array([0.1, 0.2, 0.3, 0.4, 0.4, 0.4, 0.5, 0.6, 0.7, 0.8])
    issame = np.array([True, True, False, False, True, True, True, False, False, False])
    assert eer(roc(dist, issame)) == (pytest.approx(1 / 3), pytest.approx(0.4))
    # Perfectly separated: EER 0, at the last same-person distance.
    assert eer(roc(np.array([0.1, 0.2, 1.5]), np.array([True, True, False]))) == (0.0, pytest.approx(0.2))


def test_tar_at_far_needs_ten_over_far_different_pairs() -> None:
    rng = np.random.default_rng(7)
    issame = np.array([True] * 50 + [False] * 1000)
    dist = np.where(issame, rng.uniform(0.0, 1.0, 1050), rng.uniform(0.5, 2.0, 1050))
    metrics = verification_metrics(dist, issame)
    rows = {row.far: row for row in metrics.tar_at_far}
    assert rows[0.1].tar is not None and rows[0.01].tar is not None
    assert rows[0.001].tar is None and rows[0.001].different_pairs_needed == 10000
    # Independent: the highest TAR whose threshold lets through at most 1% of the different pairs (10 of 1000).
    cut = np.sort(dist[~issame])[10]  # accepting below the 11th smallest different distance lets 10 through
    assert rows[0.01].tar == pytest.approx(np.mean(dist[issame] < cut))
    assert rows[0.01].threshold["l2_squared"] < cut


def test_sampled_roc_is_log_spaced_and_monotonic() -> None:
    dist, issame = _synthetic(3000, 8)
    metrics = verification_metrics(dist, issame)
    far, tar = np.array(metrics.roc["far"]), np.array(metrics.roc["tar"])
    assert far[0] == pytest.approx(1 / metrics.different_pairs) and far[-1] == 1.0 and tar[-1] == 1.0
    assert np.all(np.diff(far) > 0) and np.all(np.diff(tar) >= 0)


def test_one_kind_of_pair_is_not_enough() -> None:
    with pytest.raises(InputError, match="same-person and different-person pairs; the set has 20 and 0"):
        verification_metrics(np.ones(20), np.ones(20, dtype=bool))


def test_pair_distances_are_squared_l2_of_normalised_rows() -> None:
    e = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]], dtype=np.float32)
    assert pair_distances(e, np.array([0, 0, 1]), np.array([1, 2, 1])).tolist() == [2.0, 4.0, 0.0]
    # In chunks: the same numbers across chunk boundaries.
    rng = np.random.default_rng(0)
    e = rng.normal(size=(50, 8))
    left, right = np.triu_indices(50, k=1)
    expected = np.sum(np.square(e[left] - e[right]), axis=1)
    assert np.array_equal(pair_distances(e, left, right, chunk=7), expected)


def test_decision_flips_at_a_threshold() -> None:
    issame = np.array([True, True, False, False])
    dist_a = np.array([0.5, 1.5, 0.9, 2.0])  # at 1.0: accepts 0 and 2
    dist_b = np.array([1.1, 0.9, 1.2, 2.0])  # at 1.0: accepts 1
    flips = decision_flips(dist_a, dist_b, issame, 1.0)
    assert [f["pair"] for f in flips.pairs] == [0, 1, 2] and flips.count == 3 and flips.fraction == 0.75
    assert (flips.now_right, flips.now_wrong) == (2, 1)  # pair 1 accepted and pair 2 rejected now; pair 0 lost
    assert flips.pairs[0] == {"pair": 0, "same": True, "cosine_a": 0.75, "cosine_b": pytest.approx(0.45)}


def test_flips_are_all_counted_and_the_first_ones_listed(monkeypatch) -> None:
    from arcface_trt.verification import metrics

    monkeypatch.setattr(metrics, "MAX_LISTED_FLIPS", 2)
    flips = decision_flips(np.zeros(5), np.full(5, 2.0), np.ones(5, dtype=bool), 1.0)
    assert flips.count == 5 and flips.now_wrong == 5 and [f["pair"] for f in flips.pairs] == [0, 1]


def test_compare_verification_of_identical_backends_has_no_difference() -> None:
    dist, issame = _synthetic(500, 9)
    same = compare_verification(dist, dist.copy(), issame)
    assert same.decision_flips.count == 0 and same.difference["accuracy"] == 0 and same.difference["auc"] == 0
    assert same.decision_flips.threshold == same.a.threshold
    worse = compare_verification(dist, dist + np.where(issame, 0.3, -0.3), issame)
    assert worse.decision_flips.threshold == worse.a.threshold != worse.b.threshold
    assert worse.difference["accuracy"] < 0 and worse.difference["auc"] < 0 and worse.decision_flips.count > 0
    assert worse.difference["tar_at_far"]["0.001"] is None and worse.difference["tar_at_far"]["0.1"] < 0
