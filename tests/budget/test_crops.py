"""Calibration and evaluation crops: disjoint by identity by default, overridable, at least 50 to evaluate on."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from arcface_trt.budget.crops import (
    CALIBRATION_IDENTITIES,
    EVALUATION_IDENTITIES,
    EvaluationSettings,
    calibration_set,
    calibration_settings_for_search,
    check_disjoint,
    crop_digests,
    evaluation_set,
)
from arcface_trt.errors import InputError
from arcface_trt.faces import base_faces, sample_faces
from arcface_trt.precision.int8 import CalibrationSettings


def _identity_of(crop: np.ndarray) -> int:
    """The sample face a crop shows (augmentation switched off: every crop is its face as it is)."""
    return next(i for i, face in enumerate(base_faces()) if np.array_equal(crop, face))


@pytest.fixture
def unaugmented(monkeypatch: pytest.MonkeyPatch) -> None:
    """Seeded crops without their augmentation, so each one can be traced to its identity."""
    from arcface_trt import faces

    monkeypatch.setattr(faces, "_augment", lambda face, rng: face)


def test_the_default_sets_show_different_people(unaugmented: None) -> None:
    settings = calibration_settings_for_search(CalibrationSettings(samples=24))
    calibration, evaluation = calibration_set(settings), evaluation_set(EvaluationSettings())
    assert set(CALIBRATION_IDENTITIES).isdisjoint(EVALUATION_IDENTITIES)
    assert len(evaluation) == 60 and len(calibration) == 24
    assert {_identity_of(c) for c in calibration.crops} == set(CALIBRATION_IDENTITIES)
    assert {_identity_of(c) for c in evaluation.crops} == set(EVALUATION_IDENTITIES)
    check_disjoint(calibration, evaluation)
    # Where they came from, with the seeds, is recorded (and goes in the manifest).
    assert evaluation.to_dict() == {
        "images": None,
        "samples": 60,
        "seed": 1,
        "identities": [4, 5, 6],
        "crops": 60,
        "sha256": evaluation.digest,
    }
    assert calibration.to_dict()["identities"] == [0, 1, 2, 3] and calibration.to_dict()["seed"] == 0


def test_sample_faces_draw_only_the_identities_asked_for(unaugmented: None) -> None:
    assert [_identity_of(c) for c in sample_faces(5, seed=2, identities=(5, 6))] == [5, 6, 5, 6, 5]
    assert [_identity_of(c) for c in sample_faces(9, seed=2)] == [0, 1, 2, 3, 4, 5, 6, 0, 1]


def test_sample_faces_keep_their_historic_default() -> None:
    assert np.array_equal(sample_faces(10, seed=3), sample_faces(10, seed=3, identities=range(7)))


def test_evaluation_images_come_from_a_folder_a_list_or_an_npy(tmp_path: Path) -> None:
    import cv2

    crops = sample_faces(55, seed=7, identities=EVALUATION_IDENTITIES)
    np.save(tmp_path / "eval.npy", crops)
    folder = tmp_path / "eval"
    folder.mkdir()
    for i, crop in enumerate(crops):
        cv2.imwrite(str(folder / f"{i:03d}.png"), crop)
    (folder / "broken.jpg").write_bytes(b"not an image")
    (tmp_path / "eval.txt").write_text("\n".join(f"eval/{i:03d}.png" for i in range(55)) + "\n")
    from_npy = evaluation_set(EvaluationSettings(images=str(tmp_path / "eval.npy")))
    from_folder = evaluation_set(EvaluationSettings(images=str(folder)))
    from_list = evaluation_set(EvaluationSettings(images=str(tmp_path / "eval.txt")))
    assert len(from_npy) == len(from_folder) == len(from_list) == 55
    assert from_npy.digest == from_folder.digest == from_list.digest  # PNG is lossless: the same pixels
    assert from_folder.to_dict()["skipped"] == 1 and from_folder.to_dict()["images"] == str(folder)


def test_fewer_than_50_evaluation_crops_is_an_error_naming_the_option(tmp_path: Path) -> None:
    np.save(tmp_path / "few.npy", sample_faces(12, seed=1))
    with pytest.raises(InputError, match=r"--eval-images: .*has 12 readable crop\(s\).*at least 50"):
        evaluation_set(EvaluationSettings(images=str(tmp_path / "few.npy")))
    with pytest.raises(InputError, match=r"^--eval-images: "):
        evaluation_set(EvaluationSettings(images=str(tmp_path / "missing")))


def test_calibration_images_may_be_an_npy_and_may_not_share_a_crop_with_the_evaluation(tmp_path: Path) -> None:
    shared = sample_faces(60, seed=1, identities=EVALUATION_IDENTITIES)
    np.save(tmp_path / "calib.npy", shared[:20])
    calibration = calibration_set(CalibrationSettings(images=str(tmp_path / "calib.npy"), samples=16))
    assert len(calibration) == 16
    with pytest.raises(InputError, match=r"16 crop\(s\) are both in the calibration and in the evaluation"):
        check_disjoint(calibration, evaluation_set(EvaluationSettings()))
    assert len(set(crop_digests(shared))) == 60  # augmentation makes every crop distinct
