"""``export-triton``: a Triton model folder made from the engines arcface-trt builds.

find the engines -> describe them (:class:`TritonModel`) -> write ``{repository}/{name}/`` atomically.

- GPU: this machine's plan, from the cache or built as ``build`` builds it; its tensors and batch
  profile are read from the deserialized engine. Cached plans of other GPUs join it when they
  were made from the same ONNX with the same precision, recipe, TensorRT version and batch
  profile (checked by their manifests and sha256): each keeps its engine name in the version
  folder and ``cc_model_filenames`` maps compute capabilities to them; a portable (``ampere_plus``)
  plan is the ``default_model_filename``. A single plan is ``1/model.plan``.
- CPU: the cached ONNX Runtime CPU engine (built when missing) is ``1/model.onnx``; its tensors
  are read from its graph, and the configured batch profile sets ``max_batch_size``.

The folder is built beside its final place and renamed into it; an existing folder is replaced
only with ``overwrite``, and only when it holds nothing but what this export writes.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arcface_trt.artifacts.cache import ArtifactCache, CacheLookup
from arcface_trt.artifacts.key import CPU_SUFFIX, PLAN_SUFFIX, compute_capability
from arcface_trt.artifacts.manifest import Manifest
from arcface_trt.config import TensorrtSection
from arcface_trt.engine.build import BuildRequest, build_engine, engine_cache
from arcface_trt.engine.runtime import TrtRunner
from arcface_trt.errors import InputError
from arcface_trt.export.triton_config import render_config
from arcface_trt.export.triton_model import (
    KIND_CPU,
    KIND_GPU,
    PLATFORM_ONNXRUNTIME,
    PLATFORM_TENSORRT,
    VERSION,
    ModelFile,
    TensorSpec,
    TritonModel,
)
from arcface_trt.export.triton_readme import render_readme
from arcface_trt.fileio import atomic_directory, copy_file_atomic, write_text_atomic
from arcface_trt.model.input_spec import InputSettings
from arcface_trt.model.inspect import ModelInfo, inspect_model
from arcface_trt.names import check_target
from arcface_trt.paths import engine_cache_root
from arcface_trt.precision.cpu_engine import ensure_cpu_engine

log = logging.getLogger("arcface_trt.export")

Status = Callable[[str], None]

CONFIG_FILE = "config.pbtxt"
README_FILE = "README.md"
#: Triton's default file names, used when the folder holds one engine.
SINGLE_PLAN = "model.plan"
CPU_MODEL = "model.onnx"
#: Model names: a folder name Triton accepts, never a path.
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
#: Manifest fields every plan of one folder shares with this machine's plan.
SHARED_PLAN_FIELDS = (
    "model",
    "onnx_sha256",
    "precision",
    "recipe",
    "trt_version",
    "min_batch",
    "opt_batch",
    "max_batch",
    "input_name",
    "embedding_dim",
)
PORTABLE = "ampere_plus"


@dataclass(frozen=True)
class TritonExportRequest:
    """One model folder to write: the model, the engine settings and where it goes."""

    onnx_path: Path
    #: The model repository (the folder ``tritonserver --model-repository`` is given).
    repository: Path
    #: Precision, batch profile and the other engine settings, as ``build`` takes them.
    settings: TensorrtSection
    #: ``gpu`` (TensorRT plans) or ``cpu`` (the ONNX Runtime CPU engine).
    target: str = "gpu"
    #: The model's name in Triton; default ``{model}-{precision}``.
    name: str | None = None
    overwrite: bool = False
    #: Engine cache override; default ``settings.cache_dir``, else the user cache.
    cache_dir: Path | None = None
    keep_fp32_nodes: tuple[str, ...] | None = None
    #: Explicit input settings: the README and config describe the input spec they resolve to.
    inputs: InputSettings = field(default_factory=InputSettings)


@dataclass(frozen=True)
class TritonExport:
    """What ``export_triton`` wrote."""

    folder: Path
    model: TritonModel
    #: ``cache`` (the engine was reused) or ``built``.
    engine_source: str
    #: True when an earlier folder was replaced (``overwrite``).
    replaced: bool

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly record for ``export-triton --json``."""
        return {
            "folder": str(self.folder),
            "config_path": str(self.folder / CONFIG_FILE),
            "readme_path": str(self.folder / README_FILE),
            "files": [str(self.folder / VERSION / f.filename) for f in self.model.files],
            "engine_source": self.engine_source,
            "replaced": self.replaced,
            "model": self.model.to_dict(),
        }


def model_name(name: str | None, source: ModelInfo, precision: str) -> str:
    """``name``, else ``{model}-{precision}``; InputError for a name that is not a plain folder name."""
    chosen = name if name is not None else f"{source.name}-{precision}"
    if not _NAME.match(chosen):
        raise InputError(
            f"model name {chosen!r} may only hold letters, digits and . _ - (starting with a letter or digit)"
            + ("; pass --name" if name is None else "")
        )
    return chosen


def _foreign_entries(folder: Path) -> list[str]:
    """What in ``folder`` an export does not write (so ``overwrite`` would delete someone else's files)."""
    foreign = []
    for entry in sorted(folder.iterdir()):
        if entry.name == VERSION and entry.is_dir() and not entry.is_symlink():
            foreign += [
                f"{VERSION}/{item.name}"
                for item in sorted(entry.iterdir())
                if item.is_symlink() or not item.is_file() or item.suffix not in (PLAN_SUFFIX, CPU_SUFFIX)
            ]
        elif entry.name not in (CONFIG_FILE, README_FILE) or entry.is_symlink() or not entry.is_file():
            foreign.append(entry.name)
    return foreign


def check_destination(folder: Path, overwrite: bool) -> None:
    """Refuse a destination before any engine is built: an existing folder without ``overwrite``, or one
    holding files this export did not write."""
    repository = folder.parent
    if repository.exists() and not repository.is_dir():
        raise InputError(f"model repository {repository} is not a folder")
    if not (folder.exists() or folder.is_symlink()):
        return
    if not overwrite:
        raise InputError(f"{folder} already exists; pass --overwrite to replace it")
    if folder.is_symlink() or not folder.is_dir():
        raise InputError(f"{folder} is not a model folder (a file or a link); move it away first")
    foreign = _foreign_entries(folder)
    if foreign:
        shown = ", ".join(foreign[:5]) + (f" and {len(foreign) - 5} more" if len(foreign) > 5 else "")
        raise InputError(f"{folder} holds files export-triton did not write ({shown}); move them away first")


def _preferred(opt_batch: int, max_batch: int) -> tuple[int, ...]:
    """Dynamic batching's preferred sizes: the profile's opt batch (what the engine was tuned for) and its max."""
    return tuple(sorted({opt_batch, max_batch}))


def sibling_plans(cache: ArtifactCache, manifest: Manifest) -> Iterator[CacheLookup]:
    """Cached plans of other GPUs that may serve beside ``manifest``'s plan (same :data:`SHARED_PLAN_FIELDS`)."""
    have = manifest.to_dict()
    expected = {name: have[name] for name in SHARED_PLAN_FIELDS}
    for other in cache.entries("gpu"):
        if other.key == manifest.key:
            continue
        lookup = cache.lookup(other.key, expected)
        if lookup.hit:
            yield lookup
        elif other.model == manifest.model:
            log.debug("not exporting %s: %s", other.key.relpath, "; ".join(lookup.reasons))


def _plan_files(plans: list[tuple[Path, Manifest]]) -> tuple[list[ModelFile], dict[str, str], str | None]:
    """The version folder's plans, ``cc_model_filenames`` and ``default_model_filename``."""
    files = []
    for path, manifest in plans:
        filename = SINGLE_PLAN if len(plans) == 1 else manifest.key.name
        files.append(
            ModelFile(
                source=path,
                filename=filename,
                engine=manifest.key.name,
                sha256=manifest.plan_sha256,
                compute_capability=compute_capability(manifest.sm_arch),
                built_on=manifest.gpu_name,
                portable=manifest.hardware_compatibility == PORTABLE,
            )
        )
    if len(files) == 1:
        return files, {}, None
    by_capability = {f.compute_capability: f.filename for f in files if f.compute_capability}
    default = next((f.filename for f in files if f.portable), None)
    return files, by_capability, default


def _gpu_model(request: TritonExportRequest, source: ModelInfo, name: str, status: Status) -> tuple[TritonModel, str]:
    """This machine's plan (cached or built) plus the cached plans of other GPUs that match it."""
    settings = request.settings
    if settings.strip_weights or settings.exclude_lean_runtime:
        raise InputError(
            "Triton's TensorRT backend loads a plan as it is: it cannot refit a weight-stripped plan nor load "
            "one built without its lean runtime; export with tensorrt.strip_weights and "
            "tensorrt.exclude_lean_runtime false"
        )
    built = build_engine(
        BuildRequest(
            onnx_path=request.onnx_path,
            settings=request.settings,
            cache_dir=request.cache_dir,
            keep_fp32_nodes=request.keep_fp32_nodes,
            inputs=request.inputs,
        ),
        on_status=status,
    )
    with TrtRunner(built.plan_path, load=built.load) as runner:
        io = runner.io
    cache = engine_cache(request.settings, request.cache_dir)
    plans = [(built.plan_path, built.manifest)]
    plans += [(lookup.path, lookup.manifest) for lookup in sibling_plans(cache, built.manifest)]
    files, by_capability, default = _plan_files(plans)
    model = TritonModel(
        name=name,
        platform=PLATFORM_TENSORRT,
        kind=KIND_GPU,
        max_batch_size=io.max_batch,
        preferred_batch_sizes=_preferred(io.opt_batch, io.max_batch),
        min_batch=io.min_batch,
        input=TensorSpec(io.input_name, io.input_dtype.name, io.input_shape),
        output=TensorSpec(io.output_name, io.output_dtype.name, io.output_shape),
        files=tuple(files),
        source=source,
        precision=request.settings.precision,
        runtime=f"TensorRT {built.manifest.trt_version}",
        trt_version=built.manifest.trt_version,
        version_compatible=built.manifest.version_compatible,
        default_model_filename=default,
        cc_model_filenames=by_capability,
    )
    return model, "cache" if built.from_cache else "built"


def _cpu_model(request: TritonExportRequest, source: ModelInfo, name: str) -> tuple[TritonModel, str]:
    """The cached CPU engine (built when missing), batched up to the configured profile's max."""
    settings = request.settings
    engine = ensure_cpu_engine(
        request.onnx_path,
        settings.precision,
        keep_fp32_nodes=request.keep_fp32_nodes,
        cache_dir=engine_cache_root(settings.cache_dir, request.cache_dir),
        inputs=request.inputs,
    )
    graph = inspect_model(engine.path)
    batch = graph.input_shape[0]
    if graph.dynamic_batch:
        max_batch = settings.max_batch_size
        preferred = _preferred(settings.opt_batch_size, max_batch)
        input_dims = tuple(int(d) for d in graph.input_shape[1:])
        output_dims: tuple[int, ...] = (graph.embedding_dim,)
    else:
        # A fixed batch cannot be batched by Triton: max_batch_size 0 and the dims carry the batch.
        max_batch, preferred = 0, ()
        input_dims = tuple(int(d) for d in graph.input_shape)
        output_dims = (int(batch), graph.embedding_dim)
    model = TritonModel(
        name=name,
        platform=PLATFORM_ONNXRUNTIME,
        kind=KIND_CPU,
        max_batch_size=max_batch,
        preferred_batch_sizes=preferred,
        min_batch=1,
        input=TensorSpec(graph.input_name, graph.input_dtype, input_dims),
        output=TensorSpec(graph.output_name, graph.output_dtype, output_dims),
        files=(
            ModelFile(
                source=engine.path,
                filename=CPU_MODEL,
                engine=engine.manifest.key.name,
                sha256=engine.manifest.engine_sha256,
            ),
        ),
        source=source,
        precision=settings.precision,
        runtime=f"ONNX Runtime {engine.manifest.ort_version}",
    )
    return model, "built" if engine.built else "cache"


def write_model_folder(folder: Path, model: TritonModel, replace: bool, status: Status) -> None:
    """Write ``config.pbtxt``, ``README.md`` and ``1/<engines>`` into a folder beside ``folder``, then rename it."""
    with atomic_directory(folder, replace=replace) as tmp:
        version = tmp / VERSION
        version.mkdir()
        for f in model.files:
            status(f"copying {f.engine} -> {folder.name}/{VERSION}/{f.filename}")
            if copy_file_atomic(f.source, version / f.filename) != f.sha256:
                raise InputError(f"{f.source} changed while it was copied (its sha256 no longer matches); export again")
        write_text_atomic(tmp / CONFIG_FILE, render_config(model))
        write_text_atomic(tmp / README_FILE, render_readme(model))


def export_triton(request: TritonExportRequest, on_status: Status | None = None) -> TritonExport:
    """Find or build the engines of ``request`` and write its Triton model folder."""
    status = on_status or (lambda message: log.info("%s", message))
    target = check_target(request.target)
    source = inspect_model(request.onnx_path, request.inputs)
    name = model_name(request.name, source, request.settings.precision)
    folder = Path(request.repository).expanduser() / name
    check_destination(folder, request.overwrite)
    if target == "gpu":
        model, engine_source = _gpu_model(request, source, name, status)
    else:
        model, engine_source = _cpu_model(request, source, name)
    replaced = folder.exists()
    write_model_folder(folder, model, request.overwrite, status)
    return TritonExport(folder, model, engine_source, replaced)
