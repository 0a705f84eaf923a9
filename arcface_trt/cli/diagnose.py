"""``arcface-trt diagnose``: what is really running and why, with measured speed and drift."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from arcface_trt.cli import common
from arcface_trt.cli.common import emit_json, portability_line, status, stdout_console
from arcface_trt.errors import CheckFailedError


def _fmt(value: Any, spec: str = "") -> str:
    return "-" if value is None else format(value, spec)


def _travels(engine: Any) -> str:
    """``weights full; hardware ampere_plus (sm80+); ... - hardware-compatible here`` (``-``: no TensorRT plan)."""
    if not isinstance(engine, dict):
        return "-"
    if "manifest_problem" in engine:
        return f"unknown: {engine['manifest_problem']}"
    match = f" - {engine['match']} here" if engine.get("match") else ""
    return f"{portability_line(engine)}; built by TensorRT {engine.get('built_by')}{match}"


def _measured(bench: dict[str, Any] | None) -> str:
    """How the short benchmark measured, after its figure."""
    return f" ({bench['measured']})" if bench else ""


def _render(record: dict[str, Any]) -> None:
    from rich.markup import escape
    from rich.table import Table

    from arcface_trt.model.input_spec import describe_spec

    console = stdout_console()
    table = Table(title="What is running", show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value")
    validation = record["validation"]
    env = record["environment"]
    gpus = env["gpu"]["gpus"]
    rows = [
        ("backend", f"{_fmt(record['backend'])} (requested {record['requested_backend']})"),
        ("fallback reason", _fmt(record["fallback_reason"])),
        ("device / providers", f"{_fmt(record['device'])} [{', '.join(env['providers_applied'])}]"),
        ("engine", _fmt(record["engine_path"])),
        ("engine travels", _travels(record["engine"])),
        (
            "precision / batch / dim",
            f"{_fmt(record['precision'])} / {record['batch_size']} / {_fmt(record['embedding_dim'])}",
        ),
        ("input spec", describe_spec(record["input_spec"]) if record["input_spec"] else "-"),
        (
            "collapse guard",
            f"mean cosine of {record['collapse']['faces']} different faces {record['collapse']['mean_cosine']:.4f} "
            f"(collapsed above {record['collapse']['threshold']:g})"
            if record["collapse"]
            else "-",
        ),
        ("throughput", f"{_fmt(record['throughput_fps'], '.1f')} img/s" + _measured(record["benchmark"])),
        ("latency per batch", f"{_fmt(record['latency_ms'], '.2f')} ms"),
        ("GPU memory", f"{_fmt(record['vram_mb'], '.0f')} MiB"),
        (
            "similarity to reference",
            f"worst cosine {_fmt(validation['worst_cosine'], '.6f')}: {validation['regression_test']}"
            + (f" ({validation['note']})" if validation.get("note") else ""),
        ),
        (
            "onnxruntime",
            f"{_fmt(env['onnxruntime']['version'])} [{', '.join(env['onnxruntime']['providers_available'])}]",
        ),
        ("tensorrt", _fmt(env["tensorrt"]["version"]) if env["tensorrt"]["importable"] else "not importable"),
        ("GPU", ", ".join(f"{g['name']} ({g['sm_arch']})" for g in gpus) or "none"),
        ("CPU", f"{env['cpu']['model']} ({env['cpu']['usable_cores']} cores)"),
    ]
    for key, value in rows:
        table.add_row(key, escape(value))  # messages hold brackets: pip install 'arcface-trt[gpu]'

    console.print(table)
    if record["error"]:
        console.print(f"[red]error:[/red] {escape(record['error'])}")
    if not record["problems"]:
        console.print("[green]no problems found[/green]")
        return
    problems = Table(title=f"{len(record['problems'])} problem(s)")
    for column in ("problem", "what", "fix"):
        problems.add_column(column, overflow="fold")
    for problem in record["problems"]:
        problems.add_row(problem["code"], escape(problem["message"]), escape(problem["fix"]))
    console.print(problems)


def diagnose(
    config: common.ConfigOption = None,
    onnx_path: common.OnnxPathOption = None,
    n_samples: Annotated[int, typer.Option("--n-samples", help="Face crops in the short parity check.")] = 16,
    iterations: Annotated[int, typer.Option("--iterations", help="Timed batches in the short benchmark.")] = 3,
    input_mean: common.InputMeanOption = None,
    input_std: common.InputStdOption = None,
    input_color: common.InputColorOption = None,
    json_output: common.JsonOption = False,
) -> None:
    """Load the configured backend as the pipeline does, measure it, check parity, and flag silent problems.

    Exit 1 when the configured backend cannot load or its drift is above the tolerance (the record is printed first).
    """
    from arcface_trt.diagnose import DiagnoseRequest, run_diagnose

    inputs = common.input_settings(input_mean, input_std, input_color)
    status("diagnosing (loads the backend, times a few batches, checks parity) ...", enabled=not json_output)
    record = run_diagnose(
        DiagnoseRequest(
            config=str(config) if config else None,
            onnx_path=str(onnx_path) if onnx_path else None,
            n_samples=n_samples,
            iterations=iterations,
            inputs=inputs,
        )
    )
    if json_output:
        emit_json(record)
    else:
        _render(record)
    if record["error"]:
        raise CheckFailedError(f"the configured backend cannot load: {record['error']}")
    if record["validation"]["regression_test"] == "failed":
        raise CheckFailedError(
            f"the running backend drifts from the reference beyond {record['validation']['tolerance_key']}"
        )
