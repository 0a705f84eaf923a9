"""The input spec: explicit settings > what the graph shows (op types and constants) > InsightFace's name rule."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from arcface_trt.errors import InputError
from arcface_trt.model.input_spec import InputSettings, InputSpec, insightface_rule, read_graph
from arcface_trt.model.inspect import inspect_model
from tests.support.quirk_models import CHANNEL_MEAN, CHANNEL_STD, MEAN, STD, make_quirk_model, write_quirk_model
from tests.support.tiny_models import make_tiny_model

SCALAR = ((MEAN,) * 3, (STD,) * 3)
PER_CHANNEL = (CHANNEL_MEAN, CHANNEL_STD)


@pytest.mark.parametrize(
    ("quirk", "kind", "ops", "values"),
    [
        ("sub_mul", "normalises", ("Sub", "Mul"), SCALAR),
        ("div", "normalises", ("Sub", "Div"), PER_CHANNEL),
        ("add_negative", "normalises", ("Add", "Mul"), SCALAR),
        ("batchnorm", "normalises", ("BatchNormalization",), PER_CHANNEL),
        ("conv1x1", "normalises", ("Conv",), PER_CHANNEL),
        ("folded", "raw", ("Conv",), None),
        ("none", "raw", ("Conv",), None),
    ],
)
def test_the_graph_reading_of_each_export_quirk(quirk: str, kind: str, ops: tuple, values: tuple | None) -> None:
    reading = read_graph(make_quirk_model(quirk).graph, "input.1")
    assert (reading.kind, reading.ops) == (kind, ops)
    if values is not None:
        np.testing.assert_allclose(reading.mean, values[0], rtol=1e-5)
        np.testing.assert_allclose(reading.std, values[1], rtol=1e-5)


def test_node_names_never_matter() -> None:
    """Any names on the normalising ops (or none), and Sub/Mul names on ops that do not normalise."""
    renamed = make_quirk_model("sub_mul")
    for i, node in enumerate(renamed.graph.node):
        node.name = f"StatefulPartitionedCall/model/op_{i}" if i % 2 else ""
    assert read_graph(renamed.graph, "input.1").kind == "normalises"
    misnamed = make_tiny_model()
    misnamed.graph.node[0].name, misnamed.graph.node[1].name = "Sub_0", "Mul_1"  # a Conv and a Relu
    assert insightface_rule(misnamed.graph) == (0.0, 1.0)  # the name rule is fooled
    assert read_graph(misnamed.graph, "input.1").kind == "raw"  # the graph is not


def test_what_is_not_a_per_channel_affine_is_not_read_as_one() -> None:
    # A [3] constant broadcasts over the width of NCHW, not over the channels.
    model = make_quirk_model("sub_mul")
    model.graph.initializer[-2].CopyFrom(numpy_helper.from_array(np.full(3, 127.5, np.float32), "sub_y"))
    assert read_graph(model.graph, "input.1").kind == "unknown"
    # A 1x1 conv that mixes channels (an RGB -> BGR swap) is a computation, not a normalisation.
    swap = make_quirk_model("conv1x1")
    weight = np.eye(3)[::-1].reshape(3, 3, 1, 1).astype(np.float32)
    next(i for i in swap.graph.initializer if i.name == "pre.w").CopyFrom(numpy_helper.from_array(weight, "pre.w"))
    assert read_graph(swap.graph, "input.1").kind == "raw"
    # An input used twice (a branch) is not followed.
    branched = make_tiny_model()
    branched.graph.node.append(helper.make_node("Identity", ["input.1"], ["spare"], name="spare"))
    assert read_graph(branched.graph, "input.1").kind == "unknown"


def test_quantize_dequantize_pairs_are_looked_through() -> None:
    assert read_graph(make_quirk_model("sub_mul", qdq=True).graph, "input.1").kind == "normalises"
    assert read_graph(make_quirk_model("none", qdq=True).graph, "input.1").kind == "raw"


@pytest.mark.parametrize(
    ("names", "rule"),
    [
        (["Sub_0", "Mul_1", "Conv_2"], (0.0, 1.0)),
        (["_minus0", "_mul0"], (0.0, 1.0)),
        (["Sub_0", "Conv_1"], (127.5, 127.5)),
        (["Conv_0"] * 8 + ["Sub", "Mul"], (127.5, 127.5)),
        (["sub", "mul"], (127.5, 127.5)),  # lower case: InsightFace's rule misses tf2onnx's names
    ],
)
def test_insightface_rule_reads_names_as_insightface_does(names: list[str], rule: tuple) -> None:
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["x"], name=n) for n in names], "g", [], [])
    assert insightface_rule(graph) == rule


def _write(tmp_path: Path, model: onnx.ModelProto, name: str) -> Path:
    path = tmp_path / name
    path.write_bytes(model.SerializeToString())
    return path


def test_resolution_order_config_then_graph_then_insightface(tmp_path: Path, caplog) -> None:
    normalising = write_quirk_model(tmp_path / "normalising.onnx", "sub_mul")
    spec = inspect_model(normalising).input_spec
    assert (spec.mean, spec.std, spec.source, spec.normalized_in_graph) == ((0.0,) * 3, (1.0,) * 3, "graph", True)
    explicit = inspect_model(normalising, InputSettings.parse("127.5", "127.5", "bgr")).input_spec
    assert (explicit.mean, explicit.std, explicit.color) == ((127.5,) * 3, (127.5,) * 3, "BGR")
    assert (explicit.source, explicit.color_source, explicit.normalized_in_graph) == ("config", "config", True)
    plain = inspect_model(write_quirk_model(tmp_path / "plain.onnx", "none")).input_spec
    assert (plain.mean, plain.source, plain.normalized_in_graph) == ((127.5,) * 3, "insightface-rule", False)
    # The names say Sub/Mul but nothing on the input's path normalises: the graph overrides the names.
    misnamed = make_tiny_model()
    misnamed.graph.node[0].name, misnamed.graph.node[1].name = "Sub_0", "Mul_1"
    spec = inspect_model(_write(tmp_path, misnamed, "misnamed.onnx")).input_spec
    assert (spec.mean, spec.source) == ((127.5,) * 3, "graph")
    # Nothing recognised on the path (a branch): InsightFace's rule decides, names and all.
    unread = make_tiny_model()
    unread.graph.node[0].name, unread.graph.node[1].name = "Sub_0", "Mul_1"
    unread.graph.node.append(helper.make_node("Identity", ["input.1"], ["spare"], name="spare"))
    spec = inspect_model(_write(tmp_path, unread, "unread.onnx")).input_spec
    assert (spec.mean, spec.std, spec.source) == ((0.0,) * 3, (1.0,) * 3, "insightface-rule")


def test_one_warning_line_names_both_when_the_spec_differs_from_insightface(tmp_path: Path, caplog) -> None:
    path = write_quirk_model(tmp_path / "warned.onnx", "sub_mul", seed=7)
    with caplog.at_level(logging.WARNING, logger="arcface_trt"):
        inspect_model(path).report_input_spec()
        inspect_model(path).report_input_spec()  # the same model and spec: said once
        inspect_model(write_quirk_model(tmp_path / "quiet.onnx", "none", seed=7)).report_input_spec()  # the rule's
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "warned.onnx: input spec mean 0, std 1, RGB" in lines[0]
    assert "InsightFace's node-name rule (mean 127.5, std 127.5, RGB)" in lines[0]
    assert "Sub, Mul = (x - 127.5) / 128" in lines[0]


@pytest.mark.parametrize(
    ("mean", "std", "color", "message"),
    [
        ("1,2", None, None, "--input-mean takes one number or three"),
        ("abc", None, None, "--input-mean takes one number or three"),
        ("nan", None, None, "finite"),
        (None, "0", None, "--input-std must be above 0"),
        (None, "1,-2,3", None, "--input-std must be above 0"),
        (None, None, "grb", "--input-color must be rgb or bgr"),
    ],
)
def test_bad_settings_are_one_line_errors(mean, std, color, message: str) -> None:
    with pytest.raises(InputError, match=message):
        InputSettings.parse(mean, std, color)


def test_settings_parse_and_merge() -> None:
    given = InputSettings.parse("123.7,116.3,103.5", "58", "BGR")
    assert (given.mean, given.std, given.color) == ((123.7, 116.3, 103.5), (58.0,) * 3, "BGR")
    assert InputSettings.parse([1, 2, 3], 2.5).mean == (1.0, 2.0, 3.0)
    merged = InputSettings(color="RGB").over(given)
    assert (merged.mean, merged.color) == (given.mean, "RGB")


def test_mean_and_std_go_together(tmp_path: Path) -> None:
    path = write_quirk_model(tmp_path / "m.onnx", "none")
    with pytest.raises(InputError, match="give the input mean and std together"):
        inspect_model(path, InputSettings.parse(mean="0"))


def test_spec_records_and_what_insightface_can_express() -> None:
    spec = InputSpec.default(112)
    assert spec.expressible_in_insightface
    assert InputSpec.from_dict(spec.to_dict()) == spec
    assert spec.key() == {"side": 112, "color": "RGB", "mean": [127.5] * 3, "std": [127.5] * 3}
    bgr = InputSpec(112, "BGR", (0.0,) * 3, (1.0,) * 3, True, "config", "config", "")
    per_channel = InputSpec(112, "RGB", CHANNEL_MEAN, (1.0,) * 3, False, "config", "config", "")
    assert not bgr.expressible_in_insightface and not per_channel.expressible_in_insightface
    assert bgr.fed_mean == (0.0,) * 3 and per_channel.fed_mean == CHANNEL_MEAN
    for junk in (None, [], {"side": "112"}, {**spec.to_dict(), "mean": [1, 2]}, {**spec.to_dict(), "color": "XYZ"}):
        assert InputSpec.from_dict(junk) is None


def test_batchnorm_on_the_input_reads_scale_shift_and_epsilon() -> None:
    graph = helper.make_graph(
        [helper.make_node("BatchNormalization", ["x", "s", "b", "m", "v"], ["y"], epsilon=0.5)],
        "bn",
        [helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, ["N", 3, 8, 8])],
        [
            numpy_helper.from_array(np.array([2.0, 1.0, 1.0], np.float32), "s"),
            numpy_helper.from_array(np.array([1.0, 0.0, 0.0], np.float32), "b"),
            numpy_helper.from_array(np.array([10.0, 20.0, 30.0], np.float32), "m"),
            numpy_helper.from_array(np.array([1.0, 1.0, 3.5], np.float32), "v"),
        ],
    )
    reading = read_graph(graph, "x")
    # y = s (x - m) / sqrt(v + eps) + b  ==  (x - mean) / std
    std = np.sqrt(np.array([1.5, 1.5, 4.0])) / np.array([2.0, 1.0, 1.0])
    np.testing.assert_allclose(reading.std, std, rtol=1e-5)
    np.testing.assert_allclose(reading.mean, np.array([10.0, 20.0, 30.0]) - np.array([1.0, 0.0, 0.0]) * std, rtol=1e-5)
