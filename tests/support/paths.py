"""Where things are: the checkout under test, its package, and the recorded TensorRT APIs."""

from __future__ import annotations

from pathlib import Path

#: The root of the checkout under test (the folder holding ``arcface_trt/`` and ``tests/``).
REPO = Path(__file__).resolve().parents[2]

#: The package under test.
PACKAGE = REPO / "arcface_trt"

#: Where the recorded real TensorRT module APIs may be: ``../shared`` beside the checkout, or ``./shared``.
TENSORRT_API_DIRS = (
    REPO.parent / "shared" / "reference" / "tensorrt-api",
    REPO / "shared" / "reference" / "tensorrt-api",
)
