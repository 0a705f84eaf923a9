"""``arcface-trt inspect``: what a TensorRT plan is (its manifest's facts; with TensorRT, what the engine says)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from arcface_trt.cli import common
from arcface_trt.cli.common import emit_json, portability_line, precision_line, printable


def _io_line(io: Any) -> str:
    if not isinstance(io, dict):
        return "-"
    return ", ".join(
        f"{role} {t.get('name')} {t.get('shape')} {t.get('dtype')}" for role, t in io.items() if isinstance(t, dict)
    )


def _facts_lines(facts: dict[str, Any]) -> list[str]:
    from arcface_trt.model.input_spec import describe_spec

    batch = facts["batch_profile"]
    lines = [
        f"model:       {facts['model']}, {facts['precision']} ({facts['precision_path']})",
        f"TensorRT:    {facts['trt_version']}",
        f"GPU:         {facts['gpu_name']} ({facts['sm_arch']})",
        f"travels:     {portability_line(facts)}",
        f"loads on:    {facts['loads_on']}",
        f"batch:       {batch['min']}..{batch['max']}, opt {batch['opt']}",
        f"I/O:         {_io_line(facts['io_tensors'])}"
        if facts["io_tensors"]
        else f"input:       {facts['input_name']}",
    ]
    if facts["input_spec"] is not None:
        lines.append(f"input spec:  {describe_spec(facts['input_spec'])}")
    if facts["precision_summary"] is not None:
        lines.append(f"precision:   {precision_line(facts['precision_summary'], facts['precision_check'])}")
    else:
        lines.append("precision:   no layer summary recorded (built before arcface-trt recorded one)")
    built = f"built:       {facts['created_at']} by arcface-trt {facts['tool_version']}"
    if isinstance(facts["build_seconds"], int | float):
        built += f" in {facts['build_seconds']:.1f} s"
    if facts["timing_cache"]:
        built += f"; timing cache {facts['timing_cache']}"
    lines.append(built)
    return lines


def _human(report: Any) -> None:
    record = report.to_dict()
    check = "matches the manifest" if (record["manifest"] or {}).get("plan_sha256_matches") else "unchecked"
    if record["manifest"] and not record["manifest"]["plan_sha256_matches"]:
        check = "DIFFERS from the manifest"
    lines = [f"plan:        {record['plan_path']} ({record['plan_bytes'] / 1e6:.1f} MB, sha256 {check})"]
    if record["manifest"] is not None:
        lines.append(f"manifest:    {record['manifest_path']}")
        lines += _facts_lines(record["manifest"])
    else:
        lines.append(f"manifest:    none ({record['manifest_problem']})")
        if record["name"]:
            name = record["name"]
            lines.append(
                f"file name:   model {name['model']}, {name['precision']}, {name['sm_arch']}, "
                f"TensorRT {name['trt']} (from the name only)"
            )
    engine = record["engine"]
    if engine is not None:
        lines.append(
            f"engine:      loaded with TensorRT {engine['trt_version']}: {_io_line(engine['io_tensors'])}; "
            f"batch {engine['batch_profile']['min']}..{engine['batch_profile']['max']}, "
            f"{engine['layers']} layers"
        )
        lines.append(f"  layers:    {precision_line(engine['precision_summary'], engine['precision_check'])}")
    lines += [f"unknown:     {item}" for item in record["unknown"]]
    if record["disagreements"]:
        lines += [f"DISAGREES:   {item}" for item in record["disagreements"]]
    typer.echo(printable("\n".join(lines)))  # manifests come from files and stores


def inspect(
    plan: Annotated[
        Path | None,
        typer.Argument(
            help="The .plan file (its manifest is the .json beside it); default: the cached plan the key options name.",
            show_default=False,
        ),
    ] = None,
    model: common.KeyModelOption = None,
    precision: common.KeyPrecisionOption = None,
    arch: common.KeyArchOption = None,
    trt_version: common.KeyTrtVersionOption = None,
    onnx_path: Annotated[
        Path | None,
        common.option(
            "--onnx-path",
            help="The model a weight-stripped plan was built from, to refit it before TensorRT inspects it "
            "(default: the configured model, else the built-in one).",
        ),
    ] = None,
    cache_dir: common.CacheDirOption = None,
    config: common.ConfigOption = None,
    json_output: common.JsonOption = False,
) -> None:
    """Say what a TensorRT plan is: TensorRT version, GPU, weights, compatibility, batch profile, I/O, layer precisions.

    Without TensorRT it reports the manifest's facts and what it cannot know; with TensorRT and a GPU
    that can load the plan it also asks the engine (a weight-stripped plan refit from --onnx-path first),
    and flags every disagreement (exit 1), such as an engine labelled fp16 whose layers run in fp32.
    The key options find the exact cached plan, else the compatible one the tensorrt backend would take.
    """
    from arcface_trt.engine.build import engine_cache, manifest_load_options
    from arcface_trt.engine.plan_report import inspect_plan
    from arcface_trt.errors import InputError
    from arcface_trt.model.default import resolve_model_path

    cfg, settings = common.tensorrt_settings(config, precision=precision)
    cache = engine_cache(settings, cache_dir)
    if plan is None:
        # The exact plan, else the compatible one the backend would take (a fetched sm80+ or stripped plan).
        wanted = common.plan_request(cfg, settings, model, arch, trt_version)
        found = wanted.candidates(key for key in cache.cached_keys() if cache.path(key).exists())
        if not found:
            raise InputError(
                f"no cached plan {wanted.key.relpath} in {cache.root} (nor a compatible one): build it "
                "(arcface-trt build) or fetch it (arcface-trt fetch-engine) first, or pass the plan's path"
            )
        plan = cache.path(found[0].key)
    elif any(v is not None for v in (model, precision, arch, trt_version, cache_dir)):
        raise InputError("give a PLAN path or the key options (--model, --precision, --arch, --trt-version), not both")

    def loader(manifest: Any) -> Any:
        source = resolve_model_path(onnx_path, cfg.embedding) if manifest.weights == "stripped" else None
        return manifest_load_options(manifest, source, settings, cache)

    report = inspect_plan(plan, settings.min_fp16_share, loader)
    if json_output:
        emit_json(report.to_dict())
    else:
        _human(report)
    if not report.passed:
        raise typer.Exit(1)
