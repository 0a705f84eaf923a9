"""The fakes cannot drift from the real APIs.

For each fake TensorRT shape, every public module name, class member (over the class's whole
MRO: a member added on a shared base class counts) and enum value must exist in the recorded
real module of that version (``tests/support/tensorrt-api/tensorrt-{10.16.1,11.4.0}.json``),
methods must be methods there and properties properties, and each method's parameters (names,
order, which have defaults) must equal one overload of the recorded pybind ``sig``. Enum
values must equal those of NVIDIA's headers (``enum-values.json`` beside the dumps), whose
names must equal the dumps' enum names. The fake cuda runtime is checked the same way against
real cuda-python when that is installed.
"""

from __future__ import annotations

import inspect
import re
from typing import Any

import pytest

from tests.support.fakecuda import FakeCuda
from tests.support.faketrt import make_tensorrt
from tests.support.faketrt.enums import EnumValue, header_values, members
from tests.support.paths import TENSORRT_API_SHARED, TENSORRT_API_VENDORED
from tests.support.tensorrt_api import FILES, load_reference


def split_params(text: str) -> list[str]:
    """Split a parameter list at top-level commas (types hold brackets and <...: 0> defaults)."""
    out, depth, cur = [], 0, ""
    for ch in text:
        if ch in "[(<":
            depth += 1
        elif ch in "])>":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def overloads(sig: str, name: str) -> list[list[tuple[str, bool]]]:
    """``[(param, has_default), ...]`` per overload of a recorded pybind signature (self dropped)."""
    parts = re.split(r"\s\|\s(?=\d+\.\s)", sig)
    result = []
    for part in parts:
        part = re.sub(r"^\d+\.\s*", "", part.strip())
        match = re.match(rf"^{re.escape(name)}\((.*)\)\s*->", part)
        if not match:
            continue
        params = []
        for p in split_params(match.group(1)):
            pname = p.split(":", 1)[0].split("=", 1)[0].strip()
            if pname in ("self", "/", "*"):
                continue
            params.append((pname, "=" in p))
        result.append(params)
    return result


def fake_params(func: Any) -> list[tuple[str, bool]]:
    params = list(inspect.signature(func).parameters.values())
    return [(p.name, p.default is not inspect.Parameter.empty) for p in params if p.name != "self"]


def public(obj: Any) -> list[str]:
    return [n for n in vars(obj) if not n.startswith("_")]


def class_members(cls: type) -> dict[str, Any]:
    """Every public attribute a class offers, from itself and every base but ``object`` (nearest wins)."""
    found: dict[str, Any] = {}
    for klass in cls.__mro__[:-1]:
        for name, value in vars(klass).items():
            if not name.startswith("_"):
                found.setdefault(name, value)
    return found


def check_class(cls: type, record: dict[str, Any], where: str) -> list[str]:
    problems = []
    members = record.get("members", {})
    enum_values = set(record.get("enum") or [])
    for name, value in class_members(cls).items():
        if name not in members:
            problems.append(f"{where}.{name} does not exist in the real module")
            continue
        kind = members[name]["kind"]
        if isinstance(value, property):
            if kind != "property":
                problems.append(f"{where}.{name} is a property in the fake but a {kind} in the real module")
        elif isinstance(value, EnumValue):
            if record.get("enum") is not None and name not in enum_values:
                problems.append(f"{where}.{name} is not a value of the real enum")
        elif isinstance(value, type):
            if kind != "pybind11_type":
                problems.append(f"{where}.{name} is a class in the fake but a {kind} in the real module")
        elif callable(value):
            if kind != "instancemethod":
                problems.append(f"{where}.{name} is a method in the fake but a {kind} in the real module")
                continue
            recorded = overloads(members[name]["sig"], name)
            if fake_params(value) not in recorded:
                problems.append(f"{where}.{name}{fake_params(value)} matches no recorded signature {recorded}")
        elif kind not in ("pybind11_static_property", "property"):
            problems.append(f"{where}.{name}: unexpected fake attribute of type {type(value).__name__}")
    return problems


def conformance_problems(module: Any, reference: dict[str, Any]) -> list[str]:
    problems = []
    for name in public(module):
        value = getattr(module, name)
        if name not in reference:
            problems.append(f"tensorrt.{name} does not exist in the real module")
            continue
        record = reference[name]
        if isinstance(value, type):
            if record.get("kind") != "pybind11_type":
                problems.append(f"tensorrt.{name} is a class in the fake but a {record.get('kind')} in the real module")
                continue
            problems += check_class(value, record, f"tensorrt.{name}")
            for nested_name, nested in vars(value).items():
                if isinstance(nested, type) and not nested_name.startswith("_"):
                    # e.g. ILogger.Severity: its values are recorded as members of kind "Severity".
                    values = {n: m for n, m in record["members"].items() if m["kind"] == nested_name}
                    nested_record = {"members": values, "enum": sorted(values)}
                    problems += check_class(nested, nested_record, f"tensorrt.{name}.{nested_name}")
        elif isinstance(value, EnumValue):
            if record.get("kind") != value._enum:
                problems.append(
                    f"tensorrt.{name} is a {value._enum} in the fake but a {record.get('kind')} in the real module"
                )
        elif callable(value) and record.get("kind") not in ("function", "builtin_function_or_method"):
            problems.append(f"tensorrt.{name} is a function in the fake but a {record.get('kind')} in the real module")
    return problems


@pytest.mark.parametrize("major", ["10", "11"])
def test_fake_tensorrt_matches_recorded_api(major: str) -> None:
    module = make_tensorrt(major, FakeCuda())
    assert conformance_problems(module, load_reference(major)) == []


@pytest.mark.parametrize("major", ["10", "11"])
def test_fake_covers_what_the_project_needs(major: str) -> None:
    """Sanity: the fakes are not empty shells (the check above could pass on nothing)."""
    module = make_tensorrt(major, FakeCuda())
    for name in ("Builder", "OnnxParser", "IBuilderConfig", "Runtime", "ICudaEngine", "IExecutionContext"):
        assert name in public(module)
    assert "execute_async_v3" in class_members(module.IExecutionContext)
    assert hasattr(module.BuilderFlag, "FP16") is (major == "10")
    assert hasattr(module.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH") is (major == "10")


def test_the_check_catches_drift() -> None:
    """A 10.x-only member in the 11.x fake, a wrong parameter name or a made-up name is reported."""
    reference = load_reference("11")
    module = make_tensorrt("11", FakeCuda())
    assert conformance_problems(module, reference) == []

    module.BuilderFlag.FP16 = EnumValue("BuilderFlag", "FP16", 99)
    module.Builder.platform_has_fast_fp16 = property(lambda self: True)

    def set_shape(self, name, min, opt, max):
        return None

    module.IOptimizationProfile.set_shape = set_shape
    module.Made_Up = type("Made_Up", (), {})
    problems = "\n".join(conformance_problems(module, reference))
    assert "tensorrt.BuilderFlag.FP16" in problems
    assert "tensorrt.Builder.platform_has_fast_fp16" in problems
    assert "tensorrt.IOptimizationProfile.set_shape" in problems
    assert "tensorrt.Made_Up" in problems


def test_a_member_added_on_a_shared_base_class_is_caught() -> None:
    """The per-version classes inherit from shared bases: a name added there must not slip through."""
    from tests.support.faketrt.builder import Builder

    module = make_tensorrt("11", FakeCuda())
    Builder.build_engine = lambda self, network, config: None  # a TensorRT 8 name
    try:
        problems = conformance_problems(module, load_reference("11"))
    finally:
        del Builder.build_engine
    assert any("tensorrt.Builder.build_engine does not exist" in p for p in problems)


@pytest.mark.parametrize("major", ["10", "11"])
def test_enum_values_are_nvidias(major: str) -> None:
    """Every fake enum value equals the header's, and the header tables name exactly the dumps' values."""
    module = make_tensorrt(major, FakeCuda())
    reference = load_reference(major)
    for name, values in header_values()[major]["enums"].items():
        enum = module.ILogger.Severity if name == "Severity" else getattr(module, name)
        assert {n: int(v) for n, v in members(enum).items()} == values, name
        if name == "Severity":
            recorded = {n for n, m in reference["ILogger"]["members"].items() if m["kind"] == "Severity"}
        else:
            recorded = set(reference[name]["enum"])
        assert recorded == set(values), f"{name}: the headers and the recorded {major}.x API name other values"


def test_the_bit_positions_the_code_relies_on() -> None:
    """What ``1 << int(flag)`` gives differs between the majors: the code must read the enum, never a number."""
    ten, eleven = header_values()["10"]["enums"], header_values()["11"]["enums"]
    assert ten["NetworkDefinitionCreationFlag"]["STRONGLY_TYPED"] == 1
    assert eleven["NetworkDefinitionCreationFlag"]["STRONGLY_TYPED"] == 0
    assert ten["BuilderFlag"]["TF32"] == eleven["BuilderFlag"]["TF32"] == 6
    assert ten["BuilderFlag"]["VERSION_COMPATIBLE"] == 13 and eleven["BuilderFlag"]["VERSION_COMPATIBLE"] == 12


def test_the_vendored_dumps_are_the_shared_ones() -> None:
    """The copies in the repository equal the steering repository's, where that is beside the checkout."""
    for name in FILES.values():
        assert (TENSORRT_API_VENDORED / name).is_file(), name  # part of the repository: never skipped
        shared = TENSORRT_API_SHARED / name
        if shared.is_file():
            assert (TENSORRT_API_VENDORED / name).read_bytes() == shared.read_bytes(), name


def test_signature_parser_reads_overloads() -> None:
    sig = (
        "1. set_input_shape(self: tensorrt.IExecutionContext, name: str, shape: tuple) -> bool | "
        "2. set_input_shape(self: tensorrt.IExecutionContext, name: str, shape: list) -> bool"
    )
    assert overloads(sig, "set_input_shape") == [[("name", False), ("shape", False)]] * 2
    sig = (
        "add_fill(self: tensorrt.INetworkDefinition, shape: tensorrt.Dims, op: tensorrt.FillOperation, "
        "output_type: tensorrt.DataType = <DataType.FLOAT: 0>) -> tensorrt.IFillLayer"
    )
    assert overloads(sig, "add_fill") == [[("shape", False), ("op", False), ("output_type", True)]]


def _real_cuda_runtime() -> Any:
    try:
        from cuda.bindings import runtime  # type: ignore[import-not-found]
    except ImportError:
        pytest.skip("cuda-python is not installed (the fake cuda runtime is checked against it where it is)")
    return runtime


def _doc_params(func: Any) -> list[str]:
    first = (func.__doc__ or "").strip().splitlines()[0]
    match = re.match(r"^\w+\((.*)\)", first)
    assert match, first
    return [p.split(":")[0].split("=")[0].split()[-1] for p in split_params(match.group(1)) if p]


def test_fake_cuda_runtime_matches_cuda_python() -> None:
    real = _real_cuda_runtime()
    fake = FakeCuda().module
    problems = []
    for name in (n for n in vars(fake) if n.startswith("cuda")):
        if not hasattr(real, name):
            problems.append(f"{name} does not exist in cuda.bindings.runtime")
            continue
        value = getattr(fake, name)
        if callable(value) and not isinstance(value, type):
            want = _doc_params(getattr(real, name))
            have = [p for p in inspect.signature(value).parameters]
            if have != want:
                problems.append(f"{name}({', '.join(have)}) != real ({', '.join(want)})")
    for enum_name in ("cudaError_t", "cudaMemcpyKind", "cudaStreamCaptureMode"):
        for member in getattr(fake, enum_name):
            real_member = getattr(getattr(real, enum_name), member.name, None)
            if real_member is None or int(real_member) != int(member):
                problems.append(f"{enum_name}.{member.name} = {int(member)} differs from cuda-python")
    assert problems == []
