"""What a plan file is: the facts of its manifest and name, and what the engine itself says where it loads.

A plan file cannot be read without the TensorRT that built it (its format is TensorRT's own),
so without TensorRT (or without a GPU that can load it) :func:`inspect_plan` reports what the
manifest beside the plan and the file name say, and lists what it cannot know. Where TensorRT
and a suitable GPU are present it loads the plan, reads its I/O tensors, batch profile,
compatibility level and layers (the engine inspector), judges the layers' precision against
the label (:mod:`.precision_check`) and lists every disagreement with the manifest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from arcface_trt.artifacts.compat import runtimes_text
from arcface_trt.artifacts.key import EngineKey
from arcface_trt.artifacts.manifest import Manifest
from arcface_trt.engine import gpu, inspection, precision_check, trt_api
from arcface_trt.engine.runtime import LoadOptions
from arcface_trt.errors import BackendUnavailableError, InputError
from arcface_trt.fileio import sha256_file
from arcface_trt.names import PRECISIONS
from arcface_trt.records import Record


@dataclass
class PlanReport(Record):
    """``arcface-trt inspect``'s record of one plan file."""

    plan_path: str
    plan_bytes: int
    plan_sha256: str
    manifest_path: str
    #: The manifest's facts (None without a readable manifest; ``manifest_problem`` says why).
    manifest: dict[str, Any] | None
    manifest_problem: str | None
    #: What the file name says (model, precision, arch, TensorRT major.minor), when it is an engine name.
    name: dict[str, Any] | None
    #: What the loaded engine says (None when it was not loaded here; ``engine_problem`` says why).
    engine: dict[str, Any] | None
    engine_problem: str | None
    #: What neither the manifest nor the engine could tell here.
    unknown: list[str] = field(default_factory=list)
    #: Where the plan, its manifest and its name disagree.
    disagreements: list[str] = field(default_factory=list)
    #: The layers do not carry the precision the plan is labelled with (by the manifest's or the engine's account).
    mislabelled: bool = False

    @property
    def passed(self) -> bool:
        """True when nothing disagrees."""
        return not self.disagreements


def _mapping(value: Any) -> dict[str, Any]:
    """A manifest field that should hold a JSON object (manifests are read from files and stores: check)."""
    return value if isinstance(value, dict) else {}


def manifest_facts(manifest: Manifest, sha_matches: bool) -> dict[str, Any]:
    """The facts ``inspect`` shows from a manifest."""
    extra = _mapping(manifest.extra)
    return {
        "model": manifest.model,
        "precision": manifest.precision,
        "precision_path": extra.get("precision_path"),
        "trt_version": manifest.trt_version,
        "sm_arch": manifest.sm_arch,
        "compute_capability": extra.get("compute_capability"),
        "gpu_name": manifest.gpu_name,
        "hardware_compatibility": manifest.hardware_compatibility,
        "weights": manifest.weights,
        "version_compatible": manifest.version_compatible,
        "lean_runtime": manifest.lean_runtime,
        "loads_on": (
            runtimes_text(manifest.trt_version) if manifest.version_compatible else f"TensorRT {manifest.trt_version}"
        ),
        "parsed_onnx_sha256": manifest.parsed_onnx_sha256,
        "batch_profile": {"min": manifest.min_batch, "opt": manifest.opt_batch, "max": manifest.max_batch},
        "input_name": manifest.input_name,
        "embedding_dim": manifest.embedding_dim,
        "io_tensors": extra.get("io_tensors"),
        "input_spec": manifest.input_spec,
        "precision_summary": manifest.precision_summary,
        "precision_check": manifest.precision_check,
        "build_seconds": manifest.build_seconds,
        "timing_cache": extra.get("timing_cache"),
        "timing_cache_entries_added": extra.get("timing_cache_entries_added"),
        "workspace_mb": manifest.workspace_mb,
        "created_at": manifest.created_at,
        "tool_version": manifest.tool_version,
        "plan_sha256": manifest.plan_sha256,
        "plan_sha256_matches": sha_matches,
    }


def _name_facts(plan_path: Path) -> tuple[EngineKey | None, dict[str, Any] | None]:
    parsed = EngineKey.parse(f"{plan_path.parent.name}/{plan_path.name}")
    if parsed is None or parsed[1]:
        return None, None
    key = parsed[0]
    facts = {"model": key.model, "precision": key.precision, "sm_arch": key.sm_arch, "trt": key.trt_version}
    return key, facts


def _read_manifest(path: Path) -> tuple[Manifest | None, str | None]:
    if not path.exists():
        return None, f"no manifest beside the plan ({path.name})"
    try:
        return Manifest.read(path), None
    except InputError as exc:
        return None, str(exc)


def _manifest_disagreements(manifest: Manifest, name_key: EngineKey | None) -> list[str]:
    """Where the manifest and the file's name disagree."""
    try:
        key = manifest.key
    except InputError as exc:
        return [f"the manifest names no valid engine ({exc})"]
    if name_key is not None and name_key != key:
        return [f"the file name says {name_key.relpath}, the manifest {key.relpath}"]
    return []


def _why_not_loaded() -> str | None:
    """Why this machine cannot load a plan (None when it can try)."""
    if not trt_api.installed():
        return "TensorRT is not installed here"
    info, reason = gpu.try_gpu_info()
    return None if info is not None else f"no GPU here ({' '.join(str(reason).split())})"


def _engine_record(
    facts: inspection.EngineFacts,
    summary: precision_check.PrecisionSummary,
    verdict: precision_check.PrecisionVerdict | None,
) -> dict[str, Any]:
    io = facts.io
    return {
        "trt_version": trt_api.version(),
        "io_tensors": {
            "input": {"name": io.input_name, "shape": [-1, *io.input_shape], "dtype": io.input_dtype.name},
            "output": {"name": io.output_name, "shape": [-1, *io.output_shape], "dtype": io.output_dtype.name},
        },
        "batch_profile": {"min": io.min_batch, "opt": io.opt_batch, "max": io.max_batch},
        "hardware_compatibility": facts.hardware_compatibility,
        "profiling_verbosity": facts.profiling_verbosity,
        "layers": len(facts.layers.layers),
        "precision_summary": summary.to_dict(),
        "precision_check": verdict.to_dict() if verdict else None,
    }


def _compare(manifest: Manifest, engine: dict[str, Any]) -> list[str]:
    """Where the loaded engine and its manifest disagree."""
    io, out = engine["io_tensors"]["input"], engine["io_tensors"]["output"]
    pairs = [
        (
            "batch profile",
            engine["batch_profile"],
            {"min": manifest.min_batch, "opt": manifest.opt_batch, "max": manifest.max_batch},
        ),
        ("hardware compatibility", engine["hardware_compatibility"], manifest.hardware_compatibility),
    ]
    if manifest.input_name is not None:
        pairs.append(("input name", io["name"], manifest.input_name))
    if manifest.embedding_dim is not None:
        pairs.append(("embedding size", out["shape"][-1], manifest.embedding_dim))
    recorded = _mapping(manifest.precision_summary)
    if recorded.get("compute_by_precision") is not None:
        layers = engine["precision_summary"]["compute_by_precision"]
        pairs.append(("convolution/matrix layers per precision", layers, recorded["compute_by_precision"]))
    return [f"{what}: the engine has {have}, the manifest says {want}" for what, have, want in pairs if have != want]


#: How the plan of a manifest is loaded here (a stripped plan is refit, a version-compatible one runs its lean runtime).
Loader = Callable[[Manifest], LoadOptions]


def inspect_plan(plan_path: Path, min_fp16_share: float, loader: Loader | None = None) -> PlanReport:
    """Report what ``plan_path`` is (see the module docstring); ``min_fp16_share`` judges an fp16 engine's layers.

    ``loader`` says how a plan with a manifest is loaded (without one, as it is).
    """
    plan_path = Path(plan_path)
    if not plan_path.is_file():
        raise InputError(f"plan not found: {plan_path}")
    manifest_path = plan_path.with_suffix(".json")
    sha = sha256_file(plan_path)
    manifest, manifest_problem = _read_manifest(manifest_path)
    name_key, name = _name_facts(plan_path)
    report = PlanReport(
        plan_path=str(plan_path),
        plan_bytes=plan_path.stat().st_size,
        plan_sha256=sha,
        manifest_path=str(manifest_path),
        manifest=manifest_facts(manifest, manifest.plan_sha256 == sha) if manifest else None,
        manifest_problem=manifest_problem,
        name=name,
        engine=None,
        engine_problem=_why_not_loaded(),
    )
    if manifest is not None:
        if manifest.plan_sha256 != sha:
            report.disagreements.append(
                "the plan's sha256 differs from the manifest's plan_sha256 (replaced or damaged)"
            )
        report.disagreements += _manifest_disagreements(manifest, name_key)
        recorded, check = _mapping(manifest.precision_summary), _mapping(manifest.precision_check)
        if recorded.get("requested", manifest.precision) != manifest.precision:
            report.mislabelled = True
            report.disagreements.append(
                f"the manifest says {manifest.precision}, but its layer summary was made for {recorded['requested']}"
            )
        if not check.get("passed", True):
            report.mislabelled = True
            report.disagreements.append(f"the manifest's precision check failed: {check.get('reason')}")
    label = manifest.precision if manifest else name_key.precision if name_key else None
    label = label if label in PRECISIONS else None
    if report.engine_problem is None:
        _load(report, plan_path, manifest, label, min_fp16_share, loader)
    if report.engine is None:
        what = "what the engine itself says (its I/O tensors, batch profile and layer precisions)"
        report.unknown.append(f"{what}: {report.engine_problem}")
        if manifest is None:
            report.unknown.append(
                "the TensorRT version, GPU, batch profile, I/O tensors, build time and layer precisions "
                f"the manifest would record ({manifest_problem})"
            )
    return report


def _load(
    report: PlanReport,
    plan_path: Path,
    manifest: Manifest | None,
    label: str | None,
    min_share: float,
    loader: Loader | None,
) -> None:
    """Load the plan here and add what the engine says, and where it disagrees, to ``report``."""
    try:
        load = loader(manifest) if manifest is not None and loader is not None else LoadOptions()
        facts = inspection.engine_facts(plan_path.read_bytes(), trt_api.TrtLog(), plan_path, None, load)
    except (BackendUnavailableError, InputError) as exc:
        report.engine_problem = str(exc)
        return
    recorded = _mapping(manifest.precision_summary) if manifest else {}
    nodes = recorded.get("kept_fp32_nodes")
    kept = [node for node in nodes if isinstance(node, str)] if isinstance(nodes, list) else []
    # Without a label (no manifest, not an engine name) the layers are counted but not judged.
    summary = precision_check.summarize(facts.layers, label or "fp32", kept)
    verdict = precision_check.judge(summary, min_share) if label else None
    report.engine = _engine_record(facts, summary, verdict)
    if verdict is not None and not verdict.passed:
        report.mislabelled = True
        report.disagreements.append(precision_check.failure_message(summary, verdict, ""))
    if manifest is not None:
        report.disagreements += _compare(manifest, report.engine)
