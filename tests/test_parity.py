"""The one scoring core (``parity.score``: worst-sample tolerance, L2 of normalised rows, neighbour agreement)
and its embedding loop (``parity.measure``: chunks, and mirror images added with flip, as InsightFace evaluates)."""

from __future__ import annotations

import time

import numpy as np
import pytest

from arcface_trt.backends.base import BackendInfo
from arcface_trt.bench.timing import TimingPlan
from arcface_trt.config import Tolerance, ValidationSection
from arcface_trt.errors import InputError
from arcface_trt.parity import RUN_OVERRIDE, drift_tolerance, measure, score, speeds
from arcface_trt.preprocess import l2_normalize

#: A tolerance that admits every cosine, for tests of the statistics.
ANY = Tolerance(2.0, "any")


def _rotated(rows: np.ndarray, angles: list[float]) -> np.ndarray:
    """Each row turned by its angle (radians) in the plane of its first two coordinates."""
    out = rows.copy()
    for i, angle in enumerate(angles):
        x, y = rows[i, 0], rows[i, 1]
        out[i, 0], out[i, 1] = np.cos(angle) * x - np.sin(angle) * y, np.sin(angle) * x + np.cos(angle) * y
    return out


def test_the_tolerance_applies_to_the_worst_sample() -> None:
    # Eight unit rows, each in its own pair of coordinates.
    a = l2_normalize(np.vstack([np.roll(np.r_[1.0, 0.0, np.zeros(14)], 2 * i) for i in range(8)]).astype(np.float32))
    b = a.copy()
    # One sample drifts by cosine 0.99 (drift 0.01); the mean cosine stays above 0.998.
    b[3] = np.roll(np.r_[0.99, np.sqrt(1 - 0.99**2), np.zeros(14)], 6)
    stats, cosine = score(a, b, Tolerance(0.005, "validation.max_drift_cosine_fp16"))
    assert cosine[3] == pytest.approx(0.99, abs=1e-6) and stats.cosine["mean"] > 0.998
    assert stats.max_drift == pytest.approx(0.01, abs=1e-6)
    assert not stats.passed and not stats  # the mean would pass; the worst sample does not
    assert (stats.max_drift_cosine, stats.tolerance_key) == (0.005, "validation.max_drift_cosine_fp16")
    assert score(a, b, Tolerance(0.011, RUN_OVERRIDE))[0].passed


def test_the_tolerance_is_the_least_precise_backends_unless_one_is_given_for_the_run() -> None:
    validation = ValidationSection(max_drift_cosine=0.1, max_drift_cosine_fp16=0.2, max_drift_cosine_int8=0.3)

    def info(precision: str) -> BackendInfo:
        return BackendInfo(backend="x", requested_backend="x", device="cpu", model_path="m", precision=precision)

    assert drift_tolerance(validation, [info("fp32"), info("fp32")]) == Tolerance(0.1, "validation.max_drift_cosine")
    assert drift_tolerance(validation, [info("fp32"), info("int8")]).key == "validation.max_drift_cosine_int8"
    # whichever side is the less precise one (a TensorRT fp16 engine as A against fp32 ONNX Runtime as B)
    assert drift_tolerance(validation, [info("fp16"), info("fp32")]) == Tolerance(
        0.2, "validation.max_drift_cosine_fp16"
    )
    assert drift_tolerance(validation, [info("int8"), info("fp16")]).value == 0.3
    assert drift_tolerance(validation, [info("int8")], override=0.05) == Tolerance(0.05, "--max-drift-cosine")


def test_l2_is_measured_on_normalised_embeddings() -> None:
    a = l2_normalize(np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], np.float32))
    b = l2_normalize(_rotated(a, [np.pi / 2, 0.0, np.pi]))
    stats, cosine = score(a, b, ANY)
    np.testing.assert_allclose(cosine, [0.0, 1.0, -1.0], atol=1e-6)
    # |a - b| of unit vectors is sqrt(2 - 2 cos): sqrt(2), 0 and 2.
    assert stats.l2["max"] == pytest.approx(2.0, abs=1e-6) and stats.l2["min"] == pytest.approx(0.0, abs=1e-6)
    assert stats.l2["p50"] == pytest.approx(np.sqrt(2.0), abs=1e-6)


def test_nearest_neighbour_agreement_on_a_hand_made_case() -> None:
    # Four points on a circle: A's nearest neighbours are 0<->1 and 2<->3.
    a = l2_normalize(np.array([[1.0, 0.0], [0.9, 0.1], [-1.0, 0.0], [-0.9, -0.1]], np.float32))
    assert score(a, a, ANY)[0].nn_agreement == 1.0
    # B moves point 1 beside point 2: 1's neighbour becomes 2, 2's becomes 1, and 0 (left alone on its
    # side) is nearest to 3 now; only 3 keeps its neighbour (2): one of four agrees.
    b = a.copy()
    b[1] = l2_normalize(np.array([[-0.95, 0.05]], np.float32))[0]
    assert score(a, b, ANY)[0].nn_agreement == 0.25
    assert score(a[:2], b[:2], ANY)[0].nn_agreement is None  # fewer than three rows: not defined


def test_shapes_and_non_finite_values() -> None:
    a = l2_normalize(np.ones((3, 4), np.float32))
    with pytest.raises(InputError, match="different shapes"):
        score(a, a[:, :2], ANY)
    bad = a.copy()
    bad[0, 0] = np.nan
    assert not score(a, bad, ANY)[0].passed


class HalvesEmbedder:
    """Embeds a crop as the mean of its left half and of its right half: a mirror image swaps the two."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def ensure_ready(self) -> None:
        pass

    def encode(self, crops) -> np.ndarray:
        crops = list(crops)
        assert all(c.flags.c_contiguous for c in crops)  # what the preprocessing (cv2) needs
        self.calls.append(len(crops))
        halves = [[c[:, :56].mean() + 1.0, c[:, 56:].mean() + 1.0] for c in crops]
        return l2_normalize(np.array(halves))


def test_measure_without_and_with_flip(faces: np.ndarray) -> None:
    embedder = HalvesEmbedder()
    plain = measure(embedder, faces, chunk=5)
    assert embedder.calls == [5, 5, 2]
    assert np.allclose(plain, embedder.encode(faces))
    embedder.calls.clear()
    flipped = measure(embedder, faces, chunk=5, flip=True)
    assert embedder.calls == [5, 5, 5, 5, 2, 2]
    mirrored = embedder.encode([np.ascontiguousarray(f[:, ::-1]) for f in faces])
    assert np.allclose(flipped, l2_normalize(plain + mirrored))
    # Left and right swap under the mirror, so the flipped embedding is symmetric: both halves weigh the same.
    assert np.allclose(flipped[:, 0], flipped[:, 1]) and not np.allclose(plain[:, 0], plain[:, 1])


class SlowStartEmbedder:
    """Sleeps ``first_s`` on its first call and ``each_s`` on every later one; logs its name per call."""

    def __init__(self, name: str, each_s: float, first_s: float, log: list[str]) -> None:
        self.name, self.each_s, self.first_s, self.log = name, each_s, first_s, log

    def encode(self, crops: np.ndarray) -> np.ndarray:
        time.sleep(self.first_s if self.name not in self.log else self.each_s)
        self.log.append(self.name)
        return np.ones((len(crops), 2), dtype=np.float32)


def test_speeds_exclude_the_first_call_and_time_the_backends_interleaved(faces: np.ndarray) -> None:
    log: list[str] = []
    fast, slow = SlowStartEmbedder("fast", 0.002, 0.3, log), SlowStartEmbedder("slow", 0.02, 0.002, log)
    (fps_fast, fps_slow), how = speeds([fast, slow], faces, chunk=4, plan=TimingPlan(iterations=5, warmup_s=0.0))
    # one warm-up call each, then round-robin: fast, slow, fast, slow, ...
    assert log == ["fast", "slow"] + ["fast", "slow"] * 5
    # the 0.3 s first call is not in the figure (with it, fast would be below 4 / (0.3 / 5) = 67 img/s)
    assert fps_fast > 400 and fps_fast > 3 * fps_slow
    assert "warm-up excluded" in how and "interleaved" in how and "batch of 4 crops" in how


def test_identical_embeddings_score_exactly_one_and_zero_drift() -> None:
    rng = np.random.default_rng(0)
    a = l2_normalize(rng.normal(size=(64, 512)).astype(np.float32))
    # float32 normalisation leaves norms off 1 by ~1e-7: the raw dot product of a row with itself exceeds 1
    assert np.sum(a.astype(np.float64) ** 2, axis=1).max() > 1.0
    stats, cosine = score(a, a.copy(), ANY)
    assert cosine.max() <= 1.0 and stats.cosine["max"] <= 1.0 and stats.cosine["min"] >= 1.0 - 1e-15
    assert stats.max_drift == 0.0  # not 1e-7: below what float32 embeddings can tell
    opposite, _ = score(a, -a, ANY)
    assert opposite.cosine["min"] >= -1.0
    # a drift float32 can carry is kept as measured
    b = a.copy()
    b[0] = l2_normalize((a[0] + 0.01 * rng.normal(size=512)).astype(np.float32)[None])[0]
    drifted, cos = score(a, b, ANY)
    assert drifted.max_drift == pytest.approx(1.0 - cos[0]) and drifted.max_drift > 1e-5
