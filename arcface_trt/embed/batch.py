"""One embedded batch: what a backend (in this process or on a Ray worker) hands to the committer."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class EmbeddedBatch:
    """One batch out of a backend: keys with their L2-normalised embeddings, plus what could not be read."""

    keys: list[str]
    embeddings: np.ndarray
    failures: list[tuple[str, str]]
    backend: str
    precision: str
