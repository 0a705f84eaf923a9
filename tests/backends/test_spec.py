"""BackendSpec: "None means take it from the config" resolved once, for the API, commands, embed and Ray."""

from __future__ import annotations

import dataclasses
import pickle
from pathlib import Path

import pytest

from arcface_trt.backends import create_embedder, get_embedding_backend
from arcface_trt.backends.spec import BackendSpec
from arcface_trt.config import (
    ArcfaceTensorrtSection,
    EmbeddingConfig,
    EmbeddingSection,
    PrecisionSection,
    TensorrtConfig,
    TensorrtSection,
)
from arcface_trt.errors import ConfigError, InputError
from arcface_trt.model.default import default_model_path


def _config(**embedding: object) -> EmbeddingConfig:
    return EmbeddingConfig(embedding=EmbeddingSection(**embedding), precision=PrecisionSection(("fc",)))


def test_unset_arguments_come_from_the_config(r18_model: Path) -> None:
    cfg = _config(backend="pytorch", device="cpu", batch_size=7, allow_cpu_fallback=True, model_path=str(r18_model))
    spec = BackendSpec.resolve(config=cfg)
    assert (spec.backend, spec.device, spec.batch_size, spec.allow_cpu_fallback) == ("insightface", "cpu", 7, True)
    assert spec.model_path == str(r18_model) and spec.keep_fp32_nodes == ("fc",) and spec.precision is None
    assert spec.tensorrt is cfg.tensorrt


def test_given_arguments_win(r18_model: Path, tmp_path: Path) -> None:
    cfg = _config(backend="pytorch", device="cuda", batch_size=7, allow_cpu_fallback=True)
    trt = TensorrtConfig(tensorrt=TensorrtSection(precision="int8"), source="given")
    spec = BackendSpec.resolve("onnxruntime", "cpu", trt, False, r18_model, config=cfg, batch_size=3, precision="fp16")
    assert (spec.backend, spec.device, spec.batch_size, spec.allow_cpu_fallback) == ("onnxruntime", "cpu", 3, False)
    assert spec.model_path == str(r18_model) and spec.precision == "fp16" and spec.tensorrt.source == "given"


def test_the_builtin_model_is_resolved_where_the_embedder_is_made() -> None:
    spec = BackendSpec.resolve(config=_config(model_arch="r18", model_seed=3))
    assert spec.model_path is None and (spec.model_arch, spec.model_seed) == ("r18", 3)
    assert not default_model_path("r18", 3).exists()  # resolving generated nothing
    # The spec travels (Ray ships it to its workers) and equals itself after the trip.
    assert pickle.loads(pickle.dumps(spec)) == spec


def test_bad_names_and_sizes_fail_at_resolution() -> None:
    with pytest.raises(ConfigError, match="unknown backend 'caffe'"):
        BackendSpec.resolve("caffe")
    with pytest.raises(ConfigError, match="unknown precision 'int4'"):
        BackendSpec.resolve("onnxruntime", precision="int4")
    with pytest.raises(InputError, match="--batch-size must be at least 1, got 0"):
        BackendSpec.resolve("onnxruntime", batch_size=0)


def test_the_deprecated_keep_key_still_counts(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    trt_file = tmp_path / "trt.yaml"
    trt_file.write_text("tensorrt:\n  fp16_keep_fp32_nodes: [fc]\n")
    caplog.set_level("WARNING", logger="arcface_trt")
    spec = BackendSpec.resolve("onnxruntime", tensorrt_config=trt_file, config=EmbeddingConfig())
    assert spec.keep_fp32_nodes == ("fc",)
    assert "'tensorrt.fp16_keep_fp32_nodes' is deprecated; set 'precision.keep_fp32_nodes'" in caplog.text
    assert BackendSpec.resolve("onnxruntime", tensorrt_config=trt_file, config=_config()).keep_fp32_nodes == ("fc",)
    trt_file.write_text("tensorrt:\n  fp16_keep_fp32_nodes: [features]\n")
    with pytest.raises(ConfigError, match=r"'precision\.keep_fp32_nodes' and the deprecated .* disagree"):
        BackendSpec.resolve("onnxruntime", tensorrt_config=trt_file, config=_config())


def test_every_entry_point_makes_the_same_embedder(r18_model: Path) -> None:
    spec = BackendSpec.resolve("onnxruntime", "cpu", onnx_path=r18_model, batch_size=5)
    made = create_embedder(spec)
    api = get_embedding_backend("onnxruntime", "cpu", onnx_path=r18_model, batch_size=5)
    assert made.info() == api.info()
    assert dataclasses.replace(spec, backend="insightface").backend == "insightface"


def test_auto_is_the_automatic_choice_that_the_tensorrt_flag_makes() -> None:
    for enabled, expected in ((True, "tensorrt"), (False, "insightface"), (None, "insightface")):
        trt = TensorrtConfig(arcface_tensorrt=ArcfaceTensorrtSection(enabled=enabled))
        assert BackendSpec.resolve(config=EmbeddingConfig(EmbeddingSection(backend="auto"), tensorrt=trt)).backend == (
            expected
        )
        assert BackendSpec.resolve("auto", config=EmbeddingConfig(tensorrt=trt)).backend == expected
        # A name is a name: the flag does not change it.
        assert BackendSpec.resolve("tensorrt", config=EmbeddingConfig(tensorrt=trt)).backend == "tensorrt"


def test_a_relative_tensorrt_config_is_looked_up_here_then_beside_the_embedding_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "cfg"
    folder.mkdir()
    (folder / "trt.yaml").write_text("tensorrt:\n  precision: int8\n")
    (folder / "arcface_tensorrt.yaml").write_text("")
    embedding = folder / "embedding.yaml"
    embedding.write_text("embedding:\n  backend: onnxruntime\n")
    monkeypatch.chdir(tmp_path)
    assert BackendSpec.resolve(tensorrt_config="trt.yaml", config=embedding).tensorrt.tensorrt.precision == "int8"
    with pytest.raises(ConfigError) as info:
        BackendSpec.resolve(tensorrt_config="nowhere.yaml", config=embedding)
    assert str(info.value).endswith(f"does not exist (tried {tmp_path}/nowhere.yaml, {folder}/nowhere.yaml)")
    # Without an embedding config file there is only the current folder.
    with pytest.raises(ConfigError, match=rf"'trt.yaml' does not exist \(tried {tmp_path}/trt.yaml\)$"):
        BackendSpec.resolve(tensorrt_config="trt.yaml", config=EmbeddingConfig())
