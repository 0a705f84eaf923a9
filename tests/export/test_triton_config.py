"""``config.pbtxt`` against Triton's own model-config schema: fields, enums, escaping."""

from __future__ import annotations

from pathlib import Path

import pytest
from google.protobuf import text_format

from arcface_trt.errors import InputError
from arcface_trt.export.triton_config import render_config
from arcface_trt.export.triton_model import (
    KIND_GPU,
    PLATFORM_TENSORRT,
    ModelFile,
    TensorSpec,
    TritonModel,
)
from arcface_trt.model.inspect import inspect_model
from tests.support.triton import data_type_name, parse_config


def _model(tiny_onnx: Path, input_name: str = "input.1", output_name: str = "embedding") -> TritonModel:
    """A two-GPU plan folder as the export describes it."""
    files = tuple(
        ModelFile(Path(f"/cache/{n}"), n, n, "0" * 64, cc, "GPU")
        for n, cc in (("tiny-fp16-sm89.plan", "8.9"), ("tiny-fp16-sm90.plan", "9.0"))
    )
    return TritonModel(
        name="tiny-fp16",
        platform=PLATFORM_TENSORRT,
        kind=KIND_GPU,
        max_batch_size=32,
        preferred_batch_sizes=(8, 32),
        min_batch=1,
        input=TensorSpec(input_name, "float32", (3, 112, 112)),
        output=TensorSpec(output_name, "float16", (64,)),
        files=files,
        source=inspect_model(tiny_onnx),
        precision="fp16",
        runtime="TensorRT 10.16.1.11",
        trt_version="10.16.1.11",
        default_model_filename="tiny-fp16-sm90.plan",
        cc_model_filenames={"8.9": "tiny-fp16-sm89.plan", "9.0": "tiny-fp16-sm90.plan"},
    )


def test_config_parses_with_tritons_schema(tiny_onnx: Path) -> None:
    config = parse_config(render_config(_model(tiny_onnx)))
    assert config.name == "tiny-fp16" and config.platform == "tensorrt_plan"
    assert config.max_batch_size == 32
    (model_input,) = config.input
    assert model_input.name == "input.1" and list(model_input.dims) == [3, 112, 112]
    assert data_type_name(model_input.data_type) == "TYPE_FP32"
    (model_output,) = config.output
    assert model_output.name == "embedding" and list(model_output.dims) == [64]
    assert data_type_name(model_output.data_type) == "TYPE_FP16"
    assert list(config.dynamic_batching.preferred_batch_size) == [8, 32]
    (group,) = config.instance_group
    assert group.kind == group.KIND_GPU and group.count == 1
    assert dict(config.cc_model_filenames) == {"8.9": "tiny-fp16-sm89.plan", "9.0": "tiny-fp16-sm90.plan"}
    assert config.default_model_filename == "tiny-fp16-sm90.plan"


@pytest.mark.parametrize(
    ("good", "bad"),
    [
        ("max_batch_size:", "max_batch_sizes:"),  # a misspelt field
        ("kind: KIND_GPU", "kind: KIND_GPUS"),  # a wrong enum value
        ("data_type: TYPE_FP32", "data_type: TYPE_FLOAT32"),
        ("preferred_batch_size:", "preferred_batch_sizes:"),
        ("cc_model_filenames {", "cc_model_filename {"),
    ],
)
def test_a_corrupted_config_fails_the_schema(tiny_onnx: Path, good: str, bad: str) -> None:
    text = render_config(_model(tiny_onnx))
    assert good in text
    with pytest.raises(text_format.ParseError):
        parse_config(text.replace(good, bad, 1))


def test_names_from_model_files_are_escaped(tiny_onnx: Path) -> None:
    """Tensor names come from untrusted files: quotes, backslashes, newlines and non-ASCII survive as data."""
    hostile = 'in"put\\ \n}\nmax_batch_size: 1 # ü'
    config = parse_config(render_config(_model(tiny_onnx, input_name=hostile, output_name="fc1/Ωut")))
    assert config.input[0].name == hostile and config.output[0].name == "fc1/Ωut"
    assert config.max_batch_size == 32


def test_a_type_triton_cannot_carry_is_refused() -> None:
    with pytest.raises(InputError, match="complex64, which Triton cannot carry"):
        TensorSpec("x", "complex64", (2,))
