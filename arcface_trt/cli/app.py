"""The ``arcface-trt`` Typer app: registers the commands and maps user errors to exit codes.

Only typer, rich and the project's light modules are imported here; every command
imports its heavy work inside its function, so ``--help`` stays fast.
"""

from __future__ import annotations

import logging
import sys
from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from arcface_trt import __version__
from arcface_trt.cli import (
    benchmark,
    compare,
    diagnose,
    export_triton,
    fetch_engine,
    list_engines,
    make_model,
    push_engine,
    quantize,
)
from arcface_trt.cli import build as build_cmd
from arcface_trt.cli import embed as embed_cmd
from arcface_trt.cli import inspect as inspect_cmd
from arcface_trt.errors import ArcFaceTrtError

_state = {"debug": False}


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


class _Group(TyperGroup):
    """Catches the library's user errors once: one line on stderr, the error's exit code."""

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ArcFaceTrtError as exc:
            if _state["debug"]:
                raise
            typer.echo(f"error: {_one_line(str(exc))}", err=True)
            raise typer.Exit(exc.exit_code) from None
        except OSError as exc:
            # A path the user pointed at cannot be read or written (not a folder, permissions, disk full).
            if _state["debug"] or exc.filename is None:
                raise
            typer.echo(f"error: {exc.strerror or exc}: {exc.filename}", err=True)
            raise typer.Exit(2) from None
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None


app = typer.Typer(
    name="arcface-trt",
    cls=_Group,
    help="Build, verify, benchmark and share TensorRT engines for ArcFace face-recognition ONNX models.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
)


class _StderrFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return f"{record.levelname.lower()}: {_one_line(record.getMessage())}"


def _shown(record: logging.LogRecord) -> bool:
    # Info lines are progress for a person at a terminal; warnings (fallbacks) always show.
    return record.levelno >= logging.WARNING or _state["debug"] or sys.stderr.isatty()


class _CurrentStderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is at the time (CliRunner swaps it per invocation)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def _configure_logging(debug: bool) -> None:
    logger = logging.getLogger("arcface_trt")
    if not any(isinstance(h, _CurrentStderrHandler) for h in logger.handlers):
        handler = _CurrentStderrHandler()
        handler.setFormatter(_StderrFormatter())
        handler.addFilter(_shown)
        logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if debug else logging.INFO)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"arcface-trt {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks and debug logs.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Build, verify, benchmark and share TensorRT engines for ArcFace face-recognition ONNX models."""
    _state["debug"] = debug
    _configure_logging(debug)


app.command("build")(build_cmd.build)
app.command("compare")(compare.compare)
app.command("make-model")(make_model.make_model)
app.command("quantize")(quantize.quantize)
app.command("embed")(embed_cmd.embed)
app.command("benchmark")(benchmark.benchmark)
app.command("diagnose")(diagnose.diagnose)
app.command("fetch-engine")(fetch_engine.fetch_engine)
app.command("push-engine")(push_engine.push_engine)
app.command("list-engines")(list_engines.list_engines)
app.command("export-triton")(export_triton.export_triton)
app.command("inspect")(inspect_cmd.inspect)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="arcface-trt")
