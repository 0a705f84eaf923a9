"""Options and output helpers shared by the commands (light imports only)."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout
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
PrecisionOption = Annotated[
    str | None, option("--precision", help="fp32 | fp16 | int8 (TensorRT int8 needs a QDQ ONNX: see quantize).")
]
TargetOption = Annotated[
    str, typer.Option("--target", help="gpu: TensorRT plan | cpu: ONNX Runtime CPU engine (no TensorRT needed).")
]
MinBatchOption = Annotated[int | None, option("--min-batch", help="Optimization profile min batch.")]
OptBatchOption = Annotated[int | None, option("--opt-batch", help="Profile opt batch: the batch you serve.")]
MaxBatchOption = Annotated[int | None, option("--max-batch", help="Profile max batch.")]
WorkspaceOption = Annotated[int | None, option("--workspace-mb", help="Builder workspace pool limit (MiB).")]
HardwareCompatibilityOption = Annotated[
    str | None, option("--hardware-compatibility", help="none | ampere_plus | same_cc.")
]


def cpu_precision(precision: str | None) -> str:
    """The precision of a ``--target cpu`` command: it must be given (the config's precision is TensorRT's)."""
    from arcface_trt.errors import InputError

    if precision is None:
        raise InputError("--target cpu needs --precision fp32, fp16 or int8")
    return precision


def tensorrt_settings(config: Path | None, **overrides: Any) -> tuple[Any, Any]:
    """The loaded config and its ``tensorrt:`` section with the command-line ``overrides`` (None: not given) applied."""
    from arcface_trt.config import load_config, with_overrides

    cfg = load_config(config)
    return cfg, with_overrides(cfg.tensorrt.tensorrt, "tensorrt", **overrides)


def engine_settings(
    config: Path | None,
    precision: str | None,
    min_batch: int | None,
    opt_batch: int | None,
    max_batch: int | None,
    workspace_mb: int | None,
    hardware_compatibility: str | None,
) -> tuple[Any, Any]:
    """:func:`tensorrt_settings` with the engine options ``build`` and ``export-triton`` share."""
    return tensorrt_settings(
        config,
        precision=precision,
        min_batch_size=min_batch,
        opt_batch_size=opt_batch,
        max_batch_size=max_batch,
        workspace_size_mb=workspace_mb,
        hardware_compatibility=hardware_compatibility,
    )


#: Characters that act on a terminal instead of showing: C0/C1 controls (escape sequences), bidi overrides.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable(text: str) -> str:
    """``text`` with every control character written out (``\\x1b``), so text from outside cannot drive the terminal.

    Newlines and tabs stay.
    """
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


def markup_safe(value: Any) -> str:
    """A value from outside (a store's key, a bucket, a prefix) as rich text: controls written out, markup escaped."""
    from rich.markup import escape

    return escape(printable(str(value)))


@contextmanager
def stdout_to_stderr(enabled: bool = True) -> Iterator[None]:
    """While the block runs, what anything writes to stdout (Python, C code, child processes) goes to stderr.

    Ray prints worker messages and its own warnings on stdout; a command's stdout must stay its
    table or its one JSON document. Processes started inside the block keep writing to stderr.
    """
    if not enabled:
        yield
        return
    sys.stdout.flush()
    saved = os.dup(1)
    try:
        os.dup2(2, 1)
        with redirect_stdout(sys.stderr):
            yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 1)
        os.close(saved)


def emit_json(data: Any) -> None:
    """Write ``data`` as JSON to stdout (the only thing on stdout in --json mode), secrets redacted."""
    from arcface_trt.records import json_text

    sys.stdout.write(json_text(data))
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
