"""The built-in ArcFace-architecture model and model inspection."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest

from arcface_trt.errors import InputError
from arcface_trt.faces import base_faces
from arcface_trt.model.inspect import inspect_model
from arcface_trt.model.iresnet import LAYERS, make_model
from tests.support.cli import invoke
from tests.support.tiny_models import R18_WIDTH, make_tiny_model, write_tiny_model


def _embed(path: Path, crops: list[np.ndarray]) -> np.ndarray:
    from insightface.model_zoo import get_model

    model = get_model(str(path), providers=["CPUExecutionProvider"])
    assert model.taskname == "recognition"
    feats = model.get_feat(crops)
    return feats / np.linalg.norm(feats, axis=1, keepdims=True)


def test_r18_structure_and_inspection(r18_model: Path) -> None:
    model = onnx.load(str(r18_model))
    onnx.checker.check_model(model)
    ops = [n.op_type for n in model.graph.node]
    # stem conv + PReLU; per block 1 BN, 2 Conv, 1 PReLU, 1 Add; 1x1 downsample conv per stage
    blocks = sum(LAYERS["r18"])
    assert ops.count("Add") == blocks
    assert ops.count("Conv") == 1 + 2 * blocks + 4
    assert ops.count("PRelu") == 1 + blocks
    assert ops[-3:] == ["Flatten", "Gemm", "BatchNormalization"]
    info = inspect_model(r18_model)
    assert info.input_name == "input.1"
    assert info.input_shape[1:] == (3, 112, 112) and info.dynamic_batch
    assert info.embedding_dim == 512
    spec = info.input_spec
    assert (spec.mean, spec.std, spec.color, spec.side) == ((127.5,) * 3, (127.5,) * 3, "RGB", 112)
    assert not spec.normalized_in_graph and spec.source == "insightface-rule"
    assert len(info.sha256) == 64


def test_weights_follow_the_seed(r18_model: Path, r18_model_seed1: Path) -> None:
    # the same seed gives the same bytes; another seed other weights
    assert make_model("r18", 0, R18_WIDTH).SerializeToString() == r18_model.read_bytes()
    first = lambda path: onnx.numpy_helper.to_array(onnx.load(str(path)).graph.initializer[0])  # noqa: E731
    assert not np.array_equal(first(r18_model), first(r18_model_seed1))


def test_a_narrow_model_has_the_width_asked_and_is_still_a_recognition_model(tmp_path: Path) -> None:
    out = tmp_path / "narrow.onnx"
    result = invoke("make-model", "--arch", "r18", "--width", "8", "--out", str(out))
    assert result.exit_code == 0, result.output
    model = onnx.load(str(out))
    onnx.checker.check_model(model)
    weights = {i.name: i for i in model.graph.initializer}
    convs = [n for n in model.graph.node if n.op_type == "Conv"]
    assert list(weights[convs[0].input[1]].dims) == [8, 3, 3, 3]  # the stem: 8 channels, not 64
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    assert list(weights[gemm.input[1]].dims) == [512, 64 * 7 * 7]  # the last stage: 8 x 2**3 channels
    emb = _embed(out, list(base_faces()[:2]))
    assert inspect_model(out).embedding_dim == 512 and np.isfinite(emb).all() and float(emb[0] @ emb[1]) < 0.9


def test_r100_is_a_valid_recognition_model_that_tells_faces_apart(tmp_path: Path) -> None:
    out = tmp_path / "m.onnx"
    result = invoke("make-model", "--arch", "r100", "--out", str(out))
    assert result.exit_code == 0, result.output
    onnx.checker.check_model(str(out))
    faces = base_faces()
    emb = _embed(out, [faces[0], faces[3], faces[0]])
    assert np.isfinite(emb).all()
    assert float(emb[0] @ emb[1]) < 0.9  # two different real faces
    assert float(emb[0] @ emb[2]) > 0.9999  # the same face


def test_r18_embeddings_are_finite_and_discriminative(r18_model: Path) -> None:
    emb = _embed(r18_model, list(base_faces()))
    sims = emb @ emb.T
    off_diagonal = sims[~np.eye(7, dtype=bool)]
    assert np.isfinite(emb).all()
    assert off_diagonal.max() < 0.9


def test_inspection_rejects_what_is_not_a_recognition_model(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found"):
        inspect_model(tmp_path / "absent.onnx")
    text = tmp_path / "notes.onnx"
    text.write_text("this is not a model\n")
    with pytest.raises(InputError, match="not a valid ONNX model"):
        inspect_model(text)
    oblong = write_tiny_model(tmp_path / "oblong.onnx", input_shape=["N", 3, 112, 96])
    with pytest.raises(InputError, match=r"has shape \['N', 3, 112, 96\]; .*square"):
        inspect_model(oblong)
    model = make_tiny_model()
    for dim in model.graph.input[0].type.tensor_type.shape.dim[2:]:
        dim.dim_param = "H"  # a side decided at run time: no preprocessing size to resize to
    (tmp_path / "symbolic.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(InputError, match=r"fixed side"):
        inspect_model(tmp_path / "symbolic.onnx")
    four_d = write_tiny_model(tmp_path / "fourd.onnx", feature_map_output=True)
    with pytest.raises(InputError, match="returns \\[N, D\\] embeddings"):
        inspect_model(four_d)
    gray = write_tiny_model(tmp_path / "gray.onnx", input_shape=["N", 1, 112, 112])
    with pytest.raises(InputError, match="takes \\[N, 3, S, S\\]"):
        inspect_model(gray)


def test_unknown_arch_is_a_user_error() -> None:
    with pytest.raises(InputError, match="unknown architecture 'r200'"):
        make_model("r200")
