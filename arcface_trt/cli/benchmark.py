"""``arcface-trt benchmark``: throughput, latency and memory of backends side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from arcface_trt.cli import common
from arcface_trt.cli.common import emit_json, option, progress, status, stdout_console
from arcface_trt.cli.drift_budget import BudgetedEngineOption, select_budgeted_engine


def _table(report: dict[str, Any]) -> Any:
    from rich import box
    from rich.markup import escape
    from rich.table import Table

    from arcface_trt.bench.report import table_rows
    from arcface_trt.model.input_spec import describe_spec

    columns, rows = table_rows(report)
    plan = report["plan"]
    amount = f"{plan['iterations']} iterations" if plan["iterations"] else f"{plan['duration_s']:g} s"
    table = Table(
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        title=f"Benchmark: {report['model']['name']} ({amount} per mode, {plan['warmup_s']:g} s warm-up excluded)",
    )
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 else "right", no_wrap=i in (0, len(columns) - 1))
    for row in rows:
        table.add_row(*(escape(cell) for cell in row))
    cpu = report["environment"]["cpu"]
    gpus = report["environment"]["gpu"]["gpus"]
    where = f"{cpu['model']} ({cpu['usable_cores']} cores)" + (
        f" | {gpus[0]['name']} {gpus[0]['sm_arch']}" if gpus else ""
    )
    notes = [
        f"inputs: real-face sample crops | {where}",
        f"input spec: {describe_spec(report['environment']['input_spec'])}",
    ]
    if report.get("reference"):
        notes.append(f"x: speedup, throughput over {report['reference']} at the same batch size")
    budgeted = {(r["backend"], r["precision"]): r["drift_budget"] for r in report["results"] if r.get("drift_budget")}
    for (name, precision), summary in budgeted.items():
        notes.append(f"{name} {precision}: the engine built for drift budget {summary['budget']:g}")
    if len(report["precisions"]) > 1:
        first = report["precisions"][0]
        notes.append(
            f"x{first}: throughput over the same backend at {first}, same batch size; precisions "
            f"{','.join(report['precisions'])} apply to {', '.join(report['precision_applies_to'])}"
        )
    notes.append("all engines timed round-robin (interleaved), warm-up excluded")
    notes.append("e2e: preprocessing + inference + normalisation; infer: a preprocessed batch")
    notes.append(
        "ms: latency of one batch, end to end; MiB: RSS the backend added when loaded and run once "
        "at the largest batch, or GPU memory"
    )
    table.caption = escape("\n".join(notes))
    return table


def benchmark(
    backend: Annotated[
        list[str] | None,
        option(
            "--backend",
            help=f"Backend to time, repeatable: {common.BACKEND_CHOICES_TEXT} (default onnxruntime).",
        ),
    ] = None,
    batch_sizes: Annotated[str, typer.Option("--batch-sizes", help="Comma-separated batch sizes.")] = "1,8,32",
    iterations: Annotated[
        int | None, option("--iterations", help="Timed iterations per mode (instead of --duration).")
    ] = None,
    duration: Annotated[
        float | None,
        option("--duration", help="Seconds of timed iterations per mode (default 3, at least 3 iterations)."),
    ] = None,
    warmup: Annotated[
        float,
        typer.Option("--warmup", help="Seconds of warm-up per mode, excluded from the figures (at least one call)."),
    ] = 0.2,
    onnx_path: common.OnnxPathOption = None,
    precision: Annotated[
        str | None,
        option(
            "--precision",
            help="fp32 | fp16 | int8: the onnxruntime backend runs the cached CPU engine of this precision; "
            "tensorrt builds/uses a plan of it (default: the ONNX as it is; tensorrt.precision).",
        ),
    ] = None,
    precisions: Annotated[
        str | None,
        option(
            "--precisions",
            help="Several precisions side by side, e.g. fp32,fp16,int8: one engine each for onnxruntime and "
            "tensorrt, timed interleaved, with a ratio column against the first.",
        ),
    ] = None,
    device: common.DeviceOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the sample face crops.")] = 0,
    cuda_graph: Annotated[
        bool, typer.Option("--cuda-graph", help="TensorRT: also time GPU compute replayed from a CUDA graph.")
    ] = False,
    drift_budget: BudgetedEngineOption = None,
    config: common.ConfigOption = None,
    input_mean: common.InputMeanOption = None,
    input_std: common.InputStdOption = None,
    input_color: common.InputColorOption = None,
    output: Annotated[Path | None, option("--output", help="Also write the JSON report here.")] = None,
    plot: Annotated[
        Path | None, option("--plot", help="Draw throughput and latency vs batch size to this PNG.")
    ] = None,
    json_output: common.JsonOption = False,
) -> None:
    """Measure throughput (images/s), latency per batch and memory of each backend at each batch size.

    Warm-up is excluded; every engine is timed round-robin (interleaved) with the others. CPU backends:
    end to end (with preprocessing) and on a preprocessed batch. With --precisions, onnxruntime and
    tensorrt run one engine per precision (other backends once), with a ratio against the first precision.

    TensorRT: also H2D, GPU compute and D2H separately (CUDA events), and GPU compute alone.

    With --drift-budget D and --precision fp16|int8: the engines made for that budget (searched for when missing).
    """
    from arcface_trt.bench.plot import plot_report
    from arcface_trt.bench.report import check_output_path, write_report
    from arcface_trt.bench.runner import (
        BenchmarkRequest,
        backend_specs,
        load_backends,
        parse_batch_sizes,
        run_benchmark,
        steps,
    )
    from arcface_trt.bench.timing import TimingPlan
    from arcface_trt.charts import check_png_path, require_matplotlib
    from arcface_trt.parity import precision_choice

    request = BenchmarkRequest(
        backends=tuple(backend or ("onnxruntime",)),
        batch_sizes=parse_batch_sizes(batch_sizes),
        plan=TimingPlan(iterations=iterations, duration_s=duration, warmup_s=warmup),
        onnx_path=str(onnx_path) if onnx_path else None,
        precisions=precision_choice(precision, precisions) or (),
        device=device,
        config=str(config) if config else None,
        seed=seed,
        cuda_graph=cuda_graph,
        inputs=common.input_settings(input_mean, input_std, input_color),
        drift_budget=drift_budget,
    )
    if output is not None:
        check_output_path(output)
    if plot is not None:
        check_png_path(plot)
        require_matplotlib()  # before minutes of timing, not after
    specs = backend_specs(request)
    for spec in specs:
        if spec.drift_budget is not None:  # the budget's engine, searched for and built when not cached
            select_budgeted_engine(spec, json_output)
    status("loading backends ...", enabled=not json_output)
    backends = load_backends(request, specs)
    with progress("benchmarking", steps(request, backends), enabled=not json_output) as advance:
        report = run_benchmark(request, backends, advance)
    if output is not None:
        write_report(output, report)
    if plot is not None:
        plot_report(report, plot)
    if json_output:
        emit_json(report)
    else:
        console = stdout_console()
        if not console.is_terminal:
            # Piped or logged: rich would fold the table to 80 columns.
            console.width = max(console.width, 120)
        console.print(_table(report))
