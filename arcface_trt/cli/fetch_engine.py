"""``arcface-trt fetch-engine``: download the plan that fits this machine from the S3 engine store."""

from __future__ import annotations

from typing import Annotated

import typer

from arcface_trt.cli import common
from arcface_trt.cli import store_options as store
from arcface_trt.cli.common import emit_json, option


def fetch_engine(
    model: Annotated[
        str | None,
        option(
            "--model",
            help="Model name in the engine key (default: the configured model's file name, else the built-in model's).",
        ),
    ] = None,
    precision: Annotated[
        str | None, option("--precision", help="fp32 | fp16 | int8 (default: tensorrt.precision).")
    ] = None,
    arch: Annotated[
        str | None,
        option(
            "--arch",
            help="GPU compute capability, e.g. 90 or sm89 (default: this GPU's); lets a machine without a GPU "
            "stage engines.",
        ),
    ] = None,
    trt_version: Annotated[
        str | None,
        option("--trt-version", help="TensorRT version, e.g. 10.16 (default: the installed tensorrt module's)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Download even when the local copy is current.")] = False,
    bucket: store.BucketOption = None,
    prefix: store.PrefixOption = None,
    endpoint_url: store.EndpointOption = None,
    region: store.RegionOption = None,
    cache_dir: common.CacheDirOption = None,
    config: common.ConfigOption = None,
    json_output: common.JsonOption = False,
) -> None:
    """Download the plan for this machine (model, precision, GPU arch, TensorRT version) into the local engine cache.

    The plan is checked against its manifest's sha256 before it is put in place; a current
    local copy is kept without downloading again (use --force to download anyway).
    """
    from arcface_trt.artifacts.key import EngineKey
    from arcface_trt.engine.build import detect_sm_arch, detect_trt_version, engine_cache
    from arcface_trt.model.default import configured_model_name
    from arcface_trt.store.engines import fetch

    cfg, section = store.store_settings(config, bucket, prefix, endpoint_url, region, precision=precision)
    key = EngineKey(
        model or configured_model_name(cfg.embedding),
        section.precision,
        arch if arch is not None else detect_sm_arch(),
        trt_version if trt_version is not None else detect_trt_version(),
    )
    cache = engine_cache(section, cache_dir)
    result = fetch(section, key, cache, force=force)
    if json_output:
        emit_json(result.to_dict())
    elif result.downloaded:
        typer.echo(
            f"fetched {result.source} -> {result.plan_path} "
            f"({store.human_bytes(result.plan_bytes)}, sha256 verified, {result.seconds:.1f} s)"
        )
    else:
        typer.echo(f"up to date: {result.plan_path} (same sha256 as {result.source}; nothing downloaded)")
