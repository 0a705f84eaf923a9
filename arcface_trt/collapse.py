"""The collapse guard: clearly different faces whose embeddings come out nearly identical mean the input is wrong.

The statistic is the mean pairwise cosine of the seven distinct real sample faces (the faces the
insightface wheel ships, unaugmented: :func:`arcface_trt.faces.base_faces`). The built-in r18/r50
give about -0.05 and trained models about 0.1; a model fed the wrong input (normalised twice, a
wrong mean or std) gives above 0.99, whatever backend runs it and however well two backends agree.
Above ``validation.collapse_cosine`` (0.9 by default) the embeddings are called collapsed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from arcface_trt.backends.base import Embedder
from arcface_trt.faces import base_faces
from arcface_trt.records import Record

#: What to do about collapsed embeddings (diagnose's fix, compare's and embed's warnings).
FIX = (
    "check the input mean/std: set embedding.input_mean and embedding.input_std (or --input-mean/--input-std) "
    "to what the model was trained with (0 and 1 when its graph normalises itself, raw pixels), "
    "and embedding.input_color (--input-color) for a BGR model"
)


def mean_pairwise_cosine(embeddings: np.ndarray) -> float:
    """Mean cosine over every pair of different rows of L2-normalised ``embeddings`` (at least two rows)."""
    sims = np.asarray(embeddings, dtype=np.float64) @ np.asarray(embeddings, dtype=np.float64).T
    return float(sims[~np.eye(len(sims), dtype=bool)].mean())


@dataclass(frozen=True)
class CollapseCheck(Record):
    """The collapse statistic of one backend: truthy when the embeddings did not collapse."""

    backend: str
    mean_cosine: float
    threshold: float
    collapsed: bool
    faces: int
    #: The input spec the backend applied, in words.
    input_spec: str

    def __bool__(self) -> bool:
        return not self.collapsed

    def message(self) -> str:
        """One line naming the statistic, the input spec and what to check."""
        return (
            f"collapsed embeddings from {self.backend}: {self.faces} different real faces have mean pairwise cosine "
            f"{self.mean_cosine:.4f} (above {self.threshold:g}): the input spec ({self.input_spec}) is likely wrong; "
            "check the input mean/std (--input-mean/--input-std, embedding.input_mean/input_std)"
        )

    def verdict(self) -> str:
        """Short form for a report that shows the input spec beside it."""
        return (
            f"collapse guard, {self.backend}: {self.faces} different faces have mean cosine {self.mean_cosine:.4f} "
            f"(above {self.threshold:g}): the input spec is likely wrong; check the input mean/std"
        )


def check_collapse(embedder: Embedder, threshold: float) -> CollapseCheck:
    """Embed the seven distinct sample faces with ``embedder`` and judge their mean pairwise cosine."""
    faces = list(base_faces())
    cosine = mean_pairwise_cosine(embedder.encode(faces))
    return CollapseCheck(
        backend=embedder.info().backend,
        mean_cosine=cosine,
        threshold=threshold,
        collapsed=not math.isfinite(cosine) or cosine > threshold,
        faces=len(faces),
        input_spec=embedder.model.input_spec.describe(),
    )
