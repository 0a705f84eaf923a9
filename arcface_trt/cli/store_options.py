"""Options shared by the engine-store commands (fetch-engine, push-engine, list-engines, build --upload)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from arcface_trt.cli.common import option, tensorrt_settings
from arcface_trt.names import ENDPOINT_ENV_VARS, REGION_ENV_VARS

BucketOption = Annotated[
    str | None, option("--bucket", help="S3 bucket of the engine store (default: tensorrt.engine_s3_bucket).")
]
PrefixOption = Annotated[
    str | None,
    option("--prefix", help="Key prefix inside the bucket (default: tensorrt.engine_s3_prefix, 'engines/')."),
]
EndpointOption = Annotated[
    str | None,
    option(
        "--endpoint-url",
        help="S3-compatible endpoint, e.g. http://minio:9000 (default: tensorrt.engine_s3_endpoint_url, "
        f"else ${', then $'.join(ENDPOINT_ENV_VARS)}, else AWS).",
    ),
]
RegionOption = Annotated[
    str | None,
    option(
        "--region",
        help=f"Bucket region (default: tensorrt.engine_s3_region, else ${', then $'.join(REGION_ENV_VARS)}).",
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
    return tensorrt_settings(config, **store_overrides(bucket, prefix, endpoint_url, region), **more)


def store_overrides(
    bucket: str | None, prefix: str | None, endpoint_url: str | None, region: str | None
) -> dict[str, str | None]:
    """The ``tensorrt:`` keys the store options override (None: not given, the config's value stays)."""
    return {
        "engine_s3_bucket": bucket,
        "engine_s3_prefix": prefix,
        "engine_s3_endpoint_url": endpoint_url,
        "engine_s3_region": region,
    }


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
