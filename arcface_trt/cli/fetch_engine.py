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

    The plan is checked against its manifest's sha256 before it is put in place; a current
    local copy is kept without downloading again (use --force to download anyway).
    """
    from arcface_trt.engine.build import engine_cache
    from arcface_trt.store.engines import fetch

    cfg, section = store.store_settings(config, bucket, prefix, endpoint_url, region, precision=precision)
    key = common.engine_key(cfg, section.precision, model, arch, trt_version)
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
