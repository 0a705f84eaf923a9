"""The recorded real TensorRT module APIs (``shared/reference/tensorrt-api/tensorrt-{10.16.1,11.4.0}.json``).

The fake TensorRT is checked against them (``tests/engine/test_fake_conformance.py``), and
so is every ``trt.X`` chain in the package (``tests/engine/test_trt_api_static.py``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.support.fake_trt import VERSIONS
from tests.support.paths import TENSORRT_API_DIRS

FILES = {"10": "tensorrt-10.16.1.json", "11": "tensorrt-11.4.0.json"}


def reference_dir() -> Path:
    """Where the recorded API lives (``../shared`` beside the checkout, or ``./shared``); skips the test if nowhere."""
    for candidate in TENSORRT_API_DIRS:
        if (candidate / FILES["10"]).exists():
            return candidate
    pytest.skip("shared/reference/tensorrt-api is not present beside this checkout")


def load_reference(major: str) -> dict[str, Any]:
    """The recorded module of TensorRT ``major`` ("10" or "11"): name -> record."""
    data = json.loads((reference_dir() / FILES[major]).read_text())
    assert data["version"] == VERSIONS[major]
    return data["module"]
