"""Triton model folders: the CPU engine served for real, TensorRT plans of the fake, and how folders are written."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import cv2
import numpy as np
import pytest

from arcface_trt.backends import get_embedding_backend
from arcface_trt.config import TensorrtSection
from arcface_trt.engine.build import BuildRequest, build_engine
from arcface_trt.errors import BackendUnavailableError, InputError
from arcface_trt.export import triton
from arcface_trt.export.triton import TritonExportRequest, export_triton
from arcface_trt.fileio import sha256_file
from arcface_trt.model.input_spec import InputSettings
from tests.support.fakes import FakeCuda, FakeDevice, FakeStack, install_fakes
from tests.support.quirk_models import CHANNEL_MEAN, CHANNEL_STD, write_quirk_model
from tests.support.tiny_models import write_tiny_model
from tests.support.triton import OnnxTritonServer, data_type_name, read_config

H100 = FakeDevice()
L4 = FakeDevice("NVIDIA L4", 8, 9)
A100 = FakeDevice("NVIDIA A100-SXM4-80GB", 8, 0)


def _files(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def _snippet(readme: str) -> str:
    (code,) = re.findall(r"```python\n(.*?)```", readme, flags=re.S)
    return code


def _embed_with_readme_snippet(folder: Path, crop: np.ndarray, workdir: Path, monkeypatch) -> np.ndarray:
    """Run the README's tritonclient snippet, as written, against a stand-in Triton serving ``folder``."""
    code = _snippet((folder / "README.md").read_text(encoding="utf-8"))
    monkeypatch.chdir(workdir)
    assert cv2.imwrite("face.png", crop)
    with OnnxTritonServer(folder.parent) as server:
        assert "'localhost:8001'" in code
        namespace: dict = {}
        exec(code.replace("'localhost:8001'", repr(server.url)), namespace)
    return namespace["embedding"]


# -- CPU: the int8 engine of the built-in r18 --------------------------------------------------------


def test_cpu_export_of_the_r18_int8_engine(r18_model: Path, r18_int8_engine, tmp_path: Path) -> None:
    request = TritonExportRequest(r18_model, tmp_path / "repo", TensorrtSection(precision="int8"), target="cpu")
    result = export_triton(request)
    folder = tmp_path / "repo" / "arcface_r18-int8"
    assert result.folder == folder and result.engine_source == "cache" and not result.replaced
    assert _files(folder) == ["1/model.onnx", "README.md", "config.pbtxt"]
    assert sha256_file(folder / "1" / "model.onnx") == r18_int8_engine.manifest.engine_sha256
    config = read_config(folder)
    assert config.name == "arcface_r18-int8" and config.platform == "onnxruntime_onnx"
    assert config.max_batch_size == 32  # the configured profile's max
    (model_input,), (model_output,) = config.input, config.output
    assert (model_input.name, list(model_input.dims)) == ("input.1", [3, 112, 112])
    assert (model_output.name, list(model_output.dims)) == ("embedding", [512])
    assert data_type_name(model_input.data_type) == data_type_name(model_output.data_type) == "TYPE_FP32"
    assert list(config.dynamic_batching.preferred_batch_size) == [32]
    assert [g.kind for g in config.instance_group] == [config.instance_group[0].KIND_CPU]
    assert not config.cc_model_filenames and not config.default_model_filename
    readme = (folder / "README.md").read_text(encoding="utf-8")
    for needle in ("**preprocessed**", "112x112", "**RGB**", "(pixel - 127.5) / 127.5", "**not L2-normalised**"):
        assert needle in readme
    assert f"ONNX Runtime {r18_int8_engine.manifest.ort_version}" in readme


def test_readme_snippet_embeds_like_the_cpu_engine(
    r18_model: Path, r18_int8_engine, faces: np.ndarray, tmp_path: Path, monkeypatch
) -> None:
    """The documented preprocessing and normalisation, through Triton's client, give the engine's embeddings."""
    request = TritonExportRequest(r18_model, tmp_path / "repo", TensorrtSection(precision="int8"), target="cpu")
    folder = export_triton(request).folder
    engine = get_embedding_backend("onnxruntime", onnx_path=r18_model, precision="int8")
    for crop in faces[:2]:
        served = _embed_with_readme_snippet(folder, crop, tmp_path, monkeypatch)
        assert served.shape == (512,) and abs(np.linalg.norm(served) - 1) < 1e-5
        assert float(served @ engine.encode(crop[None])[0]) > 0.99999
    other = _embed_with_readme_snippet(folder, faces[5], tmp_path, monkeypatch)
    assert float(served @ other) < 0.9  # different faces stay apart: the snippet is not embedding a constant


@pytest.mark.parametrize(
    ("quirk", "inputs", "shown"),
    [
        # the graph normalises itself (lower-case Sub/Mul): raw pixels
        ("sub_mul", InputSettings(), "(pixel - 0) / 1"),
        # explicit per-channel values for a BGR model: the snippet's per-channel branch
        (
            "none",
            InputSettings(CHANNEL_MEAN, CHANNEL_STD, "BGR"),
            "(pixel - [103.53, 116.28, 123.675]) / [57.375, 57.12, 58.395]",
        ),
    ],
)
def test_readme_preprocessing_follows_the_models_input_spec(
    tmp_path: Path, faces: np.ndarray, monkeypatch, quirk: str, inputs: InputSettings, shown: str
) -> None:
    """The README and its snippet describe the input spec the backends apply, and the snippet reproduces them."""
    onnx_path = write_quirk_model(tmp_path / f"{quirk}.onnx", quirk)
    request = TritonExportRequest(
        onnx_path,
        tmp_path / "repo",
        TensorrtSection(precision="fp32", cache_dir=str(tmp_path / "c")),
        target="cpu",
        inputs=inputs,
    )
    folder = export_triton(request).folder
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert shown in readme
    assert f"colour order **{inputs.color or 'RGB'}**" in readme
    served = _embed_with_readme_snippet(folder, faces[0], tmp_path, monkeypatch)
    engine = get_embedding_backend("onnxruntime", onnx_path=onnx_path, inputs=inputs)
    assert float(served @ engine.encode(faces[:1])[0]) > 0.99999


def test_a_fixed_batch_engine_is_served_without_batching(tmp_path: Path) -> None:
    onnx_path = write_tiny_model(tmp_path / "fixed.onnx", fixed_batch=1)
    settings = TensorrtSection(precision="fp32", cache_dir=str(tmp_path / "c"))
    folder = export_triton(TritonExportRequest(onnx_path, tmp_path / "repo", settings, target="cpu")).folder
    config = read_config(folder)
    assert config.max_batch_size == 0 and not config.HasField("dynamic_batching")
    assert list(config.input[0].dims) == [1, 3, 112, 112] and list(config.output[0].dims) == [1, 64]


# -- GPU: plans built by the fake TensorRT -----------------------------------------------------------


def _build(onnx: Path, settings: TensorrtSection):
    return build_engine(BuildRequest(onnx, settings))


def test_gpu_export_of_one_plan(
    fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection, tmp_path: Path
) -> None:
    settings = dataclasses.replace(engine_settings, opt_batch_size=2, max_batch_size=8)
    result = export_triton(TritonExportRequest(tiny_onnx, tmp_path / "repo", settings, name="faces"))
    folder = tmp_path / "repo" / "faces"
    assert result.engine_source == "built"
    assert _files(folder) == ["1/model.plan", "README.md", "config.pbtxt"]
    plan = Path(settings.cache_dir) / f"trt{fake_stack.major_minor}" / "tiny-fp32-sm90.plan"
    assert (folder / "1" / "model.plan").read_bytes() == plan.read_bytes()
    config = read_config(folder)
    assert config.platform == "tensorrt_plan" and config.max_batch_size == 8  # the engine's profile max
    assert list(config.dynamic_batching.preferred_batch_size) == [2, 8]
    (model_input,), (model_output,) = config.input, config.output
    assert (model_input.name, list(model_input.dims)) == ("input.1", [3, 112, 112])
    assert (model_output.name, list(model_output.dims)) == ("embedding", [64])
    assert data_type_name(model_input.data_type) == "TYPE_FP32"
    assert [g.kind for g in config.instance_group] == [config.instance_group[0].KIND_GPU]
    assert not config.cc_model_filenames and not config.default_model_filename
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert f"TensorRT is **{fake_stack.version}**" in readme and "version-compatible=true" in readme
    assert "compute capability 9.0" in readme and "**not L2-normalised**" in readme
    again = export_triton(TritonExportRequest(tiny_onnx, tmp_path / "repo", settings, name="faces", overwrite=True))
    assert again.engine_source == "cache" and again.replaced


def test_plans_of_two_gpus_share_one_folder(
    monkeypatch, tiny_onnx: Path, engine_settings: TensorrtSection, tmp_path: Path
) -> None:
    install_fakes(monkeypatch, "10", FakeCuda([H100]))
    sm90 = _build(tiny_onnx, engine_settings)
    install_fakes(monkeypatch, "10", FakeCuda([A100]))  # another batch profile: cannot share a config
    _build(tiny_onnx, dataclasses.replace(engine_settings, max_batch_size=16))
    install_fakes(monkeypatch, "10", FakeCuda([L4]))
    result = export_triton(TritonExportRequest(tiny_onnx, tmp_path / "repo", engine_settings))
    folder = result.folder
    assert folder.name == "tiny-fp32"
    assert _files(folder) == ["1/tiny-fp32-sm89.plan", "1/tiny-fp32-sm90.plan", "README.md", "config.pbtxt"]
    assert (folder / "1" / "tiny-fp32-sm90.plan").read_bytes() == sm90.plan_path.read_bytes()
    config = read_config(folder)
    assert dict(config.cc_model_filenames) == {"8.9": "tiny-fp32-sm89.plan", "9.0": "tiny-fp32-sm90.plan"}
    assert not config.default_model_filename  # neither plan is portable
    readme = (folder / "README.md").read_text(encoding="utf-8")
    assert "NVIDIA L4" in readme and "NVIDIA H100" in readme and "NVIDIA A100" not in readme


@pytest.mark.parametrize("why", ["damaged", "another TensorRT"])
def test_a_plan_that_cannot_serve_beside_this_one_is_left_out(
    monkeypatch, tiny_onnx: Path, engine_settings: TensorrtSection, tmp_path: Path, why: str
) -> None:
    """A plan whose sha256 no longer matches, or of another TensorRT (a Triton container carries one), stays out."""
    install_fakes(monkeypatch, "11" if why == "another TensorRT" else "10", FakeCuda([H100]))
    sm90 = _build(tiny_onnx, engine_settings)
    if why == "damaged":
        sm90.plan_path.write_bytes(sm90.plan_path.read_bytes() + b"tampered")
    install_fakes(monkeypatch, "10", FakeCuda([L4]))
    folder = export_triton(TritonExportRequest(tiny_onnx, tmp_path / "repo", engine_settings)).folder
    assert _files(folder) == ["1/model.plan", "README.md", "config.pbtxt"]


def test_a_portable_plan_is_the_default(
    monkeypatch, tiny_onnx: Path, engine_settings: TensorrtSection, tmp_path: Path
) -> None:
    install_fakes(monkeypatch, "10", FakeCuda([A100]))
    portable = _build(tiny_onnx, dataclasses.replace(engine_settings, hardware_compatibility="ampere_plus"))
    install_fakes(monkeypatch, "10", FakeCuda([H100]))
    config = read_config(export_triton(TritonExportRequest(tiny_onnx, tmp_path / "repo", engine_settings)).folder)
    # The portable plan is named for no one GPU: it is the default of every GPU the map does not name.
    assert config.default_model_filename == portable.plan_path.name == "tiny-fp32-sm80+.plan"
    assert dict(config.cc_model_filenames) == {"9.0": "tiny-fp32-sm90.plan"}


def test_plans_that_travel_in_triton(
    fake_stack: FakeStack, tiny_onnx: Path, engine_settings: TensorrtSection, tmp_path: Path
) -> None:
    """Triton loads a plan as it is: no stripped plan; a version-compatible one, and the README says how."""
    for option in ({"strip_weights": True}, {"version_compatible": True, "exclude_lean_runtime": True}):
        request = TritonExportRequest(tiny_onnx, tmp_path / "repo", dataclasses.replace(engine_settings, **option))
        with pytest.raises(InputError, match="Triton's TensorRT backend loads a plan as it is"):
            export_triton(request)
    assert not (tmp_path / "repo").exists()
    portable = dataclasses.replace(engine_settings, version_compatible=True)
    folder = export_triton(TritonExportRequest(tiny_onnx, tmp_path / "repo", portable)).folder
    readme = (folder / "README.md").read_text()
    assert "version-compatible plans built by TensorRT" in readme
    assert "--backend-config=tensorrt,version-compatible=true" in readme and "later" in readme


def test_gpu_export_without_tensorrt_writes_nothing(no_gpu_stack, tiny_onnx: Path, tmp_path: Path) -> None:
    settings = TensorrtSection(precision="fp32", cache_dir=str(tmp_path / "c"))
    with pytest.raises(BackendUnavailableError, match="cannot build or run a TensorRT engine here"):
        export_triton(TritonExportRequest(tiny_onnx, tmp_path / "repo", settings))
    assert not (tmp_path / "repo").exists()


# -- the folder: names, overwrite, atomic writes -----------------------------------------------------


@pytest.fixture
def cpu_request(tmp_path: Path, tiny_onnx: Path) -> TritonExportRequest:
    """An fp32 CPU export of the tiny model (fast) into ``tmp_path/repo``."""
    settings = TensorrtSection(precision="fp32", cache_dir=str(tmp_path / "c"))
    return TritonExportRequest(tiny_onnx, tmp_path / "repo", settings, target="cpu")


def test_an_existing_folder_needs_overwrite_and_is_replaced_whole(cpu_request: TritonExportRequest) -> None:
    folder = export_triton(cpu_request).folder
    (folder / "1" / "tiny-fp32-sm90.plan").write_bytes(b"left by an earlier GPU export")
    with pytest.raises(InputError, match=r"tiny-fp32 already exists; pass --overwrite"):
        export_triton(cpu_request)
    result = export_triton(dataclasses.replace(cpu_request, overwrite=True))
    assert result.replaced
    assert _files(folder) == ["1/model.onnx", "README.md", "config.pbtxt"]
    assert [p.name for p in folder.parent.iterdir()] == ["tiny-fp32"]  # no temporary or old folder left


@pytest.mark.parametrize(
    ("foreign", "named"), [("notes.txt", "notes.txt"), ("2/model.onnx", "2"), ("1/weights.bin", "1/weights.bin")]
)
def test_overwrite_never_deletes_files_it_did_not_write(
    cpu_request: TritonExportRequest, foreign: str, named: str
) -> None:
    folder = export_triton(cpu_request).folder
    (folder / foreign).parent.mkdir(exist_ok=True)
    (folder / foreign).write_text("mine")
    with pytest.raises(InputError, match=f"holds files export-triton did not write \\({named}\\)"):
        export_triton(dataclasses.replace(cpu_request, overwrite=True))
    assert (folder / foreign).read_text() == "mine" and (folder / "config.pbtxt").exists()


def test_a_failed_write_keeps_the_old_folder(cpu_request: TritonExportRequest, monkeypatch) -> None:
    folder = export_triton(cpu_request).folder
    before = {name: (folder / name).read_bytes() for name in _files(folder)}

    def broken(model):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(triton, "render_readme", broken)
    with pytest.raises(OSError):
        export_triton(dataclasses.replace(cpu_request, overwrite=True))
    assert {name: (folder / name).read_bytes() for name in _files(folder)} == before
    assert [p.name for p in folder.parent.iterdir()] == ["tiny-fp32"]
    with pytest.raises(OSError):
        export_triton(dataclasses.replace(cpu_request, name="fresh"))
    assert [p.name for p in folder.parent.iterdir()] == ["tiny-fp32"]  # no half-written "fresh"


def test_an_engine_that_changes_while_copied_is_refused(cpu_request: TritonExportRequest, monkeypatch) -> None:
    monkeypatch.setattr(triton, "copy_file_atomic", lambda src, dst: "f" * 64)
    with pytest.raises(InputError, match="changed while it was copied"):
        export_triton(cpu_request)
    assert list(Path(cpu_request.repository).iterdir()) == []


@pytest.mark.parametrize("name", ["../escape", "a/b", ".hidden", "", "x" * 129, "white space"])
def test_model_names_are_plain_folder_names(cpu_request: TritonExportRequest, name: str) -> None:
    with pytest.raises(InputError, match="may only hold letters, digits"):
        export_triton(dataclasses.replace(cpu_request, name=name))
    assert not Path(cpu_request.repository).exists()


def test_a_repository_that_is_a_file_is_refused(cpu_request: TritonExportRequest) -> None:
    Path(cpu_request.repository).write_text("not a folder")
    with pytest.raises(InputError, match="is not a folder"):
        export_triton(cpu_request)
