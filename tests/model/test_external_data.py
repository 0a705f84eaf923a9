"""Models with ONNX external data: the weights files are part of the model's identity and of its engines.

The model's sha256 (cache keys, manifests, TensorRT and CPU alike) covers its data files, a CPU
engine is self-contained (weights inline: nothing is read from the cache folder), and a data
path outside the model's folder is refused with onnx's reason.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from arcface_trt.errors import InputError
from arcface_trt.model.inspect import external_data_files, inspect_model
from arcface_trt.precision.cpu_engine import ensure_cpu_engine
from tests.support.cli import invoke
from tests.support.tiny_models import write_external_data_model


@pytest.fixture()
def external(tmp_path: Path) -> Path:
    """``models/legit.onnx`` with every weight in ``models/legit.bin``."""
    return write_external_data_model(tmp_path / "models" / "legit.onnx")


def _swap_weights(model: Path, seed: int) -> None:
    """Replace the data file beside ``model`` with other weights (the .onnx file stays byte-identical)."""
    other = write_external_data_model(model.parent.parent / f"other-{seed}" / model.name, seed=seed)
    before = model.read_bytes()
    shutil.copy(other.with_name("legit.bin"), model.with_name("legit.bin"))
    assert other.read_bytes() == before  # the graph file does not change, only the weights


def test_the_sha256_covers_the_data_files(external: Path) -> None:
    from arcface_trt.fileio import sha256_file

    info = inspect_model(external)
    assert info.external_data == ("legit.bin",)
    assert info.sha256 != sha256_file(external)  # not the graph file alone
    _swap_weights(external, seed=1)
    assert inspect_model(external).sha256 != info.sha256


def test_cpu_engine_is_self_contained_and_rebuilt_when_the_weights_change(
    external: Path, tmp_path: Path, faces: np.ndarray
) -> None:
    import onnx
    import onnxruntime as ort

    cache = tmp_path / "engines"
    first = ensure_cpu_engine(external, "fp32", cache_dir=cache)
    assert first.built and first.manifest.onnx_sha256 == inspect_model(external).sha256
    for precision in ("fp32", "fp16"):
        engine = ensure_cpu_engine(external, precision, cache_dir=cache)
        assert external_data_files(onnx.load(str(engine.path), load_external_data=False)) == ()
    # A weights file planted in the cache folder is never read: the engine loads alone, anywhere.
    (cache / "cpu" / "legit.bin").write_bytes(b"\0" * 16)
    alone = tmp_path / "alone" / first.path.name
    alone.parent.mkdir()
    shutil.copy(first.path, alone)
    session = ort.InferenceSession(str(alone), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input.1": np.zeros((1, 3, 112, 112), np.float32)})[0].shape == (1, 64)
    assert not ensure_cpu_engine(external, "fp32", cache_dir=cache).built  # a hit
    _swap_weights(external, seed=1)
    rebuilt = ensure_cpu_engine(external, "fp32", cache_dir=cache)
    assert rebuilt.built and rebuilt.rebuild_reasons[0].startswith("onnx_sha256: cached ")


def test_the_tensorrt_key_covers_the_data_files(external: Path, tmp_path: Path, no_gpu_stack) -> None:
    def dry_run() -> dict:
        args = ["build", "--onnx-path", external, "--arch", "90", "--dry-run", "--json", "--cache-dir", tmp_path / "e"]
        result = invoke(*args)
        assert result.exit_code == 0, result.output
        return json.loads(result.stdout)["manifest"]

    first = dry_run()
    assert first["onnx_sha256"] == inspect_model(external).sha256
    _swap_weights(external, seed=2)
    assert dry_run()["onnx_sha256"] != first["onnx_sha256"]


def test_a_data_path_outside_the_model_folder_is_refused_with_the_reason(external: Path, tmp_path: Path) -> None:
    import onnx

    model = onnx.load(str(external), load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "../secret.bin"
    shutil.copy(external.with_name("legit.bin"), tmp_path / "secret.bin")
    evil = external.with_name("evil.onnx")
    onnx.save(model, str(evil))
    with pytest.raises(InputError, match="points outside the directory"):
        inspect_model(evil)
    result = invoke(
        "build", "--target", "cpu", "--precision", "fp32", "--onnx-path", evil, "--cache-dir", tmp_path / "c"
    )
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("error: cannot read the external data of ONNX model") and "ValidationError:" in line
    assert "'../secret.bin' points outside the directory" in line
    assert not (tmp_path / "c").exists()
