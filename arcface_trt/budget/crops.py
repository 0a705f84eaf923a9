"""The calibration and evaluation crops of a drift-budget search, disjoint by identity.

A search judges each candidate on crops its calibration never saw. By default both sets come
from the seven real sample faces (:mod:`arcface_trt.faces`): four identities calibrate and the
other three evaluate, each with seeded augmentation. ``--calib-images`` / ``--eval-images``
(a folder, a text file listing image paths, or a ``.npy``) replace either set. Every set has a
digest of its pixels, which keys the cached sensitivities, and a record of where it came from,
which goes in the manifest.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from arcface_trt.embed.sources import ReadCrops, read_crops
from arcface_trt.errors import InputError
from arcface_trt.faces import sample_faces
from arcface_trt.precision.int8 import CalibrationSettings
from arcface_trt.records import Record

log = logging.getLogger("arcface_trt")

#: Sample-face identities each default set shows (indices into the seven faces; Tom Hanks is 0).
CALIBRATION_IDENTITIES = (0, 1, 2, 3)
EVALUATION_IDENTITIES = (4, 5, 6)
#: The default evaluation set: crops and augmentation seed.
EVALUATION_SAMPLES = 60
EVALUATION_SEED = 1
#: Fewest evaluation crops a search accepts: the worst sample of fewer says little.
MIN_EVALUATION_CROPS = 50


@dataclass(frozen=True)
class EvaluationSettings(Record):
    """Where the evaluation crops come from: ``images`` (folder, list file or ``.npy``), else seeded sample faces."""

    images: str | None = None
    samples: int = EVALUATION_SAMPLES
    seed: int = EVALUATION_SEED

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record, with the identities the seeded crops show."""
        if self.images is not None:
            return {"images": self.images}
        return {"images": None, "samples": self.samples, "seed": self.seed, "identities": list(EVALUATION_IDENTITIES)}


@dataclass(frozen=True)
class CropSet:
    """Crops, a record of their source, and a sha256 of their pixels (the set's identity in cache keys)."""

    crops: Any = field(repr=False)
    source: dict[str, Any]
    digest: str

    def __len__(self) -> int:
        return len(self.crops)

    def to_dict(self) -> dict[str, Any]:
        """The source record with the crop count and digest."""
        return {**self.source, "crops": len(self.crops), "sha256": self.digest}


def crop_digests(crops: Any) -> list[str]:
    """sha256 of each crop's shape and pixels."""
    return [hashlib.sha256(f"{np.shape(c)}".encode() + np.ascontiguousarray(c).tobytes()).hexdigest() for c in crops]


def _crop_set(crops: Any, source: dict[str, Any]) -> CropSet:
    digest = hashlib.sha256("".join(crop_digests(crops)).encode()).hexdigest()
    return CropSet(crops, source, digest)


def calibration_settings_for_search(settings: CalibrationSettings) -> CalibrationSettings:
    """``settings`` with the search's default calibration identities when no images are given."""
    if settings.images is not None or settings.identities is not None:
        return settings
    return replace(settings, identities=CALIBRATION_IDENTITIES)


def _read(images: str, limit: int | None, option: str, what: str) -> ReadCrops:
    """The crops of a folder, list file or ``.npy``; errors name the ``option``."""
    try:
        read = read_crops(images, limit)
    except InputError as exc:
        raise InputError(f"{option}: {exc}") from None
    if read.skipped:
        log.warning("%s: skipped %d unreadable file(s) in %s", what, read.skipped, images)
    return read


def calibration_set(settings: CalibrationSettings) -> CropSet:
    """The calibration crops ``settings`` name (see :func:`calibration_settings_for_search`).

    ``settings.images`` may be a folder, a list file or a ``.npy``: its first ``samples`` readable crops.
    """
    record = settings.to_dict()
    source = {key: record[key] for key in ("images", "samples", "seed", "identities")}
    if settings.images is None:
        return _crop_set(sample_faces(settings.samples, settings.seed, settings.identities), source)
    read = _read(settings.images, settings.samples, "--calib-images", "calibration")
    return _crop_set(read.crops, {**source, "skipped": read.skipped})


def evaluation_set(settings: EvaluationSettings) -> CropSet:
    """The evaluation crops: every readable crop of ``settings.images``, else the seeded held-out identities.

    Fewer than :data:`MIN_EVALUATION_CROPS` is an :class:`InputError` naming ``--eval-images``.
    """
    if settings.images is None:
        return _crop_set(sample_faces(settings.samples, settings.seed, EVALUATION_IDENTITIES), settings.to_dict())
    read = _read(settings.images, None, "--eval-images", "evaluation")
    if len(read.crops) < MIN_EVALUATION_CROPS:
        raise InputError(
            f"--eval-images: {settings.images} has {len(read.crops)} readable crop(s); a drift-budget search needs at "
            f"least {MIN_EVALUATION_CROPS} held-out crops to judge the worst sample"
        )
    return _crop_set(read.crops, {**settings.to_dict(), "skipped": read.skipped})


def check_disjoint(calibration: CropSet, evaluation: CropSet) -> None:
    """InputError when a crop is in both sets: the evaluation must be held out from the calibration."""
    shared = set(crop_digests(calibration.crops)).intersection(crop_digests(evaluation.crops))
    if shared:
        raise InputError(
            f"{len(shared)} crop(s) are both in the calibration and in the evaluation images; "
            "evaluate on faces the calibration never saw (other people)"
        )
