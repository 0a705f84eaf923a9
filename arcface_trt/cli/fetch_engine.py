"""``arcface-trt fetch-engine``: download the plan that fits this machine from the S3 engine store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arcface_trt.cli.common import ConfigOption, JsonOption, emit_json
from arcface_trt.cli.store_options import (
    BucketOption,
    EndpointOption,
    PrefixOption,
    RegionOption,
    human_bytes,
    store_settings,
)


def _detect_arch() -> str:
    """This GPU's ``sm`` arch, or an error asking for ``--arch``."""
    from arcface_trt.errors import ArcFaceTrtError, InputError

    try:
        from arcface_trt.engine import gpu

        return gpu.gpu_info(0).sm_arch
    except (ImportError, ArcFaceTrtError) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(
            f"cannot detect this machine's GPU arch ({reason}); pass --arch (e.g. 90 for H100, 89 for L4)"
        ) from None


def _detect_trt_version() -> str:
    """The installed TensorRT version, or an error asking for ``--trt-version``."""
    from arcface_trt.errors import ArcFaceTrtError, InputError

    try:
        from arcface_trt.engine import trt_api

        return trt_api.version(trt_api.load())
    except (ImportError, ArcFaceTrtError) as exc:
        reason = " ".join(str(exc).split())
        raise InputError(f"cannot detect the TensorRT version ({reason}); pass --trt-version (e.g. 10.16)") from None


def default_model_name(cfg: object) -> str:
    """The engine name of the configured model: its file stem, else the built-in model's."""
    from arcface_trt.model.default import default_model_path

    embedding = cfg.embedding  # type: ignore[attr-defined]
    if embedding.model_path:
        return Path(embedding.model_path).stem
    return default_model_path(embedding.model_arch, embedding.model_seed).stem


def fetch_engine(
    model: Annotated[
        str | None,
        typer.Option(
            "--model",
            help="Model name in the engine key (default: the configured model's file name, else the built-in model's).",
            show_default=False,
        ),
    ] = None,
    precision: Annotated[
        str | None,
        typer.Option("--precision", help="fp32 | fp16 | int8 (default: tensorrt.precision).", show_default=False),
    ] = None,
    arch: Annotated[
        str | None,
        typer.Option(
            "--arch",
            help="GPU compute capability, e.g. 90 or sm89 (default: this GPU's); lets a machine without a GPU "
            "stage engines.",
            show_default=False,
        ),
    ] = None,
    trt_version: Annotated[
        str | None,
        typer.Option(
            "--trt-version",
            help="TensorRT version, e.g. 10.16 (default: the installed tensorrt module's).",
            show_default=False,
        ),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Download even when the local copy is current.")] = False,
    bucket: BucketOption = None,
    prefix: PrefixOption = None,
    endpoint_url: EndpointOption = None,
    region: RegionOption = None,
    cache_dir: Annotated[
        Path | None,
        typer.Option(
            "--cache-dir",
            help="Engine cache folder (default: tensorrt.cache_dir, else the user cache).",
            show_default=False,
        ),
    ] = None,
    config: ConfigOption = None,
    json_output: JsonOption = False,
) -> None:
    """Download the plan for this machine (model, precision, GPU arch, TensorRT version) into the local engine cache.

    The plan is checked against its manifest's sha256 before it is put in place; a current
    local copy is kept without downloading again (use --force to download anyway).
    """
    from arcface_trt.engine.build import engine_cache
    from arcface_trt.engine.key import EngineKey
    from arcface_trt.store.engines import fetch

    cfg, section = store_settings(config, bucket, prefix, endpoint_url, region, precision=precision)
    key = EngineKey(
        model or default_model_name(cfg),
        section.precision,
        arch if arch is not None else _detect_arch(),
        trt_version if trt_version is not None else _detect_trt_version(),
    )
    cache = engine_cache(section, cache_dir)
    result = fetch(section, key, cache, force=force)
    if json_output:
        emit_json(result.to_dict())
    elif result.downloaded:
        typer.echo(
            f"fetched {result.source} -> {result.plan_path} "
            f"({human_bytes(result.plan_bytes)}, sha256 verified, {result.seconds:.1f} s)"
        )
    else:
        typer.echo(f"up to date: {result.plan_path} (same sha256 as {result.source}; nothing downloaded)")
