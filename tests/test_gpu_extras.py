"""pyproject.toml's GPU extras: each is one CUDA major, bounded above, and ``diagnose`` knows them all."""

from __future__ import annotations

import re

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

from arcface_trt.diagnose.cuda_stack import CUDA_STACKS
from tests.support.paths import REPO

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11's tomllib")

#: The packages of a GPU stack whose builds are tied to one CUDA major, and how each says which.
CUDA_TIED = ("tensorrt", "cuda-python", "nvidia-ml-py")


def _extras() -> dict[str, list[Requirement]]:
    data = tomllib.loads((REPO / "pyproject.toml").read_text())
    return {name: [Requirement(r) for r in reqs] for name, reqs in data["project"]["optional-dependencies"].items()}


def _expanded(name: str, extras: dict[str, list[Requirement]]) -> list[Requirement]:
    """An extra's requirements, with arcface-trt[other] replaced by the other extra's."""
    out = []
    for req in extras[name]:
        if req.name == "arcface-trt":
            out += [r for other in sorted(req.extras) for r in _expanded(other, extras)]
        else:
            out.append(req)
    return out


def cuda_major(req: Requirement) -> int:
    """The CUDA major one GPU requirement pins, after checking it is bounded above within that major's line.

    ``tensorrt-cuNN`` names it (TensorRT's own major is bounded: a new TensorRT is untested); cuda-python and
    nvidia-ml-py carry it as their version's major, so ``>=N.x,<N+1`` pins it.
    """
    lower = [Version(s.version) for s in req.specifier if s.operator in (">=", "==", "~=")]
    upper = [Version(s.version) for s in req.specifier if s.operator == "<"]
    assert lower and upper, f"{req} needs a lower and an upper bound"
    named = re.fullmatch(r"tensorrt-cu(\d+)", req.name)
    if named:
        assert upper[0].major == lower[0].major + 1 and upper[0].minor == 0, f"{req}: bound TensorRT's major"
        return int(named.group(1))
    assert req.name != "tensorrt", "the tensorrt metapackage follows NVIDIA's newest CUDA: name tensorrt-cuNN"
    assert upper[0] == Version(f"{lower[0].major + 1}"), f"{req}: stay within CUDA {lower[0].major}"
    return lower[0].major


def test_each_gpu_extra_pins_one_cuda_major_with_upper_bounds() -> None:
    extras = _extras()
    gpu = sorted(name for name in extras if name.startswith("gpu"))
    assert {"gpu", "gpu-cu12", "gpu-cu13"} <= set(gpu)
    for name in gpu:
        reqs = _expanded(name, extras)
        tied = [r for r in reqs if r.name.startswith(CUDA_TIED)]
        assert {r.name.split("-cu")[0] for r in tied} == set(CUDA_TIED), f"[{name}] misses one of {CUDA_TIED}"
        majors = {r.name: cuda_major(r) for r in tied}
        assert len(set(majors.values())) == 1, f"[{name}] mixes CUDA majors: {majors}"
        suffix = re.fullmatch(r"gpu-cu(\d+)", name)
        if suffix:
            assert set(majors.values()) == {int(suffix.group(1))}, f"[{name}] is not CUDA {suffix.group(1)}"
    # The plain name is the CUDA 12 stack (the TensorRT API dumps the code is checked against are cu12 wheels).
    assert _expanded("gpu", extras) == extras["gpu-cu12"]


def test_the_checker_rejects_unpinned_or_mixed_extras() -> None:
    for loose in ("tensorrt>=10.0", "tensorrt-cu12>=10.16", "cuda-python>=12.0", "cuda-python>=12.9,<14"):
        try:
            cuda_major(Requirement(loose))
        except AssertionError:
            continue
        raise AssertionError(f"{loose} passed as pinned")
    assert cuda_major(Requirement("tensorrt-cu13>=11.4,<12")) == 13


def test_diagnose_knows_every_gpu_extra() -> None:
    extras = _extras()
    for major, stack in CUDA_STACKS.items():
        assert stack.extra == f"gpu-cu{major}" and stack.extra in extras
    assert {f"gpu-cu{m}" for m in CUDA_STACKS} == {name for name in extras if name.startswith("gpu-cu")}
