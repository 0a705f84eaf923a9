"""Sample faces and the one preprocessing function (InsightFace's get_feat contract)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from arcface_trt.errors import InputError
from arcface_trt.faces import base_faces, sample_faces
from arcface_trt.preprocess import l2_normalize, preprocess


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
    out = preprocess(crops, (112, 112), 127.5, 127.5)
    assert out.dtype == np.float32 and out.shape == (4, 3, 112, 112)
    np.testing.assert_array_equal(out, expected)
    # BGR -> RGB and (x - mean) / std, checked by hand on one pixel
    pixel = faces[0, 10, 20].astype(np.float32)
    np.testing.assert_allclose(out[0, :, 10, 20], (pixel[::-1] - 127.5) / 127.5, rtol=1e-6)


def test_preprocess_resizes_and_takes_arrays(faces: np.ndarray) -> None:
    big = cv2.resize(faces[0], (224, 200))
    out = preprocess([big, faces[1]], (112, 112), 0.0, 1.0)
    assert out.shape == (2, 3, 112, 112)
    np.testing.assert_array_equal(
        preprocess(faces[:3], (112, 112), 0.0, 1.0), preprocess(list(faces[:3]), (112, 112), 0.0, 1.0)
    )


@pytest.mark.parametrize(
    "bad",
    [[], [np.zeros((112, 112), np.uint8)], [np.zeros((112, 112, 3), np.float32)], np.zeros((2, 112, 112, 4), np.uint8)],
)
def test_preprocess_rejects_bad_crops(bad: object) -> None:
    with pytest.raises(InputError):
        preprocess(bad, (112, 112), 127.5, 127.5)  # type: ignore[arg-type]


def test_l2_normalize() -> None:
    x = np.array([[3.0, 4.0], [0.0, 0.0]])
    out = l2_normalize(x)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, 0.0]])
