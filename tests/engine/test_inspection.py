"""The engine inspector's JSON, parsed: real examples (NVIDIA's Engine Explorer) and the fake's output alike."""

from __future__ import annotations

import json
from typing import Any

import pytest

from arcface_trt.engine.inspection import parse_engine_information, parse_layer, precision_of
from arcface_trt.errors import InputError
from tests.support.faketrt import inspector, layers
from tests.support.paths import ENGINE_INSPECTOR_EXAMPLES


def _example(variant: str) -> dict[str, Any]:
    return json.loads((ENGINE_INSPECTOR_EXAMPLES / f"resnet-a100-{variant}.excerpt.json").read_text())


def _parsed(variant: str) -> dict[str, tuple[str | None, bool]]:
    engine = parse_engine_information(json.dumps(_example(variant)))
    assert engine.detailed
    return {layer.name: (layer.precision, layer.is_compute) for layer in engine.layers}


@pytest.mark.parametrize(
    ("text", "precision"),
    [
        ("Row major linear FP32", "fp32"),
        ("Channel major FP32 format where channel % 4 == 0", "fp32"),
        ("Channel major FP16 format where channel % 8 == 0", "fp16"),
        ("Row major linear FP16 format", "fp16"),
        ("Thirty-two wide channel vectorized row major Int8 format", "int8"),
        ("Four wide channel vectorized row major Int8 format", "int8"),
        ("Row major Int8 format", "int8"),
        ("Row major linear BFloat16 format", "bf16"),
        ("Half", "fp16"),
        ("Float", "fp32"),
        ("N/A", None),
        (None, None),
    ],
)
def test_precision_words(text: str | None, precision: str | None) -> None:
    assert precision_of(text) == precision


def test_real_fp32_engine() -> None:
    assert _parsed("fp32") == {
        "Conv_0 + Relu_1": ("fp32", True),
        "MaxPool_2": ("fp32", False),
        "Reformatting CopyNode for Output Tensor 0 to MaxPool_2": ("fp32", False),
        "Gemm_48": ("fp32", True),
        "reshape_after_Gemm_48": ("fp32", False),
    }


def test_real_fp16_engine() -> None:
    parsed = _parsed("fp16")
    # the input reformat reads the fp32 binding; every layer after it runs in fp16
    assert parsed["Reformatting CopyNode for Input Tensor 0 to Conv_0 + Relu_1"] == ("fp32", False)
    assert parsed["Conv_0 + Relu_1"] == parsed["Conv_5 + Add_6 + Relu_7"] == parsed["Gemm_48"] == ("fp16", True)
    layer = parse_layer(_example("fp16")["Layers"][2])
    assert layer.nodes == ("Conv_5", "Add_6", "Relu_7") and not layer.moves_data


def test_real_quantized_engine() -> None:
    parsed = _parsed("qat-residual")
    assert parsed["QuantizeLinear_2"] == ("fp32", False)  # reads the fp32 input, writes int8
    assert parsed["conv1.weight + QuantizeLinear_7 + Conv_9 + MaxPool_12"] == ("int8", True)  # a ConvActPool
    fc = next(name for name in parsed if name.startswith("fc.weight"))
    assert parsed[fc] == ("int8", True)  # int8 in, fp32 out: an int8 layer, as the engine explorer counts it


def test_names_only_and_hidden_formats() -> None:
    """Default verbosity gives names only; without input shapes the formats read N/A: no precision either way."""
    names = parse_engine_information(json.dumps({"Layers": ["Conv_0 + Relu_1", "Gemm_48"], "Bindings": []}))
    assert not names.detailed and [layer.precision for layer in names.layers] == [None, None]
    assert names.layers[0].nodes == ("Conv_0", "Relu_1")
    record = _example("fp16")["Layers"][1]
    for tensor in [*record["Inputs"], *record["Outputs"]]:
        tensor["Format/Datatype"] = inspector.HIDDEN_FORMAT
    assert parse_layer(record).precision == "fp16"  # the weights' type still says it
    del record["Weights"]
    assert parse_layer(record).precision is None


@pytest.mark.parametrize("text", ["not json", "[]", '{"Layers": 3}', '{"Layers": [{"LayerType": "Reformat"}]}'])
def test_malformed_information_is_an_input_error(text: str) -> None:
    with pytest.raises(InputError, match="engine inspector"):
        parse_engine_information(text)


def _real(key: str) -> set[Any]:
    found: set[Any] = set()
    for path in ENGINE_INSPECTOR_EXAMPLES.glob("*.excerpt.json"):
        for record in json.loads(path.read_text())["Layers"]:
            if key == "keys":
                found |= set(record)
            elif key == "tensor keys":
                found |= {k for t in [*record["Inputs"], *record["Outputs"]] for k in t}
            else:
                found |= {t["Format/Datatype"] for t in [*record["Inputs"], *record["Outputs"]]}
                found |= {record.get("Weights", {}).get("Type"), record.get("Bias", {}).get("Type")} - {None}
    return found


def test_the_fake_inspector_speaks_only_what_real_engines_say() -> None:
    """Every format string, weight type and record key the fake can produce occurs in the real examples."""
    formats = {*layers.FORMATS.values(), *layers.BINDING_FORMATS.values(), *layers.WEIGHT_TYPES.values()}
    assert formats <= _real("formats")
    from tests.support.tiny_models import make_tiny_model

    records, _ = layers.engine_layers(
        make_tiny_model(qdq=True).SerializeToString(), fp16_flag=False, strongly_typed=True
    )
    records += layers.engine_layers(make_tiny_model().SerializeToString(), fp16_flag=True, strongly_typed=False)[0]
    assert {k for r in records for k in r} <= _real("keys")
    assert {k for r in records for t in [*r["Inputs"], *r["Outputs"]] for k in t} <= _real("tensor keys")


@pytest.mark.parametrize(("fp16_flag", "strongly_typed"), [(False, False), (True, False), (False, True)])
def test_the_fake_makes_one_layer_per_node_or_fused_group(r18_model, fp16_flag: bool, strongly_typed: bool) -> None:
    """On the built-in IResNet-18, every ONNX node is in exactly one layer (a residual Add fuses into one branch)."""
    import onnx

    model = onnx.load(str(r18_model))
    records, bindings = layers.engine_layers(
        model.SerializeToString(), fp16_flag=fp16_flag, strongly_typed=strongly_typed
    )
    named = [n for r in records if not r["Name"].startswith("Reformatting") for n in r["Name"].split(" + ")]
    assert sorted(named) == sorted(node.name for node in model.graph.node)
    fused = [r for r in records if "Add" in r["Name"] and r["LayerType"] == "CaskConvolution"]
    assert fused and all(len(r["Inputs"]) == 2 for r in fused)  # the residual comes in as a second input
    assert bindings == [model.graph.input[0].name, model.graph.output[0].name]
