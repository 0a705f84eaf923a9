"""``arcface-trt push-engine PATH``: upload a plan and its manifest to the S3 engine store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from arcface_trt.cli import common
from arcface_trt.cli import store_options as store
from arcface_trt.cli.common import emit_json


def push_engine(
    plan: Annotated[
        Path,
        typer.Argument(help="The .plan file; its manifest (same name, .json) must sit beside it.", show_default=False),
    ],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a different plan already stored under the same key.")
    ] = False,
    bucket: store.BucketOption = None,
    prefix: store.PrefixOption = None,
    endpoint_url: store.EndpointOption = None,
    region: store.RegionOption = None,
    config: common.ConfigOption = None,
    json_output: common.JsonOption = False,
) -> None:
    """Upload a plan and its manifest (plan first, manifest last) under the plan's engine key.

    Refuses a plan without a manifest or whose sha256 differs from it. Pushing the same
    plan again changes nothing; a different plan under the same key needs --overwrite.
    """
    from arcface_trt.store.engines import push_plan

    _, section = store.store_settings(config, bucket, prefix, endpoint_url, region)
    record = push_plan(section, plan, overwrite=overwrite)
    if json_output:
        emit_json(record)
    elif not record["uploaded"]:
        typer.echo(f"already in the store: {record['plan_uri']} (same sha256; nothing uploaded)")
    else:
        verb = "replaced" if record["replaced"] else "uploaded"
        typer.echo(f"{verb} {record['plan_uri']} ({store.human_bytes(record['plan_bytes'])}) and its manifest")
