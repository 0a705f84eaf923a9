"""Options and output helpers shared by the commands (light imports only)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        help=(
            "embedding.yaml to use (default: $ARCFACE_TRT_CONFIG, else ./config/pipeline/embedding.yaml "
            "if present, else built-in defaults)."
        ),
        show_default=False,
    ),
]
OnnxPathOption = Annotated[
    Path | None,
    typer.Option(
        "--onnx-path",
        help="ONNX recognition model (default: the configured model, else the built-in r50).",
        show_default=False,
    ),
]
AllowCpuFallbackOption = Annotated[
    bool | None,
    typer.Option(
        "--allow-cpu-fallback/--no-cpu-fallback",
        help="Fall back to the reference on the CPU, and say so (default: embedding.allow_cpu_fallback).",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
DeviceOption = Annotated[
    str | None,
    typer.Option("--device", help="auto | cpu | cuda | coreml (default: embedding.device).", show_default=False),
]


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (the only thing on stdout in --json mode)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def stdout_console() -> Any:
    """A rich console on stdout for tables."""
    from rich.console import Console

    return Console()


@contextmanager
def progress(description: str, total: int, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr; yields ``advance(n)``."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    if not enabled or not console.is_terminal:
        yield lambda n: None
        return
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def status(message: str, enabled: bool = True) -> None:
    """A progress note on stderr for a person at a terminal (not in --json mode, not when stderr is captured).

    Scripts that capture stderr then see only warnings and the one-line error.
    """
    if enabled and sys.stderr.isatty():
        typer.echo(message, err=True)
