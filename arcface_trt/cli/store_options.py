"""Options shared by the engine-store commands (fetch-engine, push-engine, list-engines)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

BucketOption = Annotated[
    str | None,
    typer.Option(
        "--bucket", help="S3 bucket of the engine store (default: tensorrt.engine_s3_bucket).", show_default=False
    ),
]
PrefixOption = Annotated[
    str | None,
    typer.Option(
        "--prefix",
        help="Key prefix inside the bucket (default: tensorrt.engine_s3_prefix, 'engines/').",
        show_default=False,
    ),
]
EndpointOption = Annotated[
    str | None,
    typer.Option(
        "--endpoint-url",
        help="S3-compatible endpoint, e.g. http://minio:9000 (default: tensorrt.engine_s3_endpoint_url, "
        "else $AWS_ENDPOINT_URL, else AWS).",
        show_default=False,
    ),
]
RegionOption = Annotated[
    str | None,
    typer.Option(
        "--region", help="Bucket region (default: tensorrt.engine_s3_region, else $AWS_REGION).", show_default=False
    ),
]


def store_settings(
    config: Path | None,
    bucket: str | None,
    prefix: str | None,
    endpoint_url: str | None,
    region: str | None,
    **more: Any,
) -> tuple[Any, Any]:
    """The loaded config and its ``tensorrt:`` section with the command-line overrides applied."""
    from arcface_trt.config import load_config, with_overrides

    cfg = load_config(config)
    section = with_overrides(
        cfg.tensorrt.tensorrt,
        "tensorrt",
        engine_s3_bucket=bucket,
        engine_s3_prefix=prefix,
        engine_s3_endpoint_url=endpoint_url,
        engine_s3_region=region,
        **more,
    )
    return cfg, section


def human_bytes(size: int | None) -> str:
    """``12.3 MB`` style size for tables and messages."""
    if size is None:
        return "-"
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{value:.1f} GB"  # pragma: no cover - the loop returns
