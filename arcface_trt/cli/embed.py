"""``arcface-trt embed``: bulk embeddings of a folder, list file or ``.npy`` of face crops into Parquet or ``.npy``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from arcface_trt.cli import common
from arcface_trt.cli.common import emit_json, option, stdout_console

#: Unreadable paths listed in the table (all of them are in --json).
_SHOWN_UNREADABLE = 10


@contextmanager
def _rate_progress(enabled: bool) -> Iterator[Callable[[int, int], None]]:
    """A progress bar with images/s on stderr, sized on the first call (the count left after --resume).

    common.progress has no rate column and needs its total up front, hence this one.
    """
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeRemainingColumn
    from rich.text import Text

    class RateColumn(ProgressColumn):
        def render(self, task: Any) -> Text:
            speed = task.finished_speed or task.speed
            return Text(f"{speed:,.1f} img/s" if speed else "-- img/s")

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda advance, todo: None
        return
    columns = (TextColumn("embedding"), BarColumn(), MofNCompleteColumn(), RateColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task: list[Any] = []

        def update(advance: int, todo: int) -> None:
            if not task:
                task.append(bar.add_task("embedding", total=todo))
            bar.advance(task[0], advance)

        yield update


def _table(summary: Any) -> Any:
    from rich.table import Table

    from arcface_trt.model.input_spec import describe_spec

    table = Table(title=f"embed: {summary.rows_in_output} rows in {summary.output}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    where = (
        "Ray" + (f" at {summary.ray_address}" if summary.ray_address else " (local instance)") if summary.ray else ""
    )
    rows = [
        ("input", summary.input),
        ("backend", f"{summary.backend} ({summary.precision})" + (f" on {where}" if where else "")),
        ("model", f"{summary.model_path} (sha256 {summary.model_sha256[:12]}...)"),
        (
            "paths in input",
            f"{summary.total}" + (f" ({summary.duplicates} duplicates dropped)" if summary.duplicates else ""),
        ),
        ("embedded now", str(summary.embedded)),
        ("already in output (skipped)", str(summary.skipped_existing)),
        ("unreadable (skipped)", str(summary.unreadable_count)),
        ("throughput", f"{summary.images_per_s:,.1f} img/s over {summary.embed_elapsed_s:.1f} s"),
        ("elapsed (with model load and merge)", f"{summary.elapsed_s:.1f} s"),
    ]
    if summary.input_spec:
        rows.append(("input spec", describe_spec(summary.input_spec)))
    if summary.collapse is not None:
        check = summary.collapse
        rows.append(("collapse guard", f"mean cosine {check.mean_cosine:.4f} of {check.faces} different faces"))
        if check.collapsed:
            rows.append(("WARNING", check.message()))
    if summary.fallback_reason:
        rows.append(("fallback", summary.fallback_reason))
    for field, value in rows:
        table.add_row(field, value)
    if summary.unreadable:
        shown = [f"{u['path']}: {u['reason']}" for u in summary.unreadable[:_SHOWN_UNREADABLE]]
        more = summary.unreadable_count - len(shown)
        table.caption = "unreadable: " + "; ".join(shown) + (f"; and {more} more (see --json)" if more > 0 else "")
    return table


def embed(
    input_path: Annotated[
        Path,
        typer.Argument(
            metavar="INPUT",
            help="Folder of face crops (jpg/png, recursive), a text file listing image paths, or a .npy of crops.",
            show_default=False,
        ),
    ],
    out: Annotated[Path, option("--out", help="Output: FILE.parquet, or FILE.npy (+ FILE.index.parquet).")],
    backend: Annotated[
        str | None, option("--backend", help=f"{common.BACKEND_CHOICES_TEXT} (default: embedding.backend).")
    ] = None,
    onnx_path: common.OnnxPathOption = None,
    device: common.DeviceOption = None,
    batch_size: Annotated[
        int | None, option("--batch-size", help="Crops per backend call (default: embedding.batch_size).")
    ] = None,
    threads: Annotated[
        int | None,
        option("--threads", help="Reader threads that decode and preprocess ahead (default: half the cores, 1 to 4)."),
    ] = None,
    chunk_size: Annotated[
        int, typer.Option("--chunk-size", help="Rows per committed part (what an interruption can lose at most).")
    ] = 2048,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue an interrupted run / add only the paths the output lacks.")
    ] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace an existing output or unfinished run.")
    ] = False,
    allow_cpu_fallback: common.AllowCpuFallbackOption = None,
    ray: Annotated[
        bool, typer.Option("--ray", help="Run on Ray Data (a local instance unless --ray-address).")
    ] = False,
    ray_address: Annotated[
        str | None,
        option("--ray-address", help="Ray cluster to connect to, e.g. 'auto' or ray://host:10001 (implies --ray)."),
    ] = None,
    config: common.ConfigOption = None,
    input_mean: common.InputMeanOption = None,
    input_std: common.InputStdOption = None,
    input_color: common.InputColorOption = None,
    json_output: common.JsonOption = False,
) -> None:
    """Embed every face crop of INPUT into --out, reading ahead in threads; resumable; optionally on Ray.

    Unreadable images are skipped and listed. Continue an interrupted run with --resume. See docs/embed.md.
    """
    from arcface_trt.backends.spec import BackendSpec
    from arcface_trt.config import load_config
    from arcface_trt.embed import embed_to_file

    inputs = common.input_settings(input_mean, input_std, input_color)
    cfg = load_config(config)
    spec = BackendSpec.resolve(
        backend, device, None, allow_cpu_fallback, onnx_path, config=cfg, batch_size=batch_size, inputs=inputs
    )
    with _rate_progress(enabled=not json_output) as advance:
        summary = embed_to_file(
            input_path,
            out,
            spec=spec,
            threads=threads,
            chunk_size=chunk_size,
            resume=resume,
            overwrite=overwrite,
            progress=advance,
            ray=ray,
            ray_address=ray_address,
            collapse_cosine=cfg.validation.collapse_cosine,
        )
    if json_output:
        emit_json(summary.to_dict())
    else:
        stdout_console().print(_table(summary))
