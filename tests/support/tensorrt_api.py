"""The recorded real TensorRT module APIs, vendored in ``tests/support/tensorrt-api/`` (see its README).

The fake TensorRT is checked against them (``tests/engine/test_fake_conformance.py``), and so
is every ``trt.X`` chain in the package (``tests/engine/test_trt_api_static.py``). They are
part of the repository: a missing file is an error, never a skip.
"""

from __future__ import annotations

import functools
import json
from typing import Any

from tests.support.faketrt import VERSIONS
from tests.support.paths import TENSORRT_API_VENDORED

FILES = {"10": "tensorrt-10.16.1.json", "11": "tensorrt-11.4.0.json"}


@functools.lru_cache(maxsize=2)
def _load(major: str) -> dict[str, Any]:
    data = json.loads((TENSORRT_API_VENDORED / FILES[major]).read_text())
    if data["version"] != VERSIONS[major]:
        raise AssertionError(f"{FILES[major]} records TensorRT {data['version']}, the fake is {VERSIONS[major]}")
    return data["module"]


def load_reference(major: str) -> dict[str, Any]:
    """The recorded module of TensorRT ``major`` ("10" or "11"): name -> record."""
    return _load(major)
