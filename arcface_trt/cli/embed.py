"""``arcface-trt embed``: bulk embeddings of a folder, list file or ``.npy`` of face crops into Parquet or ``.npy``."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any

import typer

from arcface_trt.cli import common, store_options
from arcface_trt.cli.common import emit_json, markup_safe, option, stdout_console

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


def _where(summary: Any) -> str:
    """Where the embedding ran, for the table: `` on Ray (started a local instance; 2 CPU actors x 1 thread)``."""
    if not summary.ray:
        return ""
    if summary.ray_cluster == "started":
        how = "started a local instance"
    elif summary.ray_cluster == "joined":
        how = f"joined the cluster at {summary.ray_address}" if summary.ray_address else "joined the running Ray"
    else:
        how = "nothing left to embed"
    return f" on Ray ({how}" + (f"; {summary.ray_actors}" if summary.ray_actors else "") + ")"


def _stage_rows(stages: Any) -> list[tuple[str, str]]:
    """Each stage alone and the pipeline's steady state, so the table shows which stage bounds the run."""
    if stages is None:
        return []
    threads = f"{stages.reader_threads} thread" + ("s" if stages.reader_threads > 1 else "")
    return [
        ("overlapped, steady state", f"{stages.embed_img_s:,.1f} img/s (first {stages.pipelined_images})"),
        ("decode+preprocess alone", f"{stages.decode_only_img_s:,.1f} img/s (last {stages.probe_images}, {threads})"),
        ("encode alone", f"{stages.encode_only_img_s:,.1f} img/s (the same {stages.probe_images})"),
        ("slower stage", f"{stages.bound_stage}: overlapped runs at {stages.embed_vs_bound:.2f} x it"),
    ]


def _table(summary: Any) -> Any:
    from rich.table import Table

    from arcface_trt.model.input_spec import describe_spec

    table = Table(title=f"embed: {summary.rows_in_output} rows in {summary.output}", show_header=False)
    table.add_column("field")
    table.add_column("value")
    rows = [
        ("input", summary.input),
        ("backend", f"{summary.backend} ({summary.precision})" + _where(summary)),
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
        *_stage_rows(summary.stages),
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
        table.add_row(markup_safe(field), markup_safe(value))
    if summary.unreadable:
        shown = [f"{u['path']}: {u['reason']}" for u in summary.unreadable[:_SHOWN_UNREADABLE]]
        more = summary.unreadable_count - len(shown)
        caption = "unreadable: " + "; ".join(shown) + (f"; and {more} more (see --json)" if more > 0 else "")
        table.caption = markup_safe(caption)
    return table


def embed(
    input_path: Annotated[
        str,
        typer.Argument(
            metavar="INPUT",
            help="Folder of face crops (jpg/png, recursive), a text file listing image paths, or a .npy of crops; "
            "local, or an object-store URI (s3://bucket/crops/).",
            show_default=False,
        ),
    ],
    out: Annotated[
        str,
        option("--out", help="Output: FILE.parquet, or FILE.npy (+ FILE.index.parquet); local or s3://bucket/key."),
    ],
    backend: Annotated[
        str | None, option("--backend", help=f"{common.BACKEND_CHOICES_TEXT} (default: embedding.backend).")
    ] = None,
    onnx_path: Annotated[
        str | None,
        option(
            "--onnx-path",
            help="ONNX recognition model, a local file or a URI every node reads, e.g. s3://bucket/models/m.onnx "
            "(default: the configured model, else the built-in r50).",
        ),
    ] = None,
    device: common.DeviceOption = None,
    batch_size: Annotated[
        int | None, option("--batch-size", help="Crops per backend call (default: embedding.batch_size).")
    ] = None,
    threads: Annotated[
        int | None,
        option(
            "--threads",
            help="Reader threads that decode and preprocess ahead (default: with a GPU backend every CPU but one, "
            "at most 16; else half the CPUs, 1 to 4).",
        ),
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
        bool, typer.Option("--ray", help="Run on Ray Data (a local instance unless --ray-address or $RAY_ADDRESS).")
    ] = False,
    ray_address: Annotated[
        str | None,
        option("--ray-address", help="Ray cluster to join, e.g. 'auto' or <head-ip>:6379 (implies --ray)."),
    ] = None,
    actors: Annotated[
        str | None,
        option(
            "--actors",
            help="Ray: embedding actors, N or MIN,MAX (autoscaling) (default: one per GPU, else as many "
            "CPU actors as fit, keeping an eighth of the CPUs for decoding).",
        ),
    ] = None,
    threads_per_actor: Annotated[
        int | None,
        option(
            "--threads-per-actor",
            help="Ray: CPUs each actor reserves, and its backend's threads (default: 1 for GPU actors, "
            "else a quarter of the largest node's CPUs, 1 to 8).",
        ),
    ] = None,
    endpoint_url: store_options.EndpointOption = None,
    region: store_options.RegionOption = None,
    config: common.ConfigOption = None,
    input_mean: common.InputMeanOption = None,
    input_std: common.InputStdOption = None,
    input_color: common.InputColorOption = None,
    json_output: common.JsonOption = False,
) -> None:
    """Embed every face crop of INPUT into --out, reading ahead in threads; resumable; optionally on Ray.

    INPUT, --out and --onnx-path may be s3:// URIs (S3 settings as the engine store's). Unreadable
    images are skipped and listed. Continue an interrupted run with --resume. See docs/embed.md.
    """
    from arcface_trt.backends.spec import BackendSpec
    from arcface_trt.embed import embed_to_file

    inputs = common.input_settings(input_mean, input_std, input_color)
    cfg, section = store_options.store_settings(config, None, None, endpoint_url, region)
    spec = BackendSpec.resolve(
        backend,
        device,
        None,
        allow_cpu_fallback,
        onnx_path,
        config=cfg.with_tensorrt_section(section),
        batch_size=batch_size,
        inputs=inputs,
    )
    use_ray = ray or ray_address is not None
    # Ray prints its workers' messages on stdout: they go to stderr, so stdout stays the table or the JSON.
    with _rate_progress(enabled=not json_output) as advance, common.stdout_to_stderr(enabled=use_ray):
        summary = embed_to_file(
            input_path,
            out,
            spec=spec,
            threads=threads,
            chunk_size=chunk_size,
            resume=resume,
            overwrite=overwrite,
            progress=advance,
            ray=use_ray,
            ray_address=ray_address,
            collapse_cosine=cfg.validation.collapse_cosine,
            ray_actors=actors,
            ray_threads_per_actor=threads_per_actor,
        )
    if json_output:
        emit_json(summary.to_dict())
    else:
        stdout_console().print(_table(summary))
