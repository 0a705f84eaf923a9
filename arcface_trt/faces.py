"""Seeded face-like inputs built from the real faces that the insightface wheel ships.

Seven identities: the aligned ``Tom_Hanks_54745.png`` and six faces of the group
photo ``t1.jpg`` aligned with InsightFace's ``norm_crop`` from measured landmarks.
Samples are those faces with flips, shifts, brightness/contrast changes, blur and
noise; never zeros or plain noise, whose activation ranges mislead parity and
calibration.
"""

from __future__ import annotations

import functools
import importlib.util
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from arcface_trt.errors import BackendUnavailableError
from arcface_trt.lazy import install_hint, lazy_import

cv2 = lazy_import("cv2")
face_align = lazy_import("insightface.utils.face_align")

#: Five landmarks (eyes, nose, mouth corners; x, y) of the six faces in t1.jpg.
T1_LANDMARKS = np.array(
    [
        [[84.7, 327.5], [124.0, 305.3], [119.5, 337.2], [112.2, 370.1], [148.4, 350.2]],
        [[289.4, 211.4], [317.6, 193.9], [302.9, 227.0], [312.7, 244.0], [337.7, 230.0]],
        [[492.1, 318.5], [540.1, 332.0], [504.6, 364.1], [482.2, 366.9], [526.8, 379.8]],
        [[760.1, 398.7], [801.7, 405.2], [771.7, 434.6], [762.9, 435.3], [806.0, 440.9]],
        [[910.9, 116.8], [949.9, 116.1], [919.9, 151.3], [932.7, 172.5], [960.5, 170.7]],
        [[1147.4, 325.3], [1190.7, 322.9], [1165.8, 348.3], [1153.5, 366.1], [1193.8, 364.4]],
    ],
    dtype=np.float32,
)


def insightface_images_dir() -> Path:
    """Folder of the sample images inside the installed insightface package (without importing it)."""
    spec = importlib.util.find_spec("insightface")
    if spec is None or not spec.submodule_search_locations:
        raise BackendUnavailableError(f"the insightface package is not installed: {install_hint('insightface')}")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "images"


def _read(path: Path) -> np.ndarray:
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise BackendUnavailableError(f"cannot read insightface sample image {path}")
    return image


@functools.lru_cache(maxsize=1)
def base_faces() -> tuple[np.ndarray, ...]:
    """The seven real aligned 112x112 BGR face crops (Tom Hanks first)."""
    images = insightface_images_dir()
    faces = [_read(images / "Tom_Hanks_54745.png")]
    group = _read(images / "t1.jpg")
    with warnings.catch_warnings():
        # scikit-image deprecates the estimate() call insightface makes; not ours to fix
        warnings.simplefilter("ignore", FutureWarning)
        faces.extend(face_align.norm_crop(group, landmark=points, image_size=112) for points in T1_LANDMARKS)
    for face in faces:
        face.setflags(write=False)
    return tuple(faces)


def _augment(face: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    out = face
    if rng.random() < 0.5:
        out = out[:, ::-1]
    dx, dy = rng.integers(-4, 5, size=2)
    matrix = np.float32([[1, 0, dx], [0, 1, dy]])
    out = cv2.warpAffine(np.ascontiguousarray(out), matrix, (112, 112), borderMode=cv2.BORDER_REFLECT)
    alpha = rng.uniform(0.75, 1.25)
    beta = rng.uniform(-25, 25)
    work = out.astype(np.float32) * alpha + beta
    if rng.random() < 0.3:
        work = cv2.GaussianBlur(work, (0, 0), sigmaX=rng.uniform(0.5, 1.2))
    work += rng.normal(0.0, rng.uniform(0.0, 6.0), size=work.shape).astype(np.float32)
    return np.clip(np.rint(work), 0, 255).astype(np.uint8)


def sample_faces(n: int, seed: int = 0, identities: Sequence[int] | None = None) -> np.ndarray:
    """``n`` seeded face crops, shape ``(n, 112, 112, 3)`` uint8 BGR.

    ``identities``: which of the seven faces to draw from (indices into :func:`base_faces`; None: all
    seven), so that two sets can be disjoint by identity. Sample ``i`` shows ``identities[i % len]``;
    the first ``len(identities)`` are the faces as they are, later ones are augmented. The same
    ``(n, seed, identities)`` always gives the same array.
    """
    if n < 1:
        raise ValueError("n must be >= 1")
    faces = base_faces()
    chosen = [faces[i] for i in identities] if identities is not None else list(faces)
    if not chosen:
        raise ValueError("identities must name at least one face")
    rng = np.random.default_rng(seed)
    out = np.empty((n, 112, 112, 3), dtype=np.uint8)
    for i in range(n):
        face = chosen[i % len(chosen)]
        out[i] = face if i < len(chosen) else _augment(face, rng)
    return out
