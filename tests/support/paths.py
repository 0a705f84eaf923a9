"""Where things are: the checkout under test, its package, and the recorded TensorRT APIs."""

from __future__ import annotations

from pathlib import Path

#: The root of the checkout under test (the folder holding ``arcface_trt/`` and ``tests/``).
REPO = Path(__file__).resolve().parents[2]

#: The package under test.
PACKAGE = REPO / "arcface_trt"

#: The recorded real TensorRT module APIs and header enum values, kept in the repository.
TENSORRT_API_VENDORED = REPO / "tests" / "support" / "tensorrt-api"

#: The steering repository's copy beside the checkout (present on developer machines only).
TENSORRT_API_SHARED = REPO.parent / "shared" / "reference" / "tensorrt-api"

#: Real engine-inspector JSON (excerpts of NVIDIA's TensorRT Engine Explorer examples; see its README).
ENGINE_INSPECTOR_EXAMPLES = REPO / "tests" / "support" / "engine-inspector"
