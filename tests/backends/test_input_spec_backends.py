"""Every backend applies the model's input spec: raw pixels for self-normalising graphs, any side, any width, BGR."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.backends import get_embedding_backend
from arcface_trt.backends.insightface_backend import REFERENCE_GET_FEAT, REFERENCE_ORT_CPU
from arcface_trt.collapse import check_collapse
from arcface_trt.config import ArcfaceTensorrtSection, EmbeddingConfig, TensorrtConfig, TensorrtSection
from arcface_trt.model.input_spec import InputSettings, InputSpec
from tests.support.fakes import FakeStack
from tests.support.quirk_models import (
    CHANNEL_MEAN,
    CHANNEL_STD,
    NORMALISES_IN_GRAPH,
    raw_pixel_embeddings,
    write_quirk_model,
)

RAW = InputSettings.parse("0", "1")


def _cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.sum(a.astype(np.float64) * b.astype(np.float64), axis=1)


@pytest.mark.parametrize("quirk", sorted(NORMALISES_IN_GRAPH))
def test_self_normalising_graphs_get_raw_pixels(quirk: str, tmp_path: Path, faces: np.ndarray) -> None:
    """The acceptance check: the backends equal ONNX Runtime fed raw pixels (cosine >= 0.9999)."""
    path = write_quirk_model(tmp_path / f"{quirk}.onnx", quirk)
    truth = raw_pixel_embeddings(path, faces)
    for backend in ("onnxruntime", "insightface"):
        embedder = get_embedding_backend(backend, onnx_path=path, device="cpu")
        assert _cosines(embedder.encode(faces), truth).min() >= 0.9999, backend
        spec = embedder.info().input_spec
        assert spec["normalized_in_graph"] and spec["source"] == "graph" and spec["mean"] == (0.0, 0.0, 0.0)
    assert embedder.info().reference == REFERENCE_GET_FEAT  # InsightFace's own get_feat, given mean 0 / std 1


@pytest.mark.parametrize(("side", "dim"), [(96, 128), (128, 256), (150, 128), (160, 512), (192, 256)])
def test_any_square_side_and_width_reference_included(side: int, dim: int, tmp_path: Path, faces: np.ndarray) -> None:
    path = write_quirk_model(tmp_path / f"m{side}.onnx", "sub_mul", side=side, dim=dim)
    reference = get_embedding_backend("insightface", onnx_path=path, device="cpu")
    engine = get_embedding_backend("onnxruntime", onnx_path=path, device="cpu")
    out = reference.encode(faces)
    assert out.shape == (len(faces), dim) and reference.info().embedding_dim == dim
    assert type(reference.arcface).__name__ == "ArcFaceONNX"
    assert _cosines(out, engine.encode(faces)).min() > 0.99999
    assert _cosines(out, raw_pixel_embeddings(path, faces)).min() >= 0.9999


@pytest.mark.parametrize(("side", "routed_to"), [(96, "Attribute"), (192, "Landmark"), (150, None)])
def test_insightface_routes_these_sides_elsewhere(side: int, routed_to: str | None, tmp_path: Path) -> None:
    """Why the reference builds ArcFaceONNX itself: get_model would give an attribute or landmark model, or nothing."""
    from insightface.model_zoo import get_model

    path = write_quirk_model(tmp_path / f"m{side}.onnx", "none", side=side)
    routed = get_model(str(path), providers=["CPUExecutionProvider"])
    assert (type(routed).__name__ if routed is not None else None) == routed_to


def test_bgr_and_per_channel_specs_run_the_reference_on_onnxruntime(tmp_path: Path, faces: np.ndarray) -> None:
    path = write_quirk_model(tmp_path / "bgr.onnx", "div")  # takes raw pixels, in the order it is given
    bgr = InputSettings(color="BGR")
    engine = get_embedding_backend("onnxruntime", onnx_path=path, device="cpu", inputs=bgr)
    assert _cosines(engine.encode(faces), raw_pixel_embeddings(path, faces, bgr=True)).min() > 0.99999
    rgb = get_embedding_backend("onnxruntime", onnx_path=path, device="cpu")
    assert _cosines(rgb.encode(faces), engine.encode(faces)).min() < 0.9999  # the channel order matters
    reference = get_embedding_backend("insightface", onnx_path=path, device="auto", inputs=bgr)
    info = reference.info()
    assert info.reference == REFERENCE_ORT_CPU and info.providers == ["CPUExecutionProvider"]
    assert _cosines(reference.encode(faces), engine.encode(faces)).min() > 0.99999
    per_channel = InputSettings(mean=CHANNEL_MEAN, std=CHANNEL_STD)
    plain = write_quirk_model(tmp_path / "plain.onnx", "none")
    assert get_embedding_backend("insightface", onnx_path=plain, inputs=per_channel).info().reference == (
        REFERENCE_ORT_CPU
    )


def test_normalisation_folded_into_the_first_conv_needs_an_explicit_setting(tmp_path: Path, faces: np.ndarray) -> None:
    path = write_quirk_model(tmp_path / "folded.onnx", "folded", side=150)
    truth = raw_pixel_embeddings(path, faces)
    guessed = get_embedding_backend("onnxruntime", onnx_path=path, device="cpu")
    assert guessed.info().input_spec["source"] == "insightface-rule"
    assert _cosines(guessed.encode(faces), truth).min() < 0.9  # nothing in the graph tells
    assert check_collapse(guessed, 0.9).collapsed  # ... but the collapse guard does
    told = get_embedding_backend("onnxruntime", onnx_path=path, device="cpu", inputs=RAW)
    assert _cosines(told.encode(faces), truth).min() > 0.99999
    assert told.info().input_spec["source"] == "config"
    assert not check_collapse(told, 0.9).collapsed


def test_config_input_settings_reach_the_backend(tmp_path: Path, faces: np.ndarray) -> None:
    path = write_quirk_model(tmp_path / "folded.onnx", "folded")
    config = tmp_path / "embedding.yaml"
    config.write_text("embedding:\n  input_mean: 0\n  input_std: [1, 1, 1]\n  input_color: rgb\n")
    embedder = get_embedding_backend("onnxruntime", onnx_path=path, device="cpu", config=config)
    assert _cosines(embedder.encode(faces), raw_pixel_embeddings(path, faces)).min() > 0.99999
    # the command line's settings win over the file's
    swapped = get_embedding_backend(
        "onnxruntime", onnx_path=path, device="cpu", config=config, inputs=InputSettings(color="BGR")
    )
    spec = swapped.info().input_spec
    assert (spec["color"], spec["mean"], spec["source"]) == ("BGR", (0.0,) * 3, "config")


def test_tensorrt_feeds_raw_pixels_to_a_self_normalising_graph(
    fake_stack: FakeStack, tmp_path: Path, faces: np.ndarray
) -> None:
    path = write_quirk_model(tmp_path / "sub_mul.onnx", "sub_mul", side=160, dim=256)
    trt = TensorrtConfig(
        arcface_tensorrt=ArcfaceTensorrtSection(enabled=True),
        tensorrt=TensorrtSection(
            precision="fp32", min_batch_size=1, opt_batch_size=4, max_batch_size=4, cache_dir=str(tmp_path / "e")
        ),
    )
    embedder = get_embedding_backend("tensorrt", tensorrt_config=trt, onnx_path=path, config=EmbeddingConfig())
    assert _cosines(embedder.encode(faces), raw_pixel_embeddings(path, faces)).min() >= 0.9999
    assert embedder.info().input_spec["normalized_in_graph"]
    manifest = json.loads(Path(embedder.info().engine_path).with_suffix(".json").read_text())
    assert InputSpec.from_dict(manifest["input_spec"]) == InputSpec.from_dict(embedder.info().input_spec)  # recorded
