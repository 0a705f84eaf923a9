"""Sample faces and the one preprocessing function (InsightFace's get_feat contract)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from arcface_trt.errors import InputError
from arcface_trt.faces import base_faces, sample_faces
from arcface_trt.model.input_spec import InputSpec
from arcface_trt.preprocess import l2_normalize, preprocess


def _spec(mean: float | tuple = 127.5, std: float | tuple = 127.5, color: str = "RGB", side: int = 112) -> InputSpec:
    triple = lambda v: v if isinstance(v, tuple) else (float(v),) * 3  # noqa: E731
    return InputSpec(side, color, triple(mean), triple(std), False, "config", "config", "not read")


def test_seven_real_distinct_faces() -> None:
    faces = base_faces()
    assert len(faces) == 7
    assert all(f.shape == (112, 112, 3) and f.dtype == np.uint8 for f in faces)
    # real images, not blank: plenty of contrast and pairwise different
    assert all(f.std() > 20 for f in faces)
    for i in range(7):
        for j in range(i + 1, 7):
            assert np.abs(faces[i].astype(int) - faces[j].astype(int)).mean() > 10


def test_samples_are_seeded_and_augmented() -> None:
    a, b, c = sample_faces(20, seed=3), sample_faces(20, seed=3), sample_faces(20, seed=4)
    assert a.shape == (20, 112, 112, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b)
    assert not np.array_equal(a[7:], c[7:])
    assert np.array_equal(a[:7], np.stack(base_faces()))  # the first seven are the faces as they are
    assert not np.array_equal(a[7], a[0])  # later ones are augmented copies
    with pytest.raises(ValueError):
        sample_faces(0)


def test_preprocess_equals_insightface_blob(faces: np.ndarray) -> None:
    crops = list(faces[:4])
    expected = cv2.dnn.blobFromImages(crops, 1.0 / 127.5, (112, 112), (127.5, 127.5, 127.5), swapRB=True)
    out = preprocess(crops, InputSpec.default(112))
    assert out.dtype == np.float32 and out.shape == (4, 3, 112, 112)
    np.testing.assert_array_equal(out, expected)
    # BGR -> RGB and (x - mean) / std, checked by hand on one pixel
    pixel = faces[0, 10, 20].astype(np.float32)
    np.testing.assert_allclose(out[0, :, 10, 20], (pixel[::-1] - 127.5) / 127.5, rtol=1e-6)


def test_preprocess_resizes_and_takes_arrays(faces: np.ndarray) -> None:
    big = cv2.resize(faces[0], (224, 200))
    raw = _spec(mean=0.0, std=1.0)
    out = preprocess([big, faces[1]], raw)
    assert out.shape == (2, 3, 112, 112)
    np.testing.assert_array_equal(preprocess(faces[:3], raw), preprocess(list(faces[:3]), raw))


def test_preprocess_follows_the_spec_side_colour_and_per_channel_values(faces: np.ndarray) -> None:
    mean, std = (123.7, 116.3, 103.5), (58.4, 57.1, 57.4)
    pixel = faces[0, 10, 20].astype(np.float64)  # B, G, R
    rgb = preprocess(faces[:1], _spec(mean, std))[0, :, 10, 20]
    np.testing.assert_allclose(rgb, (pixel[::-1] - mean) / std, rtol=1e-5)  # RGB order, each its own mean/std
    bgr = preprocess(faces[:1], _spec(mean, std, "BGR"))[0, :, 10, 20]
    np.testing.assert_allclose(bgr, (pixel - mean[::-1]) / std[::-1], rtol=1e-5)  # values given RGB, fed B, G, R
    assert preprocess(faces[:2], _spec(side=150)).shape == (2, 3, 150, 150)
    raw = preprocess(faces[:1], _spec(0.0, 1.0))[0, :, 10, 20]
    np.testing.assert_array_equal(raw, pixel[::-1])


@pytest.mark.parametrize(
    "bad",
    [[], [np.zeros((112, 112), np.uint8)], [np.zeros((112, 112, 3), np.float32)], np.zeros((2, 112, 112, 4), np.uint8)],
)
def test_preprocess_rejects_bad_crops(bad: object) -> None:
    with pytest.raises(InputError):
        preprocess(bad, InputSpec.default(112))  # type: ignore[arg-type]


def test_l2_normalize() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    out = l2_normalize(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
