"""The scoring core's embedding loop: chunks, and mirror images added with flip (as InsightFace evaluates)."""

from __future__ import annotations

import numpy as np

from arcface_trt.parity import measure
from arcface_trt.preprocess import l2_normalize


class HalvesEmbedder:
    """Embeds a crop as the mean of its left half and of its right half: a mirror image swaps the two."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def ensure_ready(self) -> None:
        pass

    def encode(self, crops) -> np.ndarray:
        crops = list(crops)
        assert all(c.flags.c_contiguous for c in crops)  # what the preprocessing (cv2) needs
        self.calls.append(len(crops))
        halves = [[c[:, :56].mean() + 1.0, c[:, 56:].mean() + 1.0] for c in crops]
        return l2_normalize(np.array(halves))


def test_measure_without_and_with_flip(faces: np.ndarray) -> None:
    embedder = HalvesEmbedder()
    plain, fps = measure(embedder, faces, chunk=5)
    assert embedder.calls == [5, 5, 2] and fps > 0
    assert np.allclose(plain, embedder.encode(faces))
    embedder.calls.clear()
    flipped, _ = measure(embedder, faces, chunk=5, flip=True)
    assert embedder.calls == [5, 5, 5, 5, 2, 2]
    mirrored = embedder.encode([np.ascontiguousarray(f[:, ::-1]) for f in faces])
    assert np.allclose(flipped, l2_normalize(plain + mirrored))
    # Left and right swap under the mirror, so the flipped embedding is symmetric: both halves weigh the same.
    assert np.allclose(flipped[:, 0], flipped[:, 1]) and not np.allclose(plain[:, 0], plain[:, 1])
