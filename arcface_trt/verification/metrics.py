"""Verification metrics on pair distances, computed as InsightFace's ``verification.py`` does.

A pair's distance is the squared L2 distance between the L2-normalised embeddings of its two
images (0..4, equal to ``2 - 2 cos``); "same person" is decided when the distance is below a
threshold. The 10-fold accuracy follows InsightFace exactly: folds taken in order (scikit-learn's
``KFold`` without shuffling: the first ``n % 10`` folds hold one pair more), and for each fold the
threshold of the grid ``0, 0.01, ..., 3.99`` with the best accuracy on the other nine folds (the
first one on ties) decides the fold's pairs. ROC, AUC, EER and TAR at FAR are exact (every
distinct distance is a threshold, ties count half in the AUC).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.records import Record

#: InsightFace's threshold grid for the 10-fold accuracy (``np.arange(0, 4, 0.01)``), squared L2.
ACCURACY_THRESHOLDS = np.arange(0, 4, 0.01)
FOLDS = 10
#: FARs at which the TAR is reported, each where the set has at least ``10 / far`` different-person pairs.
FARS = (1e-1, 1e-2, 1e-3)
#: Points of the ROC kept in reports (log-spaced in FAR).
ROC_POINTS = 100
#: Pairs whose distances are computed at once (bounds the memory of the embedding differences).
PAIRS_PER_CHUNK = 8192
#: Flipped pairs listed one by one in a report (all are counted).
MAX_LISTED_FLIPS = 10_000


def pair_distances(
    embeddings: np.ndarray, left: np.ndarray, right: np.ndarray, chunk: int = PAIRS_PER_CHUNK
) -> np.ndarray:
    """Squared L2 distance (float64) of each pair ``(embeddings[left[k]], embeddings[right[k]])``.

    Computed as InsightFace does (the square of the difference, not ``2 - 2 cos``), a chunk of
    pairs at a time: an identity folder implies millions of pairs.
    """
    e = embeddings.astype(np.float64)
    out = np.empty(len(left))
    for start in range(0, len(left), chunk):
        part = slice(start, start + chunk)
        out[part] = np.sum(np.square(e[left[part]] - e[right[part]]), axis=1)
    return out


def threshold_record(distance: float) -> dict[str, float]:
    """A threshold in both units: squared L2 distance (InsightFace's, 0..4) and cosine similarity."""
    return {"l2_squared": float(distance), "cosine": float(1.0 - distance / 2.0)}


def fold_slices(n: int, folds: int = FOLDS) -> list[slice]:
    """Consecutive folds as scikit-learn's ``KFold(n_splits=folds, shuffle=False)`` makes them."""
    if n < folds:
        raise InputError(f"{folds}-fold accuracy needs at least {folds} pairs, the set has {n}")
    sizes = [n // folds + (1 if i < n % folds else 0) for i in range(folds)]
    bounds = np.cumsum([0, *sizes])
    return [slice(int(bounds[i]), int(bounds[i + 1])) for i in range(folds)]


def accuracies(thresholds: np.ndarray, dist: np.ndarray, issame: np.ndarray) -> np.ndarray:
    """Accuracy of "same when distance < t" for every ``t`` in ``thresholds`` (sorted counts, not a loop)."""
    same = np.sort(dist[issame])
    different = np.sort(dist[~issame])
    true_accepts = np.searchsorted(same, thresholds, side="left")
    true_rejects = len(different) - np.searchsorted(different, thresholds, side="left")
    return (true_accepts + true_rejects) / len(dist)


def best_threshold(dist: np.ndarray, issame: np.ndarray) -> float:
    """The grid threshold with the best accuracy on these pairs (the first on ties, as ``np.argmax``)."""
    return float(ACCURACY_THRESHOLDS[int(np.argmax(accuracies(ACCURACY_THRESHOLDS, dist, issame)))])


def kfold_accuracy(dist: np.ndarray, issame: np.ndarray, folds: int = FOLDS) -> tuple[np.ndarray, np.ndarray]:
    """Per fold: the test accuracy at the threshold chosen on the other folds, and that threshold."""
    accuracy = np.zeros(folds)
    thresholds = np.zeros(folds)
    for k, test in enumerate(fold_slices(len(dist), folds)):
        train = np.ones(len(dist), dtype=bool)
        train[test] = False
        thresholds[k] = best_threshold(dist[train], issame[train])
        accuracy[k] = accuracies(thresholds[k : k + 1], dist[test], issame[test])[0]
    return accuracy, thresholds


@dataclass
class Roc:
    """The exact ROC: point ``k`` accepts every pair with distance ``<= threshold[k]`` (point 0 accepts none)."""

    far: np.ndarray
    tar: np.ndarray
    threshold: np.ndarray


def roc(dist: np.ndarray, issame: np.ndarray) -> Roc:
    """Every distinct distance as a threshold; FAR over different-person pairs, TAR over same-person pairs."""
    order = np.argsort(dist, kind="stable")
    sorted_dist = dist[order]
    sorted_same = issame[order]
    # The last index of each run of equal distances: a threshold accepts a tie group whole.
    last = np.flatnonzero(np.append(np.diff(sorted_dist) > 0, True))
    accepted_same = np.cumsum(sorted_same)[last]
    accepted_different = (last + 1) - accepted_same
    positives, negatives = int(issame.sum()), int((~issame).sum())
    return Roc(
        far=np.concatenate([[0.0], accepted_different / negatives]),
        tar=np.concatenate([[0.0], accepted_same / positives]),
        threshold=np.concatenate([[-np.inf], sorted_dist[last]]),
    )


def auc(curve: Roc) -> float:
    """Area under the ROC (trapezoids: equal to the Mann-Whitney U / (positives x negatives))."""
    return float(np.sum(np.diff(curve.far) * (curve.tar[1:] + curve.tar[:-1]) / 2.0))


def eer(curve: Roc) -> tuple[float, float]:
    """Equal error rate (FAR = 1 - TAR, linearly interpolated between ROC points) and the distance where it falls."""
    frr = 1.0 - curve.tar
    # The first point where the FAR has caught up with the FRR; never point 0 (FAR 0, FRR 1), always by the last.
    k = int(np.argmax(curve.far >= frr))
    before = curve.far[k - 1] - frr[k - 1]  # < 0
    after = curve.far[k] - frr[k]  # >= 0
    weight = before / (before - after)
    return float(curve.far[k - 1] + weight * (curve.far[k] - curve.far[k - 1])), float(curve.threshold[k])


def _last_within(curve: Roc, far: np.ndarray | float) -> np.ndarray:
    """Index of the last ROC point with FAR <= ``far`` (the highest TAR there, since both only grow)."""
    return np.searchsorted(curve.far, far, side="right") - 1


def tar_at_far(curve: Roc, far: float) -> tuple[float, float | None]:
    """The highest TAR whose FAR is at most ``far``, and its distance threshold (None when it accepts nothing)."""
    k = int(_last_within(curve, far))
    return float(curve.tar[k]), (float(curve.threshold[k]) if k > 0 else None)


def sampled_roc(curve: Roc, negatives: int, points: int = ROC_POINTS) -> dict[str, list[float]]:
    """The ROC at ``points`` log-spaced FARs from ``1 / negatives`` to 1 (what ``--plot`` draws and JSON keeps)."""
    far = np.logspace(np.log10(1.0 / negatives), 0.0, points)
    return {"far": [float(f) for f in far], "tar": [float(t) for t in curve.tar[_last_within(curve, far)]]}


@dataclass
class TarAtFar(Record):
    """TAR at one FAR; ``tar`` is None when the set has fewer than ``different_pairs_needed`` different-person pairs."""

    far: float
    different_pairs_needed: int
    tar: float | None
    threshold: dict[str, float] | None


@dataclass
class VerificationMetrics(Record):
    """One backend's verification figures on a pair set."""

    pairs: int
    same_pairs: int
    different_pairs: int
    #: Mean and standard deviation (NumPy's, over folds) of the 10-fold accuracy; per fold below.
    accuracy: float
    accuracy_std: float
    fold_accuracies: list[float]
    fold_thresholds: list[float]
    #: The best-accuracy grid threshold on all pairs: the one decision flips are counted at.
    threshold: dict[str, float]
    auc: float
    eer: float
    eer_threshold: dict[str, float]
    tar_at_far: list[TarAtFar]
    #: TAR at log-spaced FARs (:func:`sampled_roc`).
    roc: dict[str, list[float]]


def verification_metrics(dist: np.ndarray, issame: np.ndarray) -> VerificationMetrics:
    """10-fold accuracy, AUC, EER, TAR at :data:`FARS` and the sampled ROC of one backend's pair distances."""
    same = int(issame.sum())
    different = len(issame) - same
    if same == 0 or different == 0:
        raise InputError(
            f"verification needs same-person and different-person pairs; the set has {same} and {different}"
        )
    fold_accuracy, fold_threshold = kfold_accuracy(dist, issame)
    curve = roc(dist, issame)
    rate, rate_threshold = eer(curve)
    rows = []
    for far in FARS:
        needed = round(10 / far)
        tar, threshold = tar_at_far(curve, far) if different >= needed else (None, None)
        rows.append(TarAtFar(far, needed, tar, None if threshold is None else threshold_record(threshold)))
    return VerificationMetrics(
        pairs=len(issame),
        same_pairs=same,
        different_pairs=different,
        accuracy=float(fold_accuracy.mean()),
        accuracy_std=float(fold_accuracy.std()),
        fold_accuracies=[float(a) for a in fold_accuracy],
        fold_thresholds=[float(t) for t in fold_threshold],
        threshold=threshold_record(best_threshold(dist, issame)),
        auc=auc(curve),
        eer=rate,
        eer_threshold=threshold_record(rate_threshold),
        tar_at_far=rows,
        roc=sampled_roc(curve, different),
    )


@dataclass
class DecisionFlips(Record):
    """Pairs that B decides differently from A, both judged at A's threshold."""

    threshold: dict[str, float]
    count: int
    fraction: float
    #: Flips where B's decision is now right (A's was wrong), and where it is now wrong.
    now_right: int
    now_wrong: int
    #: Each flip (the first :data:`MAX_LISTED_FLIPS`): pair index, truth, and both backends' cosine similarity.
    pairs: list[dict[str, Any]]


def decision_flips(dist_a: np.ndarray, dist_b: np.ndarray, issame: np.ndarray, threshold: float) -> DecisionFlips:
    """Which pairs change decision ("same when distance < threshold") from A to B."""
    accept_a = dist_a < threshold
    accept_b = dist_b < threshold
    flipped = np.flatnonzero(accept_a != accept_b)
    right = int(np.sum(accept_b[flipped] == issame[flipped]))
    return DecisionFlips(
        threshold=threshold_record(threshold),
        count=len(flipped),
        fraction=len(flipped) / len(issame),
        now_right=right,
        now_wrong=len(flipped) - right,
        pairs=[
            {
                "pair": int(k),
                "same": bool(issame[k]),
                "cosine_a": float(1.0 - dist_a[k] / 2.0),
                "cosine_b": float(1.0 - dist_b[k] / 2.0),
            }
            for k in flipped[:MAX_LISTED_FLIPS]
        ],
    )


@dataclass
class Verification(Record):
    """Both backends' verification figures on one pair set, B - A, and the decisions that flip."""

    a: VerificationMetrics
    b: VerificationMetrics
    #: B - A of accuracy, AUC, EER, and TAR per FAR (None where the set is too small for that FAR).
    difference: dict[str, Any]
    decision_flips: DecisionFlips


def compare_verification(dist_a: np.ndarray, dist_b: np.ndarray, issame: np.ndarray) -> Verification:
    """Verification metrics of A and B on the same pairs; flips counted at A's best-accuracy threshold."""
    a = verification_metrics(dist_a, issame)
    b = verification_metrics(dist_b, issame)
    tar = {
        f"{row_a.far:g}": None if row_a.tar is None or row_b.tar is None else row_b.tar - row_a.tar
        for row_a, row_b in zip(a.tar_at_far, b.tar_at_far, strict=True)
    }
    return Verification(
        a=a,
        b=b,
        difference={"accuracy": b.accuracy - a.accuracy, "auc": b.auc - a.auc, "eer": b.eer - a.eer, "tar_at_far": tar},
        decision_flips=decision_flips(dist_a, dist_b, issame, a.threshold["l2_squared"]),
    )
