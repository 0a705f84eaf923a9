"""The README's Python example, run as written in a real process on the fake TensorRT and a fake GPU."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.support.cli import run_python
from tests.support.paths import REPO

#: Installs the fake TensorRT (shape argv[1]) and an H100, gives the example its face crops, runs it.
HARNESS = """
import json, sys
import pytest
from tests.support.fakes import install_fakes
install_fakes(pytest.MonkeyPatch(), sys.argv[1])
from arcface_trt.faces import sample_faces
namespace = {"face_crops": sample_faces(4, seed=0)}
exec(compile(sys.argv[2], "README.md", "exec"), namespace)
print("INFO=" + json.dumps(namespace["embedder"].info().to_dict()))
print("SHAPE=" + json.dumps(list(namespace["embeddings"].shape)))
"""


def readme_api_example() -> str:
    """The first Python block under the README's "Python API" heading."""
    text = (REPO / "README.md").read_text()
    section = text.split("\n## Python API\n", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.DOTALL)
    assert match, "README's Python API section has no python block"
    return match.group(1)


@pytest.mark.parametrize("where", ["checkout", "elsewhere"])
def test_the_readme_example_runs_tensorrt_from_any_folder(where: str, tmp_path: Path) -> None:
    """From the checkout (the shipped config is read: arcface_tensorrt.enabled unset) and from a folder with no
    config (built-in defaults): naming tensorrt runs TensorRT, no fallback, no warning."""
    example = readme_api_example()
    assert 'backend_type="tensorrt"' in example and "allow_cpu_fallback=True" in example
    result = run_python("-c", HARNESS, "10", example, cwd=REPO if where == "checkout" else tmp_path, timeout=600)
    assert result.returncode == 0, result.stderr
    fields = dict(line.split("=", 1) for line in result.stdout.splitlines() if line.startswith(("INFO=", "SHAPE=")))
    info = json.loads(fields["INFO"])
    assert info["backend"] == "tensorrt" and info["requested_backend"] == "tensorrt"
    assert info["fallback_reason"] is None and info["providers"][0].startswith("TensorRT 10.16")
    assert info["engine_path"].endswith("-sm90.plan")
    assert json.loads(fields["SHAPE"]) == [4, 512]
    assert "falling back" not in result.stderr
