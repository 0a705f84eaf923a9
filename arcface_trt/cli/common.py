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

from arcface_trt.names import BACKEND_CHOICES

#: The backend names an option takes, spaced so that help text can wrap them at 80 columns.
BACKEND_CHOICES_TEXT = " | ".join(BACKEND_CHOICES)


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
# The parts of an engine key, for commands that name a cached or stored plan (fetch-engine, inspect).
KeyModelOption = Annotated[
    str | None,
    option(
        "--model",
        help="Model name in the engine key (default: the configured model's file name, else the built-in model's).",
    ),
]
KeyPrecisionOption = Annotated[
    str | None, option("--precision", help="fp32 | fp16 | int8 (default: tensorrt.precision).")
]
KeyArchOption = Annotated[
    str | None,
    option(
        "--arch",
        help="GPU compute capability, e.g. 90 or sm89 (default: this GPU's); lets a machine without a GPU "
        "name other GPUs' engines.",
    ),
]
KeyTrtVersionOption = Annotated[
    str | None,
    option("--trt-version", help="TensorRT version, e.g. 10.16 (default: the installed tensorrt module's)."),
]


def plan_request(cfg: Any, section: Any, model: str | None, arch: str | None, trt_version: str | None) -> Any:
    """The plan the key options name (default precision recipe, the section's portability options); arch and
    version default to this machine's."""
    from arcface_trt.artifacts.compat import PlanRequest
    from arcface_trt.artifacts.key import check_model_name, normalize_arch
    from arcface_trt.artifacts.portability import Portability
    from arcface_trt.engine.build import detect_sm_arch, detect_trt_version
    from arcface_trt.model.default import configured_model_name

    return PlanRequest(
        check_model_name(model or configured_model_name(cfg.embedding)),
        section.precision,
        {},
        Portability.from_settings(section),
        normalize_arch(arch) if arch is not None else detect_sm_arch(),
        trt_version if trt_version is not None else detect_trt_version(),
    )


InputMeanOption = Annotated[
    str | None,
    option(
        "--input-mean",
        help="Model input: mean subtracted from each pixel, one number or three in RGB order (123.7,116.3,103.5) "
        "(default: embedding.input_mean, else read from the model).",
    ),
]
InputStdOption = Annotated[
    str | None,
    option(
        "--input-std",
        help="Model input: std each pixel is divided by, one number or three in RGB order "
        "(default: embedding.input_std, else read from the model).",
    ),
]
InputColorOption = Annotated[
    str | None,
    option("--input-color", help="Model input: channel order rgb | bgr (default: embedding.input_color, else rgb)."),
]


def cpu_precision(precision: str | None) -> str:
    """The precision of a ``--target cpu`` command: it must be given (the config's precision is TensorRT's)."""
    from arcface_trt.errors import InputError

    if precision is None:
        raise InputError("--target cpu needs --precision fp32, fp16 or int8")
    return precision


def input_settings(mean: str | None, std: str | None, color: str | None) -> Any:
    """The ``--input-*`` options as checked :class:`~arcface_trt.model.input_spec.InputSettings`.

    They win over the config's ``embedding.input_*`` (``InputSettings.over``); what both leave open is read
    from the model.
    """
    from arcface_trt.model.input_spec import InputSettings

    return InputSettings.parse(mean, std, color)


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
    **more: Any,
) -> tuple[Any, Any]:
    """:func:`tensorrt_settings` with the engine options ``build`` and ``export-triton`` share (and ``more``)."""
    return tensorrt_settings(
        config,
        precision=precision,
        min_batch_size=min_batch,
        opt_batch_size=opt_batch,
        max_batch_size=max_batch,
        workspace_size_mb=workspace_mb,
        hardware_compatibility=hardware_compatibility,
        **more,
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


def precision_line(summary: Any, check: Any) -> str:
    """``2 of 2 convolution/matrix layers run in fp16 (...); layers: 4 fp16, 1 fp32; kept in fp32: fc + features``.

    ``summary`` and ``check`` are a manifest's ``precision_summary`` and ``precision_check`` (read
    from a file: anything missing is left out).
    """
    summary = summary if isinstance(summary, dict) else {}
    check = check if isinstance(check, dict) else {}
    parts = [str(check.get("reason", "not checked"))]
    by_precision = summary.get("by_precision")
    if isinstance(by_precision, dict) and by_precision:
        parts.append("layers: " + ", ".join(f"{count} {precision}" for precision, count in by_precision.items()))
    kept = summary.get("kept_layers")
    if isinstance(kept, list) and kept:
        parts.append("kept in fp32: " + ", ".join(map(str, kept)))
    return "; ".join(parts)


def portability_line(manifest: Any) -> str:
    """``weights stripped (refit at load); hardware ampere_plus (sm80+); version-compatible (lean runtime embedded)``.

    ``manifest`` is a manifest's record (read from a file or a store: anything missing reads as the default).
    """
    manifest = manifest if isinstance(manifest, dict) else {}
    weights = manifest.get("weights", "full")
    parts = ["weights stripped (refit at load from the ONNX)" if weights == "stripped" else f"weights {weights}"]
    hardware = manifest.get("hardware_compatibility", "none")
    parts.append(f"hardware {hardware}" + (f" ({manifest.get('sm_arch')})" if hardware == "ampere_plus" else ""))
    if manifest.get("version_compatible"):
        parts.append(f"version-compatible (lean runtime {manifest.get('lean_runtime') or 'embedded'})")
    else:
        parts.append("this TensorRT version only")
    return "; ".join(str(part) for part in parts)


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


def stderr_console() -> Any:
    """A rich console on stderr, for progress (shown only when it is a terminal)."""
    from rich.console import Console

    return Console(stderr=True)


def _bars(console: Any) -> Any:
    """The progress bars every command shows: description, bar, done/total, elapsed; gone when finished."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


@contextmanager
def progress(description: str, total: int | None, enabled: bool = True) -> Iterator[Any]:
    """A rich progress bar on stderr (``total`` None: a count without an end); yields ``advance(n)``."""
    console = stderr_console()
    if not enabled or not console.is_terminal:
        yield lambda n: None
        return
    with _bars(console) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


class PhaseDisplay:
    """TensorRT's build phases as nested progress bars: one bar per open phase, indented under its parent.

    Called with each :class:`~arcface_trt.engine.progress.PhaseEvent` of a build. Phase names come
    from TensorRT and hold layer names: they are shown as plain text, never as markup.
    """

    #: Longest phase label shown (layer names of fused layers get long).
    WIDTH = 60

    def __init__(self, bars: Any) -> None:
        from arcface_trt.engine.progress import FINISH, START, STEP

        self._bars = bars
        self._kinds = (START, STEP, FINISH)
        #: open phase -> (task id, depth)
        self._open: dict[str, tuple[Any, int]] = {}

    def __call__(self, event: Any) -> None:
        start, step, finish = self._kinds
        if event.kind == start:
            depth = self._open[event.parent][1] + 1 if event.parent in self._open else 0
            label = "  " * depth + event.phase
            if len(label) > self.WIDTH:
                label = label[: self.WIDTH - 1] + "…"
            self._open[event.phase] = (self._bars.add_task(markup_safe(label), total=max(event.steps, 1)), depth)
        elif event.kind == step and event.phase in self._open:
            self._bars.update(self._open[event.phase][0], completed=event.steps)
        elif event.kind == finish and event.phase in self._open:
            self._bars.remove_task(self._open.pop(event.phase)[0])


@contextmanager
def build_progress(enabled: bool = True) -> Iterator[Any]:
    """TensorRT build progress on stderr when it is a terminal: yields the ``on_progress`` callback, else None."""
    console = stderr_console()
    if not enabled or not console.is_terminal:
        yield None
        return
    with _bars(console) as bars:
        yield PhaseDisplay(bars)


def status(message: str, enabled: bool = True) -> None:
    """A progress note on stderr for a person at a terminal (not in --json mode, not when stderr is captured).

    Scripts that capture stderr then see only warnings and the one-line error.
    """
    if enabled and sys.stderr.isatty():
        typer.echo(message, err=True)
