"""``arcface-trt build``: ONNX -> cached TensorRT plan (reused when its manifest matches)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from arcface_trt.cli import common
from arcface_trt.cli import store_options as store
from arcface_trt.cli.calibration import (
    CalibImagesOption,
    CalibrationMethodOption,
    CalibSamplesOption,
    calibration_settings,
)
from arcface_trt.cli.common import (
    build_progress,
    cpu_precision,
    emit_json,
    engine_settings,
    option,
    portability_line,
    precision_line,
    status,
)
from arcface_trt.cli.drift_budget import (
    CurvePlotOption,
    DriftBudgetOption,
    EvalImagesOption,
    SearchTimeoutOption,
    budget_request,
    echo_search,
    finish_search,
)
from arcface_trt.errors import InputError
from arcface_trt.names import check_target
from arcface_trt.paths import engine_cache_root


def _precision_plan_line(version: str, plan: dict[str, Any]) -> str:
    """One TensorRT version's precision plan in words: ``TensorRT 10.x: fp16-builder-flag (flags set FP16; ...)``."""
    parts = [f"transform {plan['transform']}"]
    if plan["set_flags"]:
        parts.append("flags set " + ", ".join(plan["set_flags"]))
    if plan["clear_flags"]:
        parts.append("flags cleared " + ", ".join(plan["clear_flags"]))
    parts.append("strongly typed" if plan["strongly_typed"] else "weakly typed")
    kept = plan["keep_fp32_nodes"]
    if kept:
        parts.append("kept in fp32: " + (kept if isinstance(kept, str) else ", ".join(kept)))
    parts += plan["notes"]
    return f"  TensorRT {version}: {plan['precision_path']} ({'; '.join(parts)})"


def _human_dry_run(plan: dict[str, Any]) -> None:
    from arcface_trt.model.input_spec import describe_spec

    shown_apart = ("precision_plan", "precision_path", "portability")
    settings = {k: v for k, v in plan["build_settings"].items() if k not in shown_apart}
    manifest = {k: v for k, v in plan["manifest"].items() if k != "input_spec"}
    spec = plan["manifest"].get("input_spec")
    lines = [
        f"engine:    {plan['engine_name']}",
        f"plan path: {plan['plan_path']}",
        f"manifest:  {plan['manifest_path']}",
        f"TensorRT:  {plan['trt_version'] or 'not installed'}",
        f"GPU:       {plan['gpu']['name'] + ' (' + plan['gpu']['sm_arch'] + ')' if plan['gpu'] else 'none detected'}",
        f"cache:     {plan['cache']['status']} ({'; '.join(plan['cache']['reasons']) or 'manifest matches'})",
        "settings:  " + ", ".join(f"{k}={v}" for k, v in settings.items()),
        f"travels:   {portability_line(plan['build_settings'].get('portability'))}",
        "precision plan:",
        *(_precision_plan_line(version, p) for version, p in plan["build_settings"]["precision_plan"].items()),
        "manifest fields: " + ", ".join(f"{k}={v}" for k, v in manifest.items()),
        f"input spec: {describe_spec(spec) if spec else '-'}",
    ]
    lines += [f"note:      {n}" for n in plan["notes"]]
    typer.echo("\n".join(lines))


def _human_result(record: dict[str, Any]) -> None:
    from arcface_trt.model.input_spec import describe_spec

    size = record["plan_bytes"] or 0
    origin = {"cache": "yes (manifest matches)", "store": "fetched from the engine store", "built": "no"}[
        record["source"]
    ]
    lines = [
        f"engine:     {record['plan_path']}",
        f"size:       {size / 1e6:.1f} MB",
        f"build time: {record['build_seconds']:.1f} s" if not record["from_cache"] else "build time: 0 s (not rebuilt)",
        f"from cache: {origin}",
    ]
    if record["rebuild_reasons"]:
        lines.append(f"rebuilt because: {'; '.join(record['rebuild_reasons'])}")
    manifest = record["manifest"]
    if manifest.get("precision_check"):
        lines.append(f"precision:  {precision_line(manifest['precision_summary'], manifest['precision_check'])}")
    timing = manifest.get("extra", {}).get("timing_cache")
    if not record["from_cache"] and timing:
        added = manifest["extra"].get("timing_cache_entries_added")
        lines.append(f"timing cache: {timing}" + (f" ({added} entries added)" if added is not None else ""))
    if manifest.get("input_spec"):
        lines.append(f"input spec: {describe_spec(manifest['input_spec'])}")
    lines.append(f"travels:    {portability_line(manifest)}")
    if record["match_note"]:
        lines.append(f"taken:      {record['match_note']}")
    if "upload" in record:
        upload = record["upload"]
        done = "uploaded" if upload.get("uploaded") else "already in the store"
        lines.append(f"store:      {done}: {upload.get('plan_uri')}")
    typer.echo("\n".join(lines))


def build(
    onnx_path: common.OnnxPathOption = None,
    precision: common.PrecisionOption = None,
    min_batch: common.MinBatchOption = None,
    opt_batch: common.OptBatchOption = None,
    max_batch: common.MaxBatchOption = None,
    workspace_mb: common.WorkspaceOption = None,
    arch: Annotated[
        str | None, option("--arch", help="GPU compute capability (75, 86, 90, sm89); default: this GPU's.")
    ] = None,
    hardware_compatibility: common.HardwareCompatibilityOption = None,
    strip_weights: Annotated[
        bool | None,
        option(
            "--strip-weights/--no-strip-weights",
            help="Weight-stripped plan (STRIP_PLAN + REFIT_IDENTICAL), refit at load from the local ONNX "
            "(default: tensorrt.strip_weights).",
        ),
    ] = None,
    version_compatible: Annotated[
        bool | None,
        option(
            "--version-compatible/--no-version-compatible",
            help="Version-compatible plan: later TensorRT versions load it (default: tensorrt.version_compatible).",
        ),
    ] = None,
    exclude_lean_runtime: Annotated[
        bool | None,
        option(
            "--exclude-lean-runtime/--embed-lean-runtime",
            help="With --version-compatible: leave TensorRT's lean runtime out of the plan; it is then loaded "
            "through --lean-runtime-library (default: tensorrt.exclude_lean_runtime).",
        ),
    ] = None,
    lean_runtime_library: Annotated[
        str | None,
        option(
            "--lean-runtime-library",
            help="libnvinfer_lean.so of this TensorRT, for plans built with --exclude-lean-runtime "
            "(default: tensorrt.lean_runtime_library).",
        ),
    ] = None,
    cache_dir: common.CacheDirOption = None,
    force: Annotated[bool, typer.Option("--force", help="Rebuild even when the cached plan matches.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the engine name, paths, manifest and settings; build nothing.")
    ] = False,
    upload: Annotated[
        bool, typer.Option("--upload", help="Upload the plan and manifest to the S3 engine store (--bucket ...).")
    ] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="With --upload: replace an existing object.")] = False,
    bucket: store.BucketOption = None,
    prefix: store.PrefixOption = None,
    endpoint_url: store.EndpointOption = None,
    region: store.RegionOption = None,
    target: common.TargetOption = "gpu",
    calib_images: CalibImagesOption = None,
    calib_samples: CalibSamplesOption = 64,
    calibration_method: CalibrationMethodOption = "minmax",
    activation_type: Annotated[
        str | None,
        option(
            "--activation-type",
            help="int8: uint8 (U8S8, fast ONNX Runtime CPU kernels; the CPU default) | int8 (S8S8, what TensorRT "
            "needs; the default of --drift-budget on --target gpu).",
        ),
    ] = None,
    drift_budget: DriftBudgetOption = None,
    search_timeout: SearchTimeoutOption = None,
    eval_images: EvalImagesOption = None,
    plot: CurvePlotOption = None,
    config: common.ConfigOption = None,
    input_mean: common.InputMeanOption = None,
    input_std: common.InputStdOption = None,
    input_color: common.InputColorOption = None,
    json_output: common.JsonOption = False,
) -> None:
    """Build a TensorRT engine from an ONNX model, or reuse the cached one whose manifest matches.

    With --target cpu: a precision-transformed, ONNX Runtime-optimised ONNX for the CPU, cached the same way.
    An already quantized (QDQ) model is its own int8 engine; asking another precision of it is an error.

    With --drift-budget D (fp16, int8): the engine that keeps the fewest nodes in full precision such that the
    worst-sample drift on held-out crops is at most D, found by a search (docs/precision.md); exit 1 when no
    engine is within D (the closest result is shown).
    """
    from arcface_trt.engine.build import BuildRequest, build_engine
    from arcface_trt.engine.build import dry_run as plan_dry_run
    from arcface_trt.model.default import resolve_model_path
    from arcface_trt.store import engines as engine_store

    inputs = common.input_settings(input_mean, input_std, input_color)
    where = {"--bucket": bucket, "--prefix": prefix, "--endpoint-url": endpoint_url, "--region": region}
    for name, value in where.items():
        if value is not None and not upload:
            raise InputError(f"{name} goes with --upload")

    def on_status(message: str) -> None:
        status(message, enabled=not json_output)

    if check_target(target) == "cpu":
        plan_options = (arch, strip_weights, version_compatible, exclude_lean_runtime, lean_runtime_library)
        if upload or dry_run or any(value is not None for value in plan_options):
            raise InputError(
                "--upload, --dry-run, --arch and the options of plans that travel apply to TensorRT plans "
                "(--target gpu)"
            )
        calibration = calibration_settings(calib_images, calib_samples, calibration_method, activation_type or "uint8")
        budget = budget_request(drift_budget, precision, calibration, eval_images, search_timeout, plot)
        if budget is not None:
            _build_cpu_budget(onnx_path, budget, cache_dir, force, config, inputs, json_output, plot, on_status)
            return
        _build_cpu(onnx_path, precision, calibration, cache_dir, force, config, inputs, json_output)
        return

    cfg, settings = engine_settings(
        config,
        precision,
        min_batch,
        opt_batch,
        max_batch,
        workspace_mb,
        hardware_compatibility,
        strip_weights=strip_weights,
        version_compatible=version_compatible,
        exclude_lean_runtime=exclude_lean_runtime,
        lean_runtime_library=lean_runtime_library,
        **store.store_overrides(bucket, prefix, endpoint_url, region),
    )
    if drift_budget is not None and activation_type not in (None, "int8"):
        raise InputError("TensorRT builds int8 engines only from int8 activations: drop --activation-type uint8")
    calibration = calibration_settings(calib_images, calib_samples, calibration_method, "int8")
    budget = budget_request(drift_budget, settings.precision, calibration, eval_images, search_timeout, plot)
    model_path = resolve_model_path(onnx_path, cfg.embedding)
    request = BuildRequest(
        onnx_path=Path(model_path),
        settings=settings,
        arch=arch,
        cache_dir=cache_dir,
        force=force,
        keep_fp32_nodes=cfg.precision.keep_fp32_nodes,
        inputs=inputs.over(cfg.embedding.input_settings()),
        drift_budget=budget.budget if budget else None,
    )

    if dry_run:
        plan = plan_dry_run(request)
        if json_output:
            emit_json(plan)
        else:
            _human_dry_run(plan)
        return

    with build_progress(enabled=not json_output) as on_progress:
        if budget is not None:
            from arcface_trt.budget.tensorrt import build_budgeted_plan

            budgeted = build_budgeted_plan(request, budget, on_status, on_progress)
            result = budgeted.build
        else:
            result = build_engine(request, on_status=on_status, on_progress=on_progress)
    record = result.to_dict() if result else {}
    if upload and result:
        status("uploading to the engine store ...", enabled=not json_output)
        record["upload"] = engine_store.push_plan(settings, result.plan_path, overwrite=overwrite)
    if budget is not None:
        record = {**budgeted.to_dict(), **record}
    if json_output:
        emit_json(record)
    else:
        if result:
            _human_result(record)
        if budget is not None:
            echo_search(budgeted.search, budgeted.searched)
    if budget is not None:
        finish_search(budgeted.search, plot)


def _build_cpu(
    onnx_path: Path | None,
    precision: str | None,
    calibration: Any,
    cache_dir: Path | None,
    force: bool,
    config: Path | None,
    inputs: Any,
    json_output: bool,
) -> None:
    """``--target cpu``: the cached CPU engine (arcface_trt.precision.cpu_engine), built when needed."""
    from arcface_trt.config import load_config
    from arcface_trt.model.default import resolve_model_path
    from arcface_trt.precision.cpu_engine import ensure_cpu_engine

    cfg = load_config(config)
    engine = ensure_cpu_engine(
        resolve_model_path(onnx_path, cfg.embedding),
        cpu_precision(precision),
        calibration=calibration if precision == "int8" else None,
        keep_fp32_nodes=cfg.precision.keep_fp32_nodes,
        cache_dir=engine_cache_root(cfg.tensorrt.tensorrt.cache_dir, cache_dir),
        force=force,
        inputs=inputs.over(cfg.embedding.input_settings()),
    )
    if json_output:
        emit_json(engine.to_dict())
        return
    typer.echo("\n".join(_cpu_engine_lines(engine)))


def _cpu_engine_lines(engine: Any) -> list[str]:
    """A CPU engine for a person: where it is, its size, whether it was built now and why."""
    from arcface_trt.model.input_spec import describe_spec

    manifest = engine.manifest
    lines = [
        f"engine:     {engine.path}",
        f"size:       {manifest.engine_bytes / 1e6:.1f} MB",
        f"from cache: {'no' if engine.built else 'yes (manifest matches)'}",
    ]
    if engine.built:
        lines.append(f"build time: {manifest.build_seconds:.1f} s")
        lines.append(f"built because: {'; '.join(engine.rebuild_reasons)}")
    if manifest.input_spec:
        lines.append(f"input spec: {describe_spec(manifest.input_spec)}")
    lines += [f"note:       {note}" for note in manifest.precision_plan.get("notes", [])]
    return lines


def _build_cpu_budget(
    onnx_path: Path | None,
    budget: Any,
    cache_dir: Path | None,
    force: bool,
    config: Path | None,
    inputs: Any,
    json_output: bool,
    plot: Path | None,
    on_status: Any,
) -> None:
    """``--target cpu --drift-budget``: the budget's cached CPU engine, else the search's (arcface_trt.budget.cpu)."""
    from arcface_trt.budget.cpu import build_budgeted_cpu_engine
    from arcface_trt.config import load_config
    from arcface_trt.model.default import resolve_model_path

    cfg = load_config(config)
    result = build_budgeted_cpu_engine(
        resolve_model_path(onnx_path, cfg.embedding),
        budget,
        keep_fp32_nodes=cfg.precision.keep_fp32_nodes,
        cache_dir=engine_cache_root(cfg.tensorrt.tensorrt.cache_dir, cache_dir),
        force=force,
        inputs=inputs.over(cfg.embedding.input_settings()),
        on_status=on_status,
    )
    if json_output:
        emit_json(result.to_dict())
    else:
        typer.echo("\n".join([*(_cpu_engine_lines(result.engine) if result.engine else []), ""]))
        echo_search(result.search, result.searched)
    finish_search(result.search, plot)
