"""``arcface-trt fetch-engine``: download the plan that fits this machine from the S3 engine store."""

from __future__ import annotations

from typing import Annotated

import typer

from arcface_trt.cli import common
from arcface_trt.cli import store_options as store
from arcface_trt.cli.common import emit_json


def fetch_engine(
    model: common.KeyModelOption = None,
    precision: common.KeyPrecisionOption = None,
    arch: common.KeyArchOption = None,
    trt_version: common.KeyTrtVersionOption = None,
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

    The exact plan when the store has it, else a compatible one (an sm80+ plan, a version-compatible
    plan of an earlier TensorRT this one runs, or a weight-stripped plan, refit at load from the local
    ONNX), and says which. The plan is checked against its manifest's sha256 before it is put in place;
    a current local copy is kept without downloading again (use --force to download anyway).
    """
    from arcface_trt.engine.build import engine_cache
    from arcface_trt.store.engines import fetch_for

    cfg, section = store.store_settings(config, bucket, prefix, endpoint_url, region, precision=precision)
    wanted = common.plan_request(cfg, section, model, arch, trt_version)
    cache = engine_cache(section, cache_dir)
    result = fetch_for(section, wanted, cache, force=force)
    if json_output:
        emit_json(result.to_dict())
        return
    if result.downloaded:
        typer.echo(
            f"fetched {result.source} -> {result.plan_path} "
            f"({store.human_bytes(result.plan_bytes)}, sha256 verified, {result.seconds:.1f} s)"
        )
    else:
        typer.echo(f"up to date: {result.plan_path} (same sha256 as {result.source}; nothing downloaded)")
    if result.match_note:
        typer.echo(f"not the exact plan ({wanted.key.relpath}), which the store lacks: took {result.match_note}")
