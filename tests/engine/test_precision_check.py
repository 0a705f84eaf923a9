"""The layer summary and the mislabel gate, on real engine-inspector output and on small made-up engines."""

from __future__ import annotations

import json

import pytest

from arcface_trt.engine.inspection import EngineLayers, LayerInfo, parse_engine_information
from arcface_trt.engine.precision_check import advice, failure_message, judge, rule, summarize
from arcface_trt.engine.trt_api import KNOWN_SHAPES
from arcface_trt.precision.plan import PrecisionPlan
from tests.support.paths import ENGINE_INSPECTOR_EXAMPLES


def _real(variant: str) -> EngineLayers:
    return parse_engine_information((ENGINE_INSPECTOR_EXAMPLES / f"resnet-a100-{variant}.excerpt.json").read_text())


def _engine(*layers: tuple[str, str | None]) -> EngineLayers:
    """Convolution layers named ``name`` running in ``precision``, plus one fp32 reformat."""
    convs = tuple(LayerInfo(name, "CaskConvolution", "Convolution", p) for name, p in layers)
    return EngineLayers((*convs, LayerInfo("Reformatting CopyNode", "Reformat", "Reformat", "fp32")), True)


def test_a_real_fp16_engine_passes_and_a_real_fp32_one_labelled_fp16_fails() -> None:
    fp16 = summarize(_real("fp16"), "fp16")
    assert (fp16.compute_layers, fp16.counted, fp16.in_requested, fp16.share) == (3, 3, 3, 1.0)
    assert fp16.by_precision == {"fp16": 5, "fp32": 1} and fp16.fp32_layers == []
    assert judge(fp16, 0.8).passed
    mislabelled = summarize(_real("fp32"), "fp16")
    verdict = judge(mislabelled, 0.8)
    assert not verdict.passed and verdict.reason.startswith("0 of 2 convolution/matrix layers run in fp16 (0%")
    message = failure_message(mislabelled, verdict, "")
    assert "labelled fp16 is not fp16" in message and "in fp32: Conv_0 + Relu_1, MaxPool_2, Gemm_48" in message


def test_nodes_kept_in_fp32_on_purpose_are_not_counted() -> None:
    engine = _engine(("conv1", "fp16"), ("conv2", "fp16"), ("fc + features", "fp32"))
    counted_all = summarize(engine, "fp16")
    assert (counted_all.counted, counted_all.in_requested) == (3, 2) and not judge(counted_all, 0.8).passed
    kept = summarize(engine, "fp16", ["fc", "features"])
    assert kept.kept_layers == ["fc + features"] and (kept.counted, kept.in_requested, kept.share) == (2, 2, 1.0)
    assert judge(kept, 0.8).passed
    assert "fc + features" not in failure_message(kept, judge(kept, 1.0), "")  # not named as off-label
    everything = summarize(engine, "fp16", ["conv1", "conv2", "fc"])
    assert judge(everything, 0.8).reason == "every convolution/matrix layer is kept in fp32"


def test_the_threshold_is_the_configured_one() -> None:
    summary = summarize(_engine(("a", "fp16"), ("b", "fp16"), ("c", "fp16"), ("d", "fp32")), "fp16")
    assert summary.share == 0.75
    assert not judge(summary, 0.8).passed and judge(summary, 0.75).passed
    assert judge(summary, 0.8).threshold == 0.8
    off = judge(summarize(_engine(("a", "fp32")), "fp16"), 0.0)
    assert off.passed and "off" in off.reason
    assert rule("fp16", 0.75).startswith("at least 75% of the convolution/matrix layers run in fp16")
    assert rule("fp16", 0.0).startswith("off") and "int8" in rule("int8", 0.8)


def test_int8_needs_quantized_convolutions() -> None:
    assert judge(summarize(_real("qat-residual"), "int8"), 0.8).passed
    assert not judge(summarize(_real("fp16"), "int8"), 0.8).passed
    assert judge(summarize(_engine(("a", "int8"), ("fc", "fp32")), "int8"), 0.8).passed  # the head may stay float


def test_fp32_means_no_reduced_precision_layer() -> None:
    assert judge(summarize(_real("fp32"), "fp32"), 0.8).passed
    assert not judge(summarize(_real("fp16"), "fp32"), 0.8).passed


def test_an_engine_that_shows_no_precision_cannot_prove_its_label() -> None:
    names_only = parse_engine_information(json.dumps({"Layers": ["Conv_0 + Relu_1"], "Bindings": []}))
    verdict = judge(summarize(names_only, "fp16"), 0.8)
    assert not verdict.passed and "names only" in verdict.reason
    hidden = summarize(_engine(("conv", None)), "fp16")
    assert hidden.compute_by_precision == {"unknown": 1} and not judge(hidden, 0.8).passed
    nothing = judge(summarize(EngineLayers((), True), "fp16"), 0.8)
    assert not nothing.passed and "no convolution/matrix layer" in nothing.reason


def test_the_advice_names_the_way_out() -> None:
    summary = summarize(_engine(("conv", "fp32")), "fp16")
    flag = advice(PrecisionPlan.for_target("fp16", "gpu", KNOWN_SHAPES["10.x"]), summary, ["fc", "features"])
    assert "FP16 builder flag" in flag and "precision.keep_fp32_nodes" in flag and "[fc, features]" in flag
    typed = advice(PrecisionPlan.for_target("fp16", "gpu", KNOWN_SHAPES["11.x"]), summary, ["fc"])
    assert "strongly typed" in typed and "not converted" in typed
    assert "arcface-trt quantize" in advice(PrecisionPlan.for_target("int8", "gpu", KNOWN_SHAPES["11.x"]), summary, [])


@pytest.mark.parametrize("precision", ["fp16", "int8"])
def test_the_summary_is_a_json_record(precision: str) -> None:
    summary = summarize(_real("qat-residual"), precision, ["fc"])
    assert json.loads(json.dumps(summary.to_dict()))["requested"] == precision
