"""The ``arcface-trt`` Typer app: registers the commands, maps user errors to exit codes, redacts what it shows.

Only typer, rich and the project's light modules are imported here; every command
imports its heavy work inside its function, so ``--help`` stays fast.
"""

from __future__ import annotations

import inspect
import logging
import sys
import traceback
from typing import Annotated, Any

import typer
from typer.core import TyperCommand, TyperGroup

from arcface_trt import __version__
from arcface_trt.cli import (
    benchmark,
    compare,
    diagnose,
    export_triton,
    fetch_engine,
    list_engines,
    make_model,
    make_pairs,
    push_engine,
    quantize,
)
from arcface_trt.cli import build as build_cmd
from arcface_trt.cli import embed as embed_cmd
from arcface_trt.cli import inspect as inspect_cmd
from arcface_trt.cli.common import printable
from arcface_trt.errors import ArcFaceTrtError
from arcface_trt.redact import redact

try:  # typer 0.29+ vendors click: its usage errors derive from TyperException
    from typer import TyperException as _UsageError
except ImportError:  # older typer runs on click
    from click import ClickException as _UsageError

_state = {"debug": False}


def _one_line(message: str) -> str:
    return " ".join(str(message).split())


def _shown_error(exc: BaseException) -> tuple[str, int] | None:
    """The one ``error:`` line and exit code of a user's error; None for a bug (shown as a traceback)."""
    if isinstance(exc, ArcFaceTrtError):
        return f"error: {_one_line(str(exc))}", exc.exit_code
    if isinstance(exc, OSError) and exc.filename is not None:
        # A path the user pointed at cannot be read or written (not a folder, permissions, disk full).
        return f"error: {exc.strerror or exc}: {exc.filename}", 2
    return None


def _fold_long_words() -> None:
    """Make option help fold a word wider than its column (a config key such as ``validation.max_drift_cosine``)
    instead of cutting it to ``validation.max_drift_…`` at 80 columns.

    Typer renders each option's help as rich ``Text`` in a table column whose overflow is "ellipsis",
    with no setting for it; the help's own ``Text.overflow`` wins over the column's. Where a Typer
    release lacks the function, help renders as Typer does.
    """
    from rich.text import Text
    from typer import rich_utils

    original = getattr(rich_utils, "_get_parameter_help", None)
    if original is None or getattr(original, "folds", False):
        return

    def folded(*args: Any, **kwargs: Any) -> Any:
        columns = original(*args, **kwargs)
        for item in getattr(columns, "renderables", ()):
            if isinstance(item, Text):
                item.overflow = "fold"
        return columns

    folded.folds = True  # type: ignore[attr-defined]
    rich_utils._get_parameter_help = folded
    # Option names too (``--hardware-compatibility``): Typer makes them with these highlighters, looked up when
    # it renders, and their column cuts as the help column does.
    for name in ("highlighter", "negative_highlighter"):
        highlight = getattr(rich_utils, name, None)
        if callable(highlight):
            setattr(rich_utils, name, _folding(highlight))


def _folding(highlight: Any) -> Any:
    """``highlight`` (text -> rich ``Text``) with the result folding a word wider than its column."""

    def folding(text: Any) -> Any:
        result = highlight(text)
        result.overflow = "fold"
        return result

    return folding


class _PlainFlags:
    """Help readable at 80 columns: no value placeholder after a flag (Typer prints ``--json <bool>``, which reads as
    ``--json true``), and long words folded, not cut."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)  # type: ignore[misc]
        for param in params:
            if getattr(param, "is_flag", False):
                param.metavar = ""
        return params

    def format_help(self, ctx: Any, formatter: Any) -> None:
        _fold_long_words()  # here, not at start-up: only help needs typer's rich renderer
        self.help = reflowed(self.help)  # type: ignore[attr-defined]
        super().format_help(ctx, formatter)  # type: ignore[misc]


def reflowed(text: str | None) -> str | None:
    """``text`` with each paragraph on one line, so that help wraps at the terminal's width only.

    A docstring's own line breaks would otherwise stay: Typer 0.29 keeps the single newlines of
    every paragraph after the first, which reads as ragged lines at 80 columns.
    """
    if text is None:
        return None
    return "\n\n".join(" ".join(paragraph.split()) for paragraph in inspect.cleandoc(text).split("\n\n"))


class _Command(_PlainFlags, TyperCommand):
    """Every command: its flags shown plain."""


class _Group(_PlainFlags, TyperGroup):
    """Renders every failure once, through :func:`redact` and :func:`printable`: one line for a user's error, else
    the traceback.

    A user's error is one ``error:`` line on stderr and its exit code (2: bad input, 1: a failed
    check); with ``--debug``, or for anything unexpected (exit 1), the traceback is printed
    instead. No failure reaches the terminal without passing :func:`redact`, so an endpoint's
    ``user:password@`` or a credential value never shows, whoever built the message, and text from a
    server (an S3 error message) cannot send escape sequences to the terminal.
    """

    def invoke(self, ctx: typer.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, _UsageError):
            raise  # the framework's own exits and usage errors
        except KeyboardInterrupt:
            typer.echo("interrupted", err=True)
            raise typer.Exit(130) from None
        except Exception as exc:
            shown = _shown_error(exc)
            if shown is None or _state["debug"]:
                typer.echo(printable(redact("".join(traceback.format_exception(exc)))).rstrip("\n"), err=True)
            else:
                typer.echo(printable(redact(shown[0])), err=True)
            raise typer.Exit(shown[1] if shown else 1) from None


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
        return printable(redact(f"{record.levelname.lower()}: {_one_line(record.getMessage())}"))


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


#: Each command and the function that runs it.
COMMANDS = {
    "build": build_cmd.build,
    "compare": compare.compare,
    "make-model": make_model.make_model,
    "make-pairs": make_pairs.make_pairs,
    "quantize": quantize.quantize,
    "embed": embed_cmd.embed,
    "benchmark": benchmark.benchmark,
    "diagnose": diagnose.diagnose,
    "fetch-engine": fetch_engine.fetch_engine,
    "push-engine": push_engine.push_engine,
    "list-engines": list_engines.list_engines,
    "export-triton": export_triton.export_triton,
    "inspect": inspect_cmd.inspect,
}
for _name, _function in COMMANDS.items():
    app.command(_name, cls=_Command)(_function)


def main() -> None:
    """Console-script entry point."""
    app(prog_name="arcface-trt")
