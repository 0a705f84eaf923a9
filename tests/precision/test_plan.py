"""The precision plan: the one place fp16/int8/fp32 policy is decided, per target and TensorRT shape.

This file is the plan's own test: a change of policy (say, TensorRT 10's fp16 through a
mixed-precision ONNX instead of the builder flag) changes ``plan.py`` and the table below,
and nothing else; the builder, dry run and CPU engines follow the plan.
"""

from __future__ import annotations

import pytest

from arcface_trt.engine.trt_api import KNOWN_SHAPES, Capabilities
from arcface_trt.errors import ConfigError, InputError
from arcface_trt.precision.plan import (
    PATH_FP16_FLAG,
    PATH_FP16_ONNX,
    PATH_FP32,
    PATH_INT8_QDQ,
    TRANSFORM_FP16,
    TRANSFORM_NONE,
    TRANSFORM_QUANTIZE,
    TRANSFORM_REQUIRE_QDQ,
    PrecisionPlan,
    describe_known_paths,
    plans_for_known_tensorrt,
)
from tests.support.tensorrt_api import load_reference

TRT10, TRT11 = KNOWN_SHAPES["10.x"], KNOWN_SHAPES["11.x"]

#: precision, target, capabilities -> (path, transform, set flags, cleared flags, strongly typed)
POLICY = [
    ("fp32", "gpu", TRT10, (PATH_FP32, TRANSFORM_NONE, (), ("TF32",), False)),
    ("fp32", "gpu", TRT11, (PATH_FP32, TRANSFORM_NONE, (), ("TF32",), False)),
    ("fp16", "gpu", TRT10, (PATH_FP16_FLAG, TRANSFORM_NONE, ("FP16",), (), False)),
    ("fp16", "gpu", TRT11, (PATH_FP16_ONNX, TRANSFORM_FP16, (), (), True)),
    ("int8", "gpu", TRT10, (PATH_INT8_QDQ, TRANSFORM_REQUIRE_QDQ, (), (), True)),
    ("int8", "gpu", TRT11, (PATH_INT8_QDQ, TRANSFORM_REQUIRE_QDQ, (), (), True)),
    ("fp32", "cpu", None, (PATH_FP32, TRANSFORM_NONE, (), (), False)),
    ("fp16", "cpu", None, (PATH_FP16_ONNX, TRANSFORM_FP16, (), (), False)),
    ("int8", "cpu", None, (PATH_INT8_QDQ, TRANSFORM_QUANTIZE, (), (), False)),
]


@pytest.mark.parametrize(
    ("precision", "target", "caps", "want"),
    POLICY,
    ids=[f"{p}-{t}-{c.version if c else 'cpu'}" for p, t, c, _ in POLICY],
)
def test_policy(precision: str, target: str, caps: Capabilities | None, want: tuple) -> None:
    plan = PrecisionPlan.for_target(precision, target, caps)
    assert (plan.path, plan.transform, plan.set_flags, plan.clear_flags, plan.strongly_typed) == want
    assert plan.keep_fp32_nodes is None and plan.recipe == {} and plan.notes == ()


@pytest.mark.parametrize(("shape", "dump"), [("10.x", "10"), ("11.x", "11")])
def test_plans_use_only_flags_the_recorded_api_has(shape: str, dump: str) -> None:
    """Builder flags are applied by name: each one a plan names exists in that TensorRT version's BuilderFlag."""
    module = load_reference(dump)
    flags = set(module["BuilderFlag"]["enum"])
    creation = set(module["NetworkDefinitionCreationFlag"]["enum"])
    caps = KNOWN_SHAPES[shape]
    # The known shapes are the recorded APIs, read the way trt_api.capabilities() reads a module.
    assert caps.fp16_flag == ("FP16" in flags)
    assert caps.explicit_batch_flag == ("EXPLICIT_BATCH" in creation)
    assert caps.strongly_typed_flag == ("STRONGLY_TYPED" in creation)
    for precision in ("fp32", "fp16", "int8"):
        plan = PrecisionPlan.for_target(precision, "gpu", caps)
        assert set(plan.set_flags) | set(plan.clear_flags) <= flags, (precision, shape)


def test_kept_nodes_are_part_of_the_recipe_where_they_apply() -> None:
    keep = ["fc", "features"]
    onnx = PrecisionPlan.for_target("fp16", "gpu", TRT11, keep)
    assert onnx.keep_fp32_nodes == ("fc", "features") and onnx.recipe == {"keep": keep}
    assert onnx.to_dict()["keep_fp32_nodes"] == keep
    assert PrecisionPlan.for_target("fp16", "cpu", keep_fp32_nodes=[]).recipe == {"keep": []}  # keep none
    assert PrecisionPlan.for_target("fp16", "cpu").to_dict()["keep_fp32_nodes"] == "embedding head"
    # Only a mixed-precision ONNX can keep nodes in fp32: on TensorRT 10 an explicit list leaves the FP16 flag
    # (under which the builder may keep fp32 tactics anyway) for the strongly typed path, and the plan says so.
    ten = PrecisionPlan.for_target("fp16", "gpu", TRT10, keep)
    assert (ten.path, ten.transform, ten.set_flags, ten.strongly_typed) == (PATH_FP16_ONNX, TRANSFORM_FP16, (), True)
    assert ten.recipe == {"keep": keep} and "keep_fp32_nodes is set" in ten.notes[0]
    assert PrecisionPlan.for_target("fp16", "gpu", TRT10).path == PATH_FP16_FLAG
    for precision in ("fp32", "int8"):
        assert PrecisionPlan.for_target(precision, "cpu", keep_fp32_nodes=keep).recipe == {}


def test_bad_requests() -> None:
    with pytest.raises(ConfigError, match="unknown precision 'fp8'"):
        PrecisionPlan.for_target("fp8", "gpu", TRT10)
    with pytest.raises(ConfigError, match="unknown --target 'tpu'"):
        PrecisionPlan.for_target("fp16", "tpu")
    with pytest.raises(InputError, match="capabilities"):
        PrecisionPlan.for_target("fp16", "gpu")


def test_dry_run_labels_without_tensorrt() -> None:
    fp16 = plans_for_known_tensorrt("fp16")
    assert describe_known_paths(fp16) == f"{PATH_FP16_FLAG} on TensorRT 10.x; {PATH_FP16_ONNX} on TensorRT 11.x"
    assert describe_known_paths(plans_for_known_tensorrt("fp32")) == PATH_FP32
    record = PrecisionPlan.for_target("fp16", "gpu", TRT11).to_dict()
    assert record["precision_path"] == PATH_FP16_ONNX and record["strongly_typed"] is True


#: A drift budget: precision, target, capabilities -> (path, transform, strongly typed)
BUDGET_POLICY = [
    ("fp16", "gpu", TRT10, (PATH_FP16_ONNX, TRANSFORM_FP16, True)),  # one path: never the builder flag
    ("fp16", "gpu", TRT11, (PATH_FP16_ONNX, TRANSFORM_FP16, True)),
    ("int8", "gpu", TRT10, (PATH_INT8_QDQ, TRANSFORM_REQUIRE_QDQ, True)),  # the QDQ model the search made
    ("int8", "gpu", TRT11, (PATH_INT8_QDQ, TRANSFORM_REQUIRE_QDQ, True)),
    ("fp16", "cpu", None, (PATH_FP16_ONNX, TRANSFORM_FP16, False)),
    ("int8", "cpu", None, (PATH_INT8_QDQ, TRANSFORM_QUANTIZE, False)),
]


@pytest.mark.parametrize(
    ("precision", "target", "caps", "want"),
    BUDGET_POLICY,
    ids=[f"{p}-{t}-{c.version if c else 'cpu'}" for p, t, c, _ in BUDGET_POLICY],
)
def test_a_drift_budget_names_the_engine_and_keeps_fp16_on_the_mixed_precision_path(
    precision: str, target: str, caps: Capabilities | None, want: tuple
) -> None:
    plan = PrecisionPlan.for_target(precision, target, caps, drift_budget=0.002)
    assert (plan.path, plan.transform, plan.strongly_typed) == want and plan.set_flags == ()
    assert plan.recipe == {"budget": 0.002} and plan.to_dict()["drift_budget"] == 0.002
    # The nodes the search keeps are its result: they do not rename the engine.
    if plan.transform == TRANSFORM_FP16:
        kept = plan.with_kept_nodes(["fc", "features", "conv_3"])
        assert kept.keep_fp32_nodes == ("fc", "features", "conv_3") and kept.recipe == {"budget": 0.002}


@pytest.mark.parametrize(
    ("precision", "kwargs", "message"),
    [
        ("fp32", {}, "applies to fp16 and int8"),
        ("int8", {"quantized_source": "m.onnx"}, "already quantized"),
        ("fp16", {"keep_fp32_nodes": ["fc"]}, "both choose the nodes kept in fp32"),
        ("int8", {"drift_budget": 0.0}, r"must be a number in \(0, 2\)"),
        ("int8", {"drift_budget": float("inf")}, r"must be a number in \(0, 2\)"),
    ],
)
def test_a_drift_budget_is_refused_where_there_is_nothing_to_search(precision: str, kwargs: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        PrecisionPlan.for_target(precision, "cpu", **{"drift_budget": 0.01, **kwargs})
