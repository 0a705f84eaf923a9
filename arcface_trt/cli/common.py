"""Options and output helpers shared by the commands (light imports only)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer


def option(*names: str, help: str) -> Any:
    """An option whose default is described in its help (so Typer shows none)."""
    return typer.Option(*names, help=help, show_default=False)


ConfigOption = Annotated[
    Path | None,
    option(
        "--config",
        help="embedding.yaml to use (default: $ARCFACE_TRT_CONFIG, else ./config/pipeline/embedding.yaml "
        "if present, else built-in defaults).",
    ),
]
OnnxPathOption = Annotated[
    Path | None,
    option("--onnx-path", help="ONNX recognition model (default: the configured model, else the built-in r50)."),
]
AllowCpuFallbackOption = Annotated[
    bool | None,
    option(
        "--allow-cpu-fallback/--no-cpu-fallback",
        help="Fall back to the reference on the CPU, and say so (default: embedding.allow_cpu_fallback).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout and nothing else.")]
DeviceOption = Annotated[str | None, option("--device", help="auto | cpu | cuda | coreml (default: embedding.device).")]
CacheDirOption = Annotated[
    Path | None, option("--cache-dir", help="Engine cache folder (default: tensorrt.cache_dir, else the user cache).")
]


def tensorrt_settings(config: Path | None, **overrides: Any) -> tuple[Any, Any]:
    """The loaded config and its ``tensorrt:`` section with the command-line ``overrides`` (None: not given) applied."""
    from arcface_trt.config import load_config, with_overrides

    cfg = load_config(config)
    return cfg, with_overrides(cfg.tensorrt.tensorrt, "tensorrt", **overrides)


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (the only thing on stdout in --json mode)."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")
    sys.stdout.flush()


def stdout_console() -> Any:
    """A rich console on stdout for tables."""
    from rich.console import Console

    return Console()


@contextmanager
def progress(description: str, total: int | None, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr (``total`` None: a count without an end); yields ``advance(n)``."""
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
