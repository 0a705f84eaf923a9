"""A toy pair set from the seven real faces the insightface wheel ships (``arcface-trt make-pairs``).

Same-person pairs are two different seeded augmentations (flips, shifts, brightness/contrast,
blur, noise: :func:`arcface_trt.faces.sample_faces`) of one of the seven faces; different-person
pairs join augmentations of two different faces. Pairs alternate same/different, so every fold
of the 10-fold protocol holds both. It is a toy: seven people and augmented copies of one photo
each, far easier than LFW, CFP-FP or AgeDB-30; it shows the protocol working, not how a model
verifies real people.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from arcface_trt.errors import InputError
from arcface_trt.faces import base_faces, sample_faces
from arcface_trt.lazy import lazy_import
from arcface_trt.records import Record
from arcface_trt.verification.binfile import write_bin

cv2 = lazy_import("cv2")

#: Distinct augmented crops per face: 7 x 32 images to embed, 3472 possible same-person pairs.
IMAGES_PER_IDENTITY = 32
IMAGE_FORMATS = ("jpg", "png")
#: Two pairs per fold at least: the 10-fold protocol needs both kinds in each training set.
MIN_PAIRS = 20


@dataclass
class DemoPairs(Record):
    """What :func:`write_demo_pairs` wrote."""

    path: str
    pairs: int
    same_pairs: int
    different_pairs: int
    identities: int
    distinct_images: int
    image_format: str
    seed: int
    bytes: int


def _encode(image: np.ndarray, image_format: str) -> bytes:
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if image_format == "jpg" else []
    ok, buffer = cv2.imencode(f".{image_format}", image, params)
    if not ok:
        raise InputError(f"OpenCV cannot encode {image_format} images here")
    return buffer.tobytes()


def demo_pairs(n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Crops and pairs ``(crops, left, right, issame)``: pair ``k`` is ``crops[left[k]]``, ``crops[right[k]]``."""
    people = len(base_faces())
    crops = sample_faces(people * IMAGES_PER_IDENTITY, seed)
    # sample_faces gives crop i the face i % people.
    by_person = np.arange(len(crops)).reshape(IMAGES_PER_IDENTITY, people).T
    rng = np.random.default_rng(seed)
    left = np.empty(n_pairs, dtype=np.int64)
    right = np.empty(n_pairs, dtype=np.int64)
    issame = np.arange(n_pairs) % 2 == 0
    for k in range(n_pairs):
        if issame[k]:
            person = rng.integers(people)
            left[k], right[k] = rng.choice(by_person[person], size=2, replace=False)
        else:
            first, second = rng.choice(people, size=2, replace=False)
            left[k], right[k] = rng.choice(by_person[first]), rng.choice(by_person[second])
    return crops, left, right, issame


def write_demo_pairs(path: str | Path, n_pairs: int = 2000, seed: int = 0, image_format: str = "jpg") -> DemoPairs:
    """Write the toy pair set as an InsightFace ``.bin`` (atomically) and say what it holds."""
    path = Path(path)
    if path.suffix.lower() != ".bin":
        raise InputError(f"--out must end in .bin (compare reads a pair set's format from its suffix), got {path}")
    if path.is_dir():
        raise InputError(f"--out is a folder, give a file path: {path}")
    if n_pairs < MIN_PAIRS:
        raise InputError(f"--n-pairs must be at least {MIN_PAIRS} (10 folds of same and different pairs)")
    if image_format not in IMAGE_FORMATS:
        raise InputError(f"--image-format must be one of {', '.join(IMAGE_FORMATS)}, got {image_format!r}")
    crops, left, right, issame = demo_pairs(n_pairs, seed)
    encoded = [_encode(crop, image_format) for crop in crops]
    bins = [encoded[i] for pair in zip(left, right, strict=True) for i in pair]
    write_bin(path, bins, issame.tolist())
    return DemoPairs(
        path=str(path),
        pairs=n_pairs,
        same_pairs=int(issame.sum()),
        different_pairs=int((~issame).sum()),
        identities=len(base_faces()),
        distinct_images=len(np.unique(np.concatenate([left, right]))),
        image_format=image_format,
        seed=seed,
        bytes=path.stat().st_size,
    )
