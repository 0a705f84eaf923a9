"""``arcface-trt compare``: score backend B against backend A on the same face crops."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from arcface_trt.cli import common
from arcface_trt.cli.common import emit_json, option, progress, stdout_console
from arcface_trt.errors import InputError


def _table(result: Any) -> Any:
    from rich.table import Table

    a, b = result.backend_a, result.backend_b
    verdict = "[green]PASS[/green]" if result.passed else "[red]FAIL[/red]"
    table = Table(title=f"Parity: {b['backend']} vs {a['backend']} on {result.n_samples} crops  {verdict}")
    table.add_column("statistic")
    for column in ("mean", "min", "p01", "p50", "max"):
        table.add_column(column, justify="right")
    table.add_row("cosine", *(f"{result.cosine[k]:.6f}" for k in ("mean", "min", "p01", "p50", "max")))
    table.add_row("L2 distance", *(f"{result.l2[k]:.6f}" for k in ("mean", "min", "p01", "p50", "max")))
    nn = "n/a (fewer than 3 crops)" if result.nn_agreement is None else f"{result.nn_agreement:.1%}"
    table.caption = (
        f"nearest-neighbour agreement {nn} | worst drift (1 - min cosine) {result.max_drift:.2e} "
        f"vs tolerance {result.max_drift_cosine:.2e}\n"
        f"A {a['backend']} [{', '.join(a['providers'])}] {result.throughput_a:.1f} img/s | "
        f"B {b['backend']} [{', '.join(b['providers'])}] {result.throughput_b:.1f} img/s"
    )
    return table


def compare(
    backend_a: Annotated[
        str, typer.Option("--backend-a", help="Reference backend: pytorch|insightface|onnxruntime|tensorrt.")
    ] = "insightface",
    backend_b: Annotated[str, typer.Option("--backend-b", help="Backend under test.")] = "onnxruntime",
    onnx_path: common.OnnxPathOption = None,
    onnx_path_b: Annotated[
        Path | None, option("--onnx-path-b", help="Run backend B on this model instead of --onnx-path.")
    ] = None,
    n_samples: Annotated[
        int | None, option("--n-samples", help="Seeded face-like crops to use (default: validation.n_samples).")
    ] = None,
    images: Annotated[Path | None, option("--images", help="Folder of face crops (jpg/png, recursive).")] = None,
    npy: Annotated[Path | None, option("--npy", help=".npy array of crops, shape (N, H, W, 3).")] = None,
    seed: Annotated[int | None, option("--seed", help="Seed of the generated crops.")] = None,
    device: common.DeviceOption = None,
    max_drift_cosine: Annotated[
        float | None,
        option(
            "--max-drift-cosine",
            help="Tolerance on the worst sample's 1 - cosine (default: validation.max_drift_cosine).",
        ),
    ] = None,
    allow_cpu_fallback: common.AllowCpuFallbackOption = None,
    config: common.ConfigOption = None,
    output: Annotated[
        Path | None, option("--output", help="Also write the JSON report (with per-sample cosines) here.")
    ] = None,
    precision: Annotated[
        str | None,
        option(
            "--precision",
            help="Run backend B (onnxruntime) on its cached CPU engine of this precision: fp32|fp16|int8.",
        ),
    ] = None,
    precisions: Annotated[
        str | None,
        option(
            "--precisions",
            help="Drift report: backend B at each precision (e.g. fp32,fp16,int8) against the fp32 reference A.",
        ),
    ] = None,
    json_output: common.JsonOption = False,
) -> None:
    """Score backend B against backend A by cosine similarity and L2 distance; exit 1 when drift is above tolerance.

    The tolerance applies to the worst sample: the check passes when 1 - min(cosine) <= max_drift_cosine.
    With --precisions, one row per precision; the check applies to every row.
    """
    from arcface_trt.parity import CompareRequest, parse_precisions, run_compare

    if precision is not None and precisions is not None:
        raise InputError("give either --precision or --precisions, not both")
    if precision is not None:
        names = parse_precisions(precision)
        if len(names) != 1:
            raise InputError(f"--precision takes one precision, got '{precision}' (use --precisions for several)")
        precision = names[0]

    request = CompareRequest(
        backend_a=backend_a,
        backend_b=backend_b,
        onnx_path=str(onnx_path) if onnx_path else None,
        onnx_path_b=str(onnx_path_b) if onnx_path_b else None,
        n_samples=n_samples,
        images=str(images) if images else None,
        npy=str(npy) if npy else None,
        seed=seed,
        device=device,
        max_drift_cosine=max_drift_cosine,
        allow_cpu_fallback=allow_cpu_fallback,
        config=str(config) if config else None,
        precision_b=precision,
        precisions=parse_precisions(precisions) if precisions is not None else None,
    )
    if request.precisions:
        _drift(request, n_samples, output, json_output)
        return
    total = 2 * (n_samples or 100)
    with progress("comparing", total, enabled=not json_output) as advance:
        result = run_compare(request, advance)
    _finish(result, _table, output, json_output, per_sample=True)


def _drift(request: Any, n_samples: int | None, output: Path | None, json_output: bool) -> None:
    """The --precisions path: run the drift report, render it, exit 1 when a row fails."""
    from arcface_trt.parity import run_drift

    total = (1 + len(request.precisions)) * (n_samples or 100)
    with progress("drift report", total, enabled=not json_output) as advance:
        report = run_drift(request, advance)
    _finish(report, _drift_table, output, json_output)


def _finish(outcome: Any, table: Callable[[Any], Any], output: Path | None, json_output: bool, **saved: Any) -> None:
    """Write ``outcome.to_dict(**saved)`` to --output, print the outcome (JSON or its table), exit 1 when it failed."""
    from arcface_trt.fileio import write_text_atomic
    from arcface_trt.records import json_text

    if output is not None:
        write_text_atomic(output, json_text(outcome.to_dict(**saved)))
    if json_output:
        emit_json(outcome.to_dict())
    else:
        stdout_console().print(table(outcome))
    if not outcome.passed:
        raise typer.Exit(1)


def _drift_table(report: Any) -> Any:
    from rich import box
    from rich.table import Table

    ref = report.reference
    verdict = "[green]PASS[/green]" if report.passed else "[red]FAIL[/red]"
    # No vertical rules: ten columns must fit an 80-column terminal.
    table = Table(
        title=f"Precision drift against {ref['backend']} fp32 on {report.n_samples} crops  {verdict}",
        box=box.SIMPLE_HEAD,
        collapse_padding=True,
        pad_edge=False,
    )
    for column in ("precision", "cos mean", "cos min", "cos p01", "L2 mean", "NN", "img/s", "speed", "check"):
        table.add_column(column, justify="left" if column in ("precision", "check") else "right")
    for row in report.rows:
        nn = "n/a" if row.nn_agreement is None else f"{row.nn_agreement:.1%}"
        table.add_row(
            # A fallback ran something else: say what.
            row.precision if row.backend["precision"] == row.precision else f"{row.precision}*",
            f"{row.cosine['mean']:.6f}",
            f"{row.cosine['min']:.6f}",
            f"{row.cosine['p01']:.6f}",
            f"{row.l2['mean']:.5f}",
            nn,
            f"{row.throughput:.1f}",
            f"{row.speedup:.2f}x",
            "[green]pass[/green]" if row.passed else "[red]fail[/red]",
        )
    table.caption = (
        f"B: {report.rows[0].backend['backend']} CPU engines | reference {ref['backend']} "
        f"[{', '.join(ref['providers'])}] {report.throughput_reference:.1f} img/s\n"
        f"check: 1 - min cosine <= {report.max_drift_cosine:.2e} per precision"
    )
    return table
