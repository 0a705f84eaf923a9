"""Identity folders: reading the tree, the pairs it implies, and leave-one-out rank-1 of two backends."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from arcface_trt.errors import InputError
from arcface_trt.verification.identities import IdentitySet, identify, load_identities


def write_identity_tree(root: Path, faces: np.ndarray, people: int = 3, crops: int = 3) -> Path:
    """``root/person_k/crop_j.png``: crops of face k (sample_faces gives crop i the face i % 7)."""
    for k in range(people):
        folder = root / f"person_{k}"
        folder.mkdir(parents=True)
        for j in range(crops):
            assert cv2.imwrite(str(folder / f"crop_{j}.png"), faces[k + 7 * j])
    return root


def test_load_identities_and_the_pairs_they_imply(tmp_path: Path) -> None:
    from arcface_trt.faces import sample_faces

    root = write_identity_tree(tmp_path / "ids", sample_faces(21))
    (tmp_path / "ids" / "person_1" / "notes.txt").write_text("not an image")
    identity_set = load_identities(root)
    assert identity_set.identities == ["person_0", "person_1", "person_2"]
    assert identity_set.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert identity_set.names[3] == str(Path("person_1") / "crop_0.png")
    pair_set = identity_set.pair_set()
    assert len(pair_set.issame) == 36 and pair_set.same == 9  # C(9, 2); 3 x C(3, 2) same-person
    assert pair_set.left.tolist()[:3] == [0, 0, 0] and pair_set.right.tolist()[:3] == [1, 2, 3]
    assert pair_set.issame.tolist()[:3] == [True, True, False]


@pytest.mark.parametrize(
    ("layout", "message"),
    [
        ({"a.png": None}, "images must be in one sub-folder per person, found a.png"),
        ({"p1/a.png": None}, "needs at least two people (sub-folders), found 1"),
        ({"p1/a.png": None, "p2/b.png": None}, "every person has one crop"),
        ({"p1/a.png": None, "p1/b.png": None, "p2": "empty"}, "no images"),
    ],
)
def test_bad_identity_folders_are_one_input_error(
    layout: dict, message: str, faces: np.ndarray, tmp_path: Path
) -> None:
    for name, kind in layout.items():
        path = tmp_path / name
        if kind == "empty":
            path.mkdir(parents=True)
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        assert cv2.imwrite(str(path), faces[0])
    with pytest.raises(InputError) as caught:
        load_identities(tmp_path)
    assert message in str(caught.value)


def _unit(rows: list[list[float]]) -> np.ndarray:
    e = np.array(rows, dtype=np.float32)
    return e / np.linalg.norm(e, axis=1, keepdims=True)


def test_rank1_is_leave_one_out_and_singletons_are_distractors() -> None:
    # Person 0: crops 0, 1; person 1: crops 2, 3; person 2: crop 4 alone (a distractor, never a probe).
    identity_set = IdentitySet(
        root="ids",
        identities=["ann", "bob", "cy"],
        images=[np.zeros((112, 112, 3), np.uint8)] * 5,
        names=["ann/0", "ann/1", "bob/0", "bob/1", "cy/0"],
        labels=np.array([0, 0, 1, 1, 2]),
    )
    a = _unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.9, 0.1], [0, 0, 1]])
    # B moves bob/1 next to cy/0: bob/1 is now named cy, and bob/0's nearest stays bob/1.
    b = _unit([[1, 0, 0], [0.9, 0.1, 0], [0, 1, 0], [0, 0.3, 0.9], [0, 0, 1]])
    result = identify(identity_set, a, b)
    assert (result.identities, result.crops, result.probes) == (3, 5, 4)
    assert result.rank1_a == 1.0 and result.rank1_b == 0.75 and result.difference == -0.25
    assert result.agreement == 0.75
    assert result.disagreements == [{"crop": "bob/1", "person": "bob", "a": "bob", "b": "cy"}]
