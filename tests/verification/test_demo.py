"""The toy pair set of make-pairs: real faces, alternating same/different pairs, the .bin format, seeded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arcface_trt.errors import InputError
from arcface_trt.verification.demo import demo_pairs, write_demo_pairs
from arcface_trt.verification.pairs import load_pair_set


def test_demo_pairs_join_the_same_face_or_two_faces() -> None:
    crops, left, right, issame = demo_pairs(300, seed=3)
    assert crops.shape == (7 * 32, 112, 112, 3)
    assert issame.tolist() == [k % 2 == 0 for k in range(300)]
    person = np.arange(len(crops)) % 7  # sample_faces gives crop i the face i % 7
    assert np.array_equal(person[left] == person[right], issame)
    assert np.all(left != right)  # never a crop paired with itself
    again = demo_pairs(300, seed=3)
    assert all(np.array_equal(x, y) for x, y in zip((crops, left, right, issame), again, strict=True))
    assert not np.array_equal(demo_pairs(300, seed=4)[1], left)


@pytest.mark.parametrize("image_format", ["jpg", "png"])
def test_the_demo_bin_reads_back_as_a_pair_set(image_format: str, tmp_path: Path) -> None:
    record = write_demo_pairs(tmp_path / "demo.bin", n_pairs=40, seed=0, image_format=image_format)
    assert (record.pairs, record.same_pairs, record.different_pairs, record.identities) == (40, 20, 20, 7)
    pair_set = load_pair_set(tmp_path / "demo.bin")
    assert pair_set.issame.tolist() == [k % 2 == 0 for k in range(40)]
    assert len(pair_set.images) == record.distinct_images
    crops, left, _, _ = demo_pairs(40, seed=0)
    decoded = pair_set.images[pair_set.left[0]]
    if image_format == "png":  # lossless: the crop itself
        assert np.array_equal(decoded, crops[left[0]])
    else:
        assert np.abs(decoded.astype(int) - crops[left[0]]).mean() < 3


@pytest.mark.parametrize(
    ("name", "kwargs", "message"),
    [
        ("demo.pkl", {}, "--out must end in .bin"),
        ("demo.bin", {"n_pairs": 19}, "--n-pairs must be at least 20"),
        ("demo.bin", {"image_format": "gif"}, "--image-format must be one of jpg, png"),
    ],
)
def test_bad_demo_options(name: str, kwargs: dict, message: str, tmp_path: Path) -> None:
    with pytest.raises(InputError, match=message):
        write_demo_pairs(tmp_path / name, **kwargs)
    assert not (tmp_path / name).exists()
