"""``arcface-trt export-triton``: a Triton Inference Server model folder from the cached (or built) engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from arcface_trt.cli import common
from arcface_trt.cli.common import cpu_precision, emit_json, engine_settings, option, status
from arcface_trt.errors import InputError
from arcface_trt.names import check_target


def _human(record: dict[str, Any]) -> None:
    model = record["model"]
    tensor = "{name} {data_type} {dims}"
    batching = (
        f"max_batch_size {model['max_batch_size']}, preferred {model['preferred_batch_sizes']}"
        if model["max_batch_size"]
        else "max_batch_size 0 (fixed batch)"
    )
    lines = [
        f"model folder: {record['folder']}" + (" (replaced)" if record["replaced"] else ""),
        f"platform:     {model['platform']} ({model['kind']}), {batching}",
        f"input:        {tensor.format(**model['input'])}",
        f"output:       {tensor.format(**model['output'])} (not L2-normalised)",
    ]
    source = "reused from the cache" if record["engine_source"] == "cache" else "built now"
    for f in model["files"]:
        lines.append(f"file:         1/{f['filename']} <- {f['engine']}")
    lines.append(f"engine:       {model['runtime']}, {source}")
    if model["cc_model_filenames"]:
        lines.append(f"per GPU:      {model['cc_model_filenames']}")
    if model["trt_version"]:
        lines.append(f"note:         the Triton container must carry TensorRT {model['trt_version']}")
    lines.append(f"readme:       {record['readme_path']}")
    typer.echo("\n".join(lines))


def export_triton(
    model_repository: Annotated[
        Path,
        typer.Option(
            "--model-repository",
            help="Triton model repository folder: the model goes into DIR/NAME/.",
            show_default=False,
        ),
    ],
    onnx_path: common.OnnxPathOption = None,
    precision: common.PrecisionOption = None,
    target: common.TargetOption = "gpu",
    name: Annotated[str | None, option("--name", help="Model name in Triton (default: {model}-{precision}).")] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing model folder that export-triton wrote.")
    ] = False,
    min_batch: common.MinBatchOption = None,
    opt_batch: common.OptBatchOption = None,
    max_batch: common.MaxBatchOption = None,
    workspace_mb: common.WorkspaceOption = None,
    hardware_compatibility: common.HardwareCompatibilityOption = None,
    cache_dir: common.CacheDirOption = None,
    config: common.ConfigOption = None,
    input_mean: common.InputMeanOption = None,
    input_std: common.InputStdOption = None,
    input_color: common.InputColorOption = None,
    json_output: common.JsonOption = False,
) -> None:
    """Write a Triton model folder: config.pbtxt, README.md and 1/model.plan (or 1/model.onnx with --target cpu).

    The engine is taken from the cache, or built as build builds it.

    GPU: cached plans of other GPUs with the same settings and TensorRT version join it (cc_model_filenames).

    CPU: --opt-batch and --max-batch set Triton's preferred and max batch sizes.
    """
    from arcface_trt.export.triton import TritonExportRequest
    from arcface_trt.export.triton import export_triton as write_export
    from arcface_trt.model.default import resolve_model_path

    inputs = common.input_settings(input_mean, input_std, input_color)
    if check_target(target) == "cpu":
        if workspace_mb is not None or hardware_compatibility is not None or min_batch is not None:
            raise InputError("--workspace-mb, --hardware-compatibility and --min-batch apply to TensorRT plans")
        precision = cpu_precision(precision)
    cfg, settings = engine_settings(
        config, precision, min_batch, opt_batch, max_batch, workspace_mb, hardware_compatibility
    )
    request = TritonExportRequest(
        onnx_path=resolve_model_path(onnx_path, cfg.embedding),
        repository=model_repository,
        settings=settings,
        target=target,
        name=name,
        overwrite=overwrite,
        cache_dir=cache_dir,
        keep_fp32_nodes=cfg.precision.keep_fp32_nodes,
        inputs=inputs.over(cfg.embedding.input_settings()),
    )
    result = write_export(request, on_status=lambda message: status(message, enabled=not json_output))
    if json_output:
        emit_json(result.to_dict())
    else:
        _human(result.to_dict())
