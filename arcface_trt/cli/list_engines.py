"""``arcface-trt list-engines``: what the S3 engine store holds."""

from __future__ import annotations

from typing import Annotated

import typer

from arcface_trt.cli import common
from arcface_trt.cli import store_options as store
from arcface_trt.cli.common import emit_json, markup_safe, option, printable, stdout_console


def list_engines(
    model: Annotated[str | None, option("--model", help="Only this model's engines.")] = None,
    bucket: store.BucketOption = None,
    prefix: store.PrefixOption = None,
    endpoint_url: store.EndpointOption = None,
    region: store.RegionOption = None,
    config: common.ConfigOption = None,
    json_output: common.JsonOption = False,
) -> None:
    """List the engines in the store: model, precision, GPU arch, TensorRT version, weights, compatibility, size, date.

    Names come from a shared store: only keys that are valid engine names are listed, and every
    text is shown as text (markup escaped, control characters written out).
    """
    from rich.table import Table

    from arcface_trt.store.engines import list_engines as list_store
    from arcface_trt.store.s3 import StoreSettings

    _, section = store.store_settings(config, bucket, prefix, endpoint_url, region)
    where = StoreSettings.from_section(section).uri()
    entries = list_store(section, model=model)
    if json_output:
        emit_json({"store": where, "engines": [e.to_dict() for e in entries]})
        return
    if not entries:
        typer.echo(printable(f"no engines in {where}" + (f" for model '{model}'" if model else "")))
        return
    table = Table(title=f"Engines in {markup_safe(where)}")
    for column in ("model", "precision", "arch", "TensorRT", "plan", "size", "date (UTC)"):
        # The date wraps (at 80 columns) before a name is cut.
        table.add_column(column, justify="right" if column == "size" else "left", no_wrap=column != "date (UTC)")
    table.caption = (
        "plan: full, stripped (refit from the local ONNX) or vercompat (later TensorRT too); sm80+: any GPU 8.0+"
    )
    for e in entries:
        date = (e.last_modified or "-")[:16].replace("T", " ")
        style = None if e.complete else "red"
        kind = "vercompat" if e.version_compatible else e.weights
        cells = (e.model, e.precision, e.sm_arch, e.trt_version, kind, store.human_bytes(e.plan_bytes), date)
        table.add_row(*(markup_safe(cell) for cell in cells), style=style)
    incomplete = [markup_safe(e.label) for e in entries if not e.complete]
    if incomplete:
        table.caption += f"\nincomplete (fetch refuses them; push again): {', '.join(incomplete)}"
    stdout_console().print(table)
